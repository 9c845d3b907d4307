"""The processor's registry (issue 17): payload type -> handler, built once; a type no flow
handles is a typed outcome, dead-lettered by the worker at the time its clock shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, get_args

import pytest

from isthmus.bus.memory import MemoryBus
from isthmus.bus.ports import Publish
from isthmus.demo.chart import demo_mappings
from isthmus.flows.clock import FixedClock
from isthmus.flows.errors import PermanentError
from isthmus.flows.outcome import Refused
from isthmus.flows.processor import Processor
from isthmus.flows.relay import TOPIC
from isthmus.flows.retry import RetryPolicy
from isthmus.flows.worker import Worker
from isthmus.ledger.periods import FiscalCalendar
from isthmus.model import WORKFORCE_EVENTS, PatientRegistered, PatientUpdated
from isthmus.model.envelope import Envelope, Source, encode_envelope
from isthmus.model.events import CredentialExpired, CredentialExpiring, Event, SupplyConsumed
from isthmus.store.memory import MemoryStore

NOW = 1_800_000_000.0
AT = datetime(2026, 11, 3, tzinfo=UTC)


@dataclass(frozen=True)
class Unheard:
    """A payload type no flow registers."""


def proc() -> Processor:
    return Processor(
        secret="k", mappings=demo_mappings(), ar_account="1200", calendar=FiscalCalendar()
    )


def env(payload: Any) -> Envelope:  # Any: a payload of no event type too
    return Envelope(
        event_id="e1",
        type=type(payload).__name__,
        occurred_at=AT,
        recorded_at=AT,
        source=Source("mllp", "c1", "m1"),
        correlation_id="c",
        causation_id="m1",
        key="k",
        payload=payload,
    )


def test_a_type_no_flow_handles_is_refused_and_dead_lettered_by_handle() -> None:
    p, store = proc(), MemoryStore()
    with store.transaction() as tx:
        assert p.process(tx, env(Unheard()), NOW) == Refused("no flow handles Unheard")
        with pytest.raises(PermanentError, match="no flow handles Unheard"):
            p.handle(tx, env(Unheard()), NOW)


def test_a_subtype_finds_the_handler_of_its_parent() -> None:
    p = proc()
    assert p.handler_of(PatientUpdated) == p.handler_of(PatientRegistered) is not None
    assert p.handler_of(CredentialExpired) == p.handler_of(CredentialExpiring) is not None
    assert p.handler_of(Unheard) is None


def test_every_workforce_event_is_registered() -> None:
    p = proc()
    assert all(p.handler_of(t) is not None for t in WORKFORCE_EVENTS)


def test_every_event_of_the_model_has_a_handler() -> None:
    p = proc()
    assert [t for t in get_args(Event) if p.handler_of(t) is None] == []


def test_the_worker_dead_letters_a_refused_event_at_the_time_of_its_clock() -> None:
    used = SupplyConsumed(
        usage_id="U1",
        item="STENT-01",
        location="OR",
        quantity=Decimal(1),
        used_on=AT.date(),
        department="CATH",
        facility="MAIN",
        account_number="A1",
        charge_id="FT1",
    )
    bus, store, clock = MemoryBus(partitions=1), MemoryStore(), FixedClock(NOW)
    bus.publish([Publish(TOPIC, "k", "e1", encode_envelope(env(used)))])
    worker = Worker(bus, store, proc(), RetryPolicy(), partitions=[0], clock=clock)
    clock.advance(5)
    assert worker.run_once(0) == 1  # no supply flow configured: refused, not retried
    [dead] = bus.dead_letters()
    assert dead.failed_at == NOW + 5
    assert dead.reason == "PermanentError: no supply flow is configured for SupplyConsumed"
