"""The business-key gate (`flows.identity`): the pure decision, and the worker keeping each
business fact once on every store adapter (memory, SQLite, PostgreSQL).

A re-sent fact under another event id posts nothing more; other content for a known fact is
a conflict work item and posts nothing; a redelivery of the same event stays idempotent; a
work item's resubmit (same event id) still posts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from isthmus.flows import identity, workitems
from isthmus.flows.identity import Decision, Seen, decide
from isthmus.model import (
    BankDeposited,
    Charge,
    PatientPaymentSettled,
    PatientRef,
    ShiftWorked,
)
from isthmus.model.envelope import Envelope, Source
from isthmus.model.events import SupplyConsumed
from isthmus.model.money import Money
from tests.flows.helpers import bar
from tests.flows.identity_rig import NOW, STORES, GateRig, open_store, reenveloped
from tests.flows.settlement.files import settlement_csv

# -- the decision (pure) ---------------------------------------------------------------------


def test_an_unknown_key_is_first() -> None:
    assert decide(None, "e1", "d1") is Decision.FIRST


def test_the_same_event_runs_again_whatever_its_digest() -> None:
    # a redelivery, a retry or a resubmit: the flow is idempotent on the event id
    assert decide(Seen("e1", "d1"), "e1", "d1") is Decision.SAME_EVENT
    assert decide(Seen("e1", "d1"), "e1", "d2") is Decision.SAME_EVENT


def test_another_event_with_the_same_content_is_a_duplicate() -> None:
    assert decide(Seen("e1", "d1"), "e2", "d1") is Decision.DUPLICATE


def test_another_event_with_other_content_is_a_conflict() -> None:
    assert decide(Seen("e1", "d1"), "e2", "d2") is Decision.CONFLICT


def test_only_first_and_same_event_run_the_flow() -> None:
    assert {d for d in Decision if d.runs} == {Decision.FIRST, Decision.SAME_EVENT}


def _card(gross: str = "100.00", deposit: str = "D1") -> PatientPaymentSettled:
    g = Decimal(gross)
    return PatientPaymentSettled(
        processor="DemoPay",
        deposit_id=deposit,
        transaction_id="T1",
        kind="payment",
        account_number="AM1",
        transaction_date=date(2026, 11, 3),
        deposit_date=date(2026, 11, 4),
        gross=g,
        fee=Decimal("3.00"),
        net=g - Decimal("3.00"),
        currency="USD",
    )


def _env(ev: object, event_id: str = "e1", control: str = "c1") -> Envelope:
    at = datetime.fromtimestamp(NOW, UTC)
    return Envelope(
        event_id=event_id,
        type=type(ev).__name__,
        occurred_at=at,
        recorded_at=at,
        source=Source("settlement", control, f"settlement/{control}"),
        correlation_id=f"settlement/{control}",
        causation_id="x",
        key="k",
        payload=ev,
        business_key="card|DemoPay|T1",
    )  # type: ignore[arg-type]


def test_the_digest_is_of_the_content_not_of_the_envelope() -> None:
    first = identity.digest(_env(_card()))
    assert identity.digest(_env(_card(), event_id="e2", control="c2")) == first
    assert identity.digest(_env(_card("90.00"))) != first
    assert identity.digest(_env(_card(deposit="D2"))) != first
    # the same amount written otherwise is other content too: a sender re-sends its bytes
    assert identity.digest(_env(_card("100.0"))) != first


def test_a_record_key_is_namespaced_beside_the_flows_own_applied_keys() -> None:
    assert identity.record_key("usage|U1") == "bk:usage|U1"


def test_a_conflict_goes_to_the_queue_that_owns_the_money() -> None:
    charge = Charge(
        patient=PatientRef(mrn="M", authority="A"),
        transaction_id="T",
        transaction_type="CG",
        quantity=1,
        amount=Money(Decimal(1), "USD"),
        charge_code="X",
        department="LAB",
        facility="F",
        service_date=date(2026, 1, 1),
    )
    assert identity.queue_of(charge) == "revenue-integrity"
    assert identity.queue_of(_card()) == "cash-posting"
    bank = BankDeposited(
        deposit_date=date(2026, 1, 1),
        amount=Decimal(1),
        reference="R",
        method="ACH",
        currency="USD",
        bank_account="",
    )
    assert identity.queue_of(bank) == "cash-posting"
    shift = msgspec.convert(
        {
            "employee_id": "E",
            "shift_id": "S",
            "department": "D",
            "work_date": "2026-01-01",
            "regular_hours": "8",
        },
        ShiftWorked,
        strict=False,
    )
    assert identity.queue_of(shift) == "workforce"
    usage = msgspec.convert(
        {"usage_id": "U", "item": "I", "location": "L", "quantity": "1", "used_on": "2026-01-01"},
        SupplyConsumed,
        strict=False,
    )
    assert identity.queue_of(usage) == "procurement"


# -- the gate in the worker, on every store ----------------------------------------------------


@pytest.fixture(params=STORES)
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GateRig]:
    with open_store(request.param, tmp_path) as store:
        yield GateRig(store)


def _paid(rig: GateRig, account: str = "AM1") -> Envelope:
    """A card payment of 100.00 on `account` (deposit D1), taken through the inbox."""
    envs = rig.csv(
        settlement_csv([("D1", "T1", "payment", account, "100.00", "3.00")]), "settlement"
    )
    rig.drain()
    (pay,) = [e for e in envs if isinstance(e.payload, PatientPaymentSettled)]
    assert pay.business_key == "card|DemoPay|T1"
    return pay


def _card_entries(rig: GateRig) -> list[str]:
    return [e.entry_key for e in rig.store.entries() if e.memo.startswith("card ")]


def _conflicts(rig: GateRig) -> list[object]:
    return [w for w in rig.store.work_items() if w.kind == identity.CONFLICT_KIND]


def test_a_fact_resent_under_another_event_id_posts_once(rig: GateRig) -> None:
    rig.hl7([bar("S1", "M1")])
    rig.drain()
    pay = _paid(rig)
    before = rig.ledger()
    assert _card_entries(rig) == [pay.event_id]
    rig.publish([reenveloped(pay, "a"), reenveloped(pay, "b")])
    rig.drain()
    assert rig.ledger() == before
    assert rig.outcomes()["duplicate"] == 2
    assert _conflicts(rig) == [] and rig.store.work_items("open") == []


def test_other_content_for_a_known_fact_is_a_conflict_work_item(rig: GateRig) -> None:
    rig.hl7([bar("S1", "M1")])
    rig.drain()
    pay = _paid(rig)
    before = rig.ledger()
    other = reenveloped(
        pay, "c", msgspec.structs.replace(pay.payload, gross=Decimal("90.00"), net=Decimal("87.00"))
    )
    rig.publish([other])
    rig.drain()
    rig.publish([other], again=True)  # redelivered: still one item, still nothing posted
    rig.drain()
    assert rig.ledger() == before
    (item,) = rig.store.work_items("open")
    assert (item.kind, item.queue, item.event_id) == (
        identity.CONFLICT_KIND,
        "cash-posting",
        other.event_id,
    )
    assert "card|DemoPay|T1" in item.detail
    assert pay.event_id in item.detail and other.event_id in item.detail
    assert rig.outcomes()["conflict"] == 2


def test_a_redelivered_event_stays_idempotent(rig: GateRig) -> None:
    rig.hl7([bar("S1", "M1")])
    rig.drain()
    pay = _paid(rig)
    before = rig.ledger()
    rig.publish([pay], again=True)
    rig.drain()
    rig.restart()  # a new worker over the same store
    rig.publish([pay], again=True)
    rig.drain()
    assert rig.ledger() == before and _card_entries(rig) == [pay.event_id]
    assert "conflict" not in rig.outcomes() and _conflicts(rig) == []


def test_a_resubmitted_work_item_still_posts(rig: GateRig) -> None:
    pay = _paid(rig, account="AM9")  # no such billing account yet: held
    (held,) = rig.store.work_items("open")
    assert (held.kind, held.event_id) == ("unapplied_cash", pay.event_id)
    rig.publish([reenveloped(pay, "d")])  # the processor re-sends it meanwhile
    rig.drain()
    assert [w.id for w in rig.store.work_items("open")] == [held.id]
    rig.hl7([bar("S9", "M9")])
    rig.drain()
    workitems.resubmit(rig.store, rig.bus, held.id, "account known now", NOW)
    rig.drain()
    assert _card_entries(rig) == [pay.event_id]
    assert [w.kind for w in rig.store.work_items("open")] == []


def test_events_without_a_business_key_pass_the_gate(rig: GateRig) -> None:
    env = msgspec.structs.replace(_env(_card()), business_key="")
    with rig.store.transaction() as tx:
        assert identity.gate(tx, env, NOW) is None
        assert identity.gate(tx, msgspec.structs.replace(env, event_id="e2"), NOW) is None
        assert tx.applied(identity.record_key("")) is None


def test_two_workers_racing_for_a_new_key_keep_it_once(tmp_path: Path) -> None:
    """PostgreSQL, two transactions: the second one's record waits for the first, does
    nothing, and reading it back shows who came first: a duplicate, not a second run."""
    with open_store("postgresql", tmp_path) as store:
        first = _env(_card(), event_id="e1", control="c1")
        second = _env(_card(), event_id="e2", control="c2")
        gated, answer = threading.Event(), []

        def racer() -> None:
            gated.wait(5)
            with store.transaction() as tx:
                answer.append(identity.gate(tx, second, NOW))

        t = threading.Thread(target=racer)
        t.start()
        with store.transaction() as tx:
            assert identity.gate(tx, first, NOW) is None
            gated.set()
            time.sleep(0.3)  # the racer has read "unknown" and waits on the insert
        t.join(10)
        assert answer == ["duplicate"]
