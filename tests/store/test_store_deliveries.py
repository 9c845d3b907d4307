"""The deliveries contract (issue 18), run on every store adapter: memory, SQLite and
PostgreSQL (a schema of its own in the database ISTHMUS_PG_DSN names, or `test`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from isthmus.store.memory import MemoryStore
from isthmus.store.ports import DeliveryQuery, Store
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
        name = f"d_{uuid.uuid4().hex[:12]}"
        s = PostgresStore(DSN, schema=name)
    yield s
    s.close()
    if name:
        with psycopg.connect(DSN, autocommit=True) as c:
            c.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def queue(store: Store, *rows: tuple[str, str, str], now: float = T0) -> list[bool]:
    """Queue (destination, key, idempotency key) rows in one transaction."""
    with store.transaction() as tx:
        return [
            tx.add_delivery(
                destination=d,
                key=k,
                idempotency_key=i,
                event_id=f"ev-{i}",
                event_type="PaymentPosted",
                route="r1",
                content_type="application/json",
                body=f'{{"i":"{i}"}}'.encode(),
                now=now,
            )
            for d, k, i in rows
        ]


def ids(rows: list) -> list[str]:  # type: ignore[type-arg]
    return [r.idempotency_key for r in rows]


def test_the_same_idempotency_key_is_one_delivery_per_destination(store: Store) -> None:
    assert queue(store, ("hook", "A", "i1"), ("hook", "A", "i1"), ("file", "A", "i1")) == [
        True,
        False,
        True,
    ]
    assert queue(store, ("hook", "A", "i1")) == [False]
    got = store.deliveries(DeliveryQuery(destination="hook"))
    assert [(d.key, d.idempotency_key, d.event_id, d.status, d.attempts, d.body) for d in got] == [
        ("A", "i1", "ev-i1", "pending", 0, b'{"i":"i1"}')
    ]


def test_a_rolled_back_transaction_queues_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.add_delivery(
            destination="hook",
            key="A",
            idempotency_key="x",
            event_id="e",
            event_type="t",
            route="r",
            content_type="c",
            body=b"",
            now=T0,
        )
        raise RuntimeError("undo")
    assert store.deliveries() == []


def test_due_keeps_order_per_key_and_lets_other_keys_go_on(store: Store) -> None:
    queue(
        store,
        ("hook", "A", "a1"),
        ("hook", "B", "b1"),
        ("hook", "A", "a2"),
        ("hook", "B", "b2"),
        ("other", "A", "o1"),
    )
    assert ids(store.deliveries_due("hook", T0, 10)) == ["a1", "b1", "a2", "b2"]
    assert ids(store.deliveries_due("hook", T0, 2)) == ["a1", "b1"]
    a1 = store.deliveries_due("hook", T0, 1)[0]
    store.settle_deliveries(
        [a1.id],
        status="pending",
        now=T0,
        visible_at=T0 + 30,
        error="DestinationUnavailable: refused",
    )
    # a1 waits for its retry: a2 waits behind it, B goes on
    assert ids(store.deliveries_due("hook", T0 + 1, 10)) == ["b1", "b2"]
    assert ids(store.deliveries_due("hook", T0 + 30, 10)) == ["a1", "b1", "a2", "b2"]
    row = store.deliveries(DeliveryQuery(ids=(a1.id,)))[0]
    assert (row.attempts, row.last_error, row.visible_at) == (
        1,
        "DestinationUnavailable: refused",
        T0 + 30,
    )


def test_settle_records_the_answer_and_resend_puts_it_back(store: Store) -> None:
    queue(store, ("hook", "A", "a1"), ("hook", "A", "a2"))
    a1, a2 = store.deliveries_due("hook", T0, 10)
    store.settle_deliveries(
        [a1.id], status="sent", now=T0 + 1, visible_at=T0 + 1, answer_code="200", answer_detail="ok"
    )
    store.settle_deliveries(
        [a2.id], status="dead", now=T0 + 2, answer_code="422", answer_detail="unknown account"
    )
    assert store.deliveries_due("hook", T0 + 5, 10) == []
    sent, dead = store.deliveries(DeliveryQuery(destination="hook"))
    assert (sent.status, sent.answer_code, sent.sent_at) == ("sent", "200", T0 + 1)
    assert (dead.status, dead.answer_code, dead.answer_detail, dead.sent_at) == (
        "dead",
        "422",
        "unknown account",
        0.0,
    )
    assert [d.idempotency_key for d in store.deliveries(DeliveryQuery(status="dead"))] == ["a2"]
    totals = {t.destination: t for t in store.delivery_totals()}
    assert (totals["hook"].pending, totals["hook"].sent, totals["hook"].dead) == (0, 1, 1)
    assert totals["hook"].last_answer == "422"
    assert store.resend_deliveries([a2.id, a2.id + 999], T0 + 10) == [a2.id]
    assert store.resend_deliveries([a2.id], T0 + 10) == []  # pending already
    again = store.deliveries_due("hook", T0 + 10, 10)
    assert [(d.idempotency_key, d.status, d.last_error) for d in again] == [
        ("a2", "pending", "resent")
    ]
    totals = {t.destination: t for t in store.delivery_totals()}
    assert (totals["hook"].pending, totals["hook"].oldest_pending) == (1, T0)


def test_deliveries_filters_and_pages(store: Store) -> None:
    queue(store, ("hook", "A", "a1"), ("hook", "B", "b1"), now=T0)
    queue(store, ("hook", "A", "a2"), now=T0 + 100)
    everything = store.deliveries()
    assert ids(everything) == ["a1", "b1", "a2"]
    assert ids(store.deliveries(DeliveryQuery(since=T0 + 50))) == ["a2"]
    assert ids(store.deliveries(DeliveryQuery(event_ids=("ev-b1", "ev-a2")))) == ["b1", "a2"]
    assert ids(store.deliveries(DeliveryQuery(event_ids=()))) == []
    assert ids(store.deliveries(DeliveryQuery(after=everything[0].id, limit=1))) == ["b1"]
