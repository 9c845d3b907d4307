"""The claim-life port (issue 20), run on every store adapter: memory, SQLite and
PostgreSQL (a schema of its own in the database ISTHMUS_PG_DSN names, or `test`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from isthmus.store.memory import MemoryStore
from isthmus.store.ports import ClaimEvent, ClaimState, Store
from isthmus.store.postgres import PostgresStore
from isthmus.store.sqlite import SqliteStore
from tests.services import POSTGRES, require

DSN = os.environ.get("ISTHMUS_PG_DSN") or f"postgresql://postgres@{POSTGRES[0]}:{POSTGRES[1]}/test"
T0 = 1_800_000_000.0


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store
    name = ""
    if request.param == "memory":
        s = MemoryStore()
    elif request.param == "sqlite":
        s = SqliteStore(tmp_path / "store.db", synchronous="NORMAL")
    else:
        require("PostgreSQL", *POSTGRES)
        name = f"c_{uuid.uuid4().hex[:12]}"
        s = PostgresStore(DSN, schema=name)
    s.migrate()
    yield s
    s.close()
    if name:
        with psycopg.connect(DSN, autocommit=True) as c:
            c.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def claim(key: str, state: str = "submitted", at: float = T0, **kw: object) -> ClaimState:
    return ClaimState(
        claim_key=key,
        state=state,
        payer_id="PAYER1",
        total_charge=Decimal("100.10"),
        currency="USD",
        created_at=T0,
        updated_at=at,
        **kw,
    )  # type: ignore[arg-type]


def test_state_round_trips_and_is_replaced(store: Store) -> None:
    full = claim(
        "PCN1",
        payer_claim_id="PC-9",
        account_number="A1",
        paid=Decimal("80.05"),
        frequency="7",
        controls="000000001/1/0001",
        status_category="P3",
        status_code="317",
        denial_category="coding",
        appeal_due="2024-06-01",
        submitted_at=T0 + 1,
        body=b'{"claim":["CLM*PCN1"]}',
    )
    with store.transaction() as tx:
        assert tx.get_claim_state("PCN1") is None
        tx.put_claim_state(full)
        assert tx.get_claim_state("PCN1") == full
    with store.transaction() as tx:
        tx.put_claim_state(replace(full, state="paid", updated_at=T0 + 5))
    with store.transaction() as tx:
        got = tx.get_claim_state("PCN1")
        assert got is not None and got.state == "paid" and got.paid == Decimal("80.05")
        assert tx.claim_by_payer_id("PC-9") == got
        assert tx.claim_by_payer_id("nope") is None and tx.claim_by_payer_id("") is None


def test_states_listed_by_state_oldest_first(store: Store) -> None:
    with store.transaction() as tx:
        tx.put_claim_state(claim("B", "denied", T0 + 2))
        tx.put_claim_state(claim("A", "denied", T0 + 1))
        tx.put_claim_state(claim("C", "paid", T0))
    assert [c.claim_key for c in store.claim_states("denied")] == ["A", "B"]
    assert [c.claim_key for c in store.claim_states()] == ["C", "A", "B"]
    assert [c.claim_key for c in store.claim_states(limit=1)] == ["C"]


def test_events_idempotent_and_ordered(store: Store) -> None:
    ev = [
        ClaimEvent(
            event_id=f"e{n}",
            claim_key="K",
            seq=n,
            kind="k",
            from_state="a",
            to_state="b",
            at=T0 + n,
            causation_id="src",
            correlation_id="cor",
            actor="alice" if n == 2 else "hub",
            detail="d",
        )
        for n in (2, 1)
    ]
    with store.transaction() as tx:
        assert [tx.add_claim_event(e) for e in ev] == [True, True]
        assert tx.add_claim_event(ev[0]) is False
    assert store.claim_events("K") == [ev[1], ev[0]]
    assert store.claim_events("other") == []


def test_rolled_back_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.put_claim_state(claim("R"))
        tx.add_claim_event(
            ClaimEvent(
                event_id="r1",
                claim_key="R",
                seq=1,
                kind="k",
                from_state="",
                to_state="created",
                at=T0,
            )
        )
        raise RuntimeError("boom")
    assert store.claim_states() == [] and store.claim_events("R") == []
