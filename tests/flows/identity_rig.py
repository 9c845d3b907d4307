"""A worker over any store adapter (memory, SQLite, PostgreSQL) for the business-key gate
tests: envelopes are published straight on a memory bus, the way the relay puts them there,
so a test can re-send, re-envelope and replay exactly what it means to."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import psycopg
from psycopg import sql

from isthmus.app import SystemClock
from isthmus.bus.memory import MemoryBus
from isthmus.bus.ports import Publish
from isthmus.flows.hl7_inbound import classify
from isthmus.flows.intake import envelopes
from isthmus.flows.relay import TOPIC, relay_unpublished
from isthmus.flows.retry import RetryPolicy
from isthmus.flows.settlement_intake import csv_intake
from isthmus.flows.worker import Worker
from isthmus.ledger.balance import TrialBalance, trial_balance
from isthmus.ledger.journal import JournalEntry
from isthmus.model.envelope import Envelope, KeyedEvent, encode_envelope
from isthmus.store.memory import MemoryStore
from isthmus.store.ports import Store
from isthmus.store.postgres import PostgresStore
from isthmus.store.sqlite import SqliteStore
from tests.flows.helpers import make_processor
from tests.services import POSTGRES, require

NOW = 1_800_000_000.0
STORES = ("memory", "sqlite", "postgresql")
_envs = msgspec.json.Decoder(list[Envelope])


def pg_dsn() -> str:
    """The scale-out DSN when one is set, else the tests' database (one schema per test)."""
    return (
        os.environ.get("ISTHMUS_PG_DSN")
        or f"postgresql://postgres@{POSTGRES[0]}:{POSTGRES[1]}/test"
    )


@contextmanager
def open_store(kind: str, tmp: Path) -> Iterator[Store]:
    """A fresh store of `kind`, closed (and its PostgreSQL schema dropped) afterwards."""
    if kind == "memory":
        store: Store = MemoryStore()
    elif kind == "sqlite":
        store = SqliteStore(tmp / "store.db", synchronous="NORMAL")
    else:
        require("PostgreSQL", *POSTGRES)
        schema = f"t_{uuid.uuid4().hex}"
        store = PostgresStore(pg_dsn(), schema=schema)
    try:
        store.migrate()
        yield store
    finally:
        store.close()
        if kind == "postgresql":
            with psycopg.connect(pg_dsn(), autocommit=True) as c:
                c.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )


@dataclass
class GateRig:
    store: Store
    bus: MemoryBus = field(default_factory=lambda: MemoryBus(partitions=2))
    worker: Worker | None = None

    def __post_init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        """A new worker (a new process) over the same store and bus."""
        self.worker = Worker(
            self.bus,
            self.store,
            make_processor(),
            RetryPolicy(),
            partitions=range(self.bus.partitions),
            clock=SystemClock(),
        )

    def drain(self) -> int:
        assert self.worker is not None
        total = 0
        while n := sum(self.worker.run_once(p, NOW) for p in range(self.bus.partitions)):
            total += n
        return total

    def hl7(self, raws: Sequence[bytes]) -> list[Envelope]:
        """Store HL7 messages through the inbox, relay them, return their envelopes."""
        inbound = [
            classify(r, channel="mllp", peer="test", now=NOW, tenant="default", currency="USD")[0]
            for r in raws
        ]
        self.store.accept(inbound)
        relay_unpublished(self.store, self.bus)
        return [e for m in inbound if m.events for e in _envs.decode(m.events)]

    def csv(self, raw: bytes, kind: str) -> list[Envelope]:
        """Store a settlement or bank file through the inbox, relay it, return its envelopes."""
        intake = csv_intake(raw, kind=kind, peer="test", now=NOW, tenant="default")
        assert intake.inbound.status == "accepted", intake.findings
        self.store.accept([intake.inbound])
        relay_unpublished(self.store, self.bus)
        return _envs.decode(intake.inbound.events)

    def publish(self, envs: Sequence[Envelope], *, again: bool = False) -> None:
        """Put envelopes on the bus; `again`: as a redelivery (the bus forgets their ids)."""
        pubs = [Publish(e.event_id, TOPIC, e.key, encode_envelope(e)) for e in envs]
        if again:
            self.bus.replay(pubs)
        else:
            self.bus.publish(pubs)

    def outcomes(self) -> dict[str, int]:
        assert self.worker is not None
        return self.worker.stats.outcomes

    def ledger(self) -> tuple[list[JournalEntry], TrialBalance]:
        """The journal entries (by key) and the trial balance, to compare two runs."""
        entries = sorted(self.store.entries(), key=lambda e: e.entry_key)
        return entries, trial_balance(self.store.journal_lines())


def reenveloped(env: Envelope, tag: str, payload: object | None = None) -> Envelope:
    """The same business fact in a new envelope (a new control id: a new event id), as a
    clearinghouse or processor re-sends it; `payload` replaces the content (a conflict)."""
    control = f"resent-{tag}"
    (out,) = envelopes(
        [
            KeyedEvent(
                f"{env.event_id}#{tag}",
                env.key,
                payload or env.payload,  # type: ignore[arg-type]
                env.business_key,
            )
        ],
        channel=env.source.channel,
        control_id=control,
        occurred=env.occurred_at,
        recorded=datetime.fromtimestamp(NOW, UTC),
        tenant=env.tenant,
    )
    return out
