"""The store port's analytics reads (`journal_after`, `inbox_after`), on every adapter.

The watermark contract: positions grow in posting order, a page continues exactly where
the last one stopped (no entry twice, none skipped), entries posted later come after the
watermark, a replayed (idempotent) posting adds nothing, and inbox ids carry every status.
PostgreSQL runs when a server is there (tests/services.py), like the store contract.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from isthmus.store.memory import MemoryStore
from isthmus.store.ports import Store
from isthmus.store.sqlite import SqliteStore
from tests.services import POSTGRES, require
from tests.store.contract import entry, inbound, post
from tests.support import wait_until


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        s: Store = MemoryStore()
    elif request.param == "sqlite":
        s = SqliteStore(tmp_path / "store.db", synchronous="NORMAL")
    else:
        require("PostgreSQL", *POSTGRES)
        import psycopg  # noqa: PLC0415

        from isthmus.store.postgres import PostgresStore  # noqa: PLC0415

        host, port = POSTGRES
        dsn = f"postgresql://postgres@{host}:{port}/test"
        schema = f"t_{uuid.uuid4().hex}"
        s = PostgresStore(dsn, schema=schema)
        yield s
        s.close()
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        return
    yield s
    s.close()


def test_journal_pages_continue_at_the_watermark(store: Store) -> None:
    post(store, *(entry(f"E{i}", corr=f"c{i}") for i in range(5)))
    first = store.journal_after(0, 2)
    assert [e.entry_key for _p, e in first] == ["E0", "E1"]
    assert first[0][0] < first[1][0]
    rest = store.journal_after(first[-1][0], 100)
    assert [e.entry_key for _p, e in rest] == ["E2", "E3", "E4"]
    assert all(len(e.lines) == 2 for _p, e in rest)  # with their lines
    assert store.journal_after(rest[-1][0], 100) == []
    assert post(store, entry("E1", corr="c1"), entry("E5", corr="c5")) == [False, True]
    wait_until(
        lambda: store.journal_after(rest[-1][0], 100),
        timeout=60,
        what="the new entry after the watermark",
    )
    (new,) = store.journal_after(rest[-1][0], 100)  # only the new one, once
    assert new[1].entry_key == "E5" and new[0] > rest[-1][0]


def test_inbox_pages_carry_every_status_after_the_watermark(store: Store) -> None:
    store.accept(
        [
            inbound("C1"),
            inbound("C2", status="rejected", ack_code="AR", events=b""),
            inbound("C3", received_at=7.5),
        ]
    )
    got = store.inbox_after(0, 100)
    assert [(s, ev) for _i, s, _t, ev in got] == [
        ("accepted", b'[{"e":1}]'),
        ("rejected", b""),
        ("accepted", b'[{"e":1}]'),
    ]
    assert got[2][2] == 7.5
    assert [i for i, *_r in store.inbox_after(got[0][0], 1)] == [got[1][0]]
    store.accept([inbound("C1"), inbound("C4")])  # a duplicate and a new one
    want = [m.id for m in store.messages() if m.control_id == "C4"]
    # PostgreSQL: the duplicate may leave an id hole, crossed once no writer of the
    # database is in flight (other tests may share it): wait for that, never skip it
    wait_until(
        lambda: [i for i, *_r in store.inbox_after(got[-1][0], 100)] == want,
        timeout=60,
        what="the new message after the watermark",
    )
    assert [i for i, *_r in store.inbox_after(got[-1][0], 100)] == want


def test_postgres_never_reads_past_a_writer_in_flight() -> None:
    """An entry committed after one still in flight took a higher identity: the watermark
    must not pass the lower one until its transaction ends (else it is skipped forever)."""
    require("PostgreSQL", *POSTGRES)
    import threading  # noqa: PLC0415

    import psycopg  # noqa: PLC0415

    from isthmus.store.postgres import PostgresStore  # noqa: PLC0415

    host, port = POSTGRES
    dsn = f"postgresql://postgres@{host}:{port}/test"
    schema = f"t_{uuid.uuid4().hex}"
    reader, writer = PostgresStore(dsn, schema=schema), PostgresStore(dsn, schema=schema)
    inserted, release = threading.Event(), threading.Event()

    def slow_writer() -> None:
        with writer.transaction() as tx:
            tx.insert_entry(entry("W1", corr="w1"))
            inserted.set()
            release.wait(30)

    t = threading.Thread(target=slow_writer)
    try:
        post(reader, entry("E0", corr="c0"))
        (first,) = reader.journal_after(0)
        t.start()
        assert inserted.wait(10)
        post(reader, entry("E2", corr="c2"))  # committed, above W1's identity
        assert reader.journal_after(first[0]) == []  # W1 in flight: nothing past its hole
        release.set()
        t.join(10)
        got = reader.journal_after(first[0])
        assert [e.entry_key for _p, e in got] == ["W1", "E2"]
    finally:
        release.set()
        if t.is_alive():
            t.join(10)
        reader.close()
        writer.close()
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
