"""Revision 0005 (a batch stored once): an outbox row that revision 0004 wrote with a copy of
its batch's body loses the copy on upgrade and reads back the same through the store's port;
a row of an older file format keeps its own payload; a downgrade puts the copy back.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
from psycopg import sql

from isthmus.ledger import batch_codec
from isthmus.ledger.batch import JournalBatch
from isthmus.store.migrations.runner import Target, check, downgrade, upgrade
from isthmus.store.ports import Store
from isthmus.store.postgres import PostgresStore
from isthmus.store.sqlite import SqliteStore
from tests.services import POSTGRES, require
from tests.store.builders import detailed, entry

DSN = f"postgresql://postgres@{POSTGRES[0]}:{POSTGRES[1]}/test"
CSV = b"an older release's csv file of B0\n"
BATCH = detailed("B1", [entry("E1")])
BODY = msgspec.json.Encoder(decimal_format="string").encode(BATCH)  # as revision 0004 kept it


def write_as_revision_4(execute: Callable[[str, tuple[Any, ...]], Any], mark: str) -> None:
    """What the code of revision 0004 stored for a sealed batch: its body twice."""
    q = ",".join([mark] * 6)
    for bid, body in (("B0", b"{}"), ("B1", BODY)):
        execute(
            "INSERT INTO batches (batch_id, channel, policy, line_count, created_at, body) "
            f"VALUES ({q})",
            (bid, "dft", "detailed", 2, 1.0, body),
        )
    q = ",".join([mark] * 5)
    for bid, fmt, payload in (("B0", "csv", CSV), ("B1", "batch.v1", BODY)):
        execute(
            f"INSERT INTO outbox (destination, batch_id, fmt, payload, created_at) VALUES ({q})",
            ("erp_file", bid, fmt, payload, 1.0),
        )


def payloads(rows: list[Any]) -> list[tuple[str, bytes]]:
    return [(str(r[0]), bytes(r[1])) for r in rows]


def reads_back(store: Store) -> None:
    old, batch = store.outbox_items()
    assert (old.fmt, old.payload) == ("csv", CSV)
    assert (batch.fmt, batch.payload) == ("batch.v1", BODY)
    assert batch_codec.decode(batch.fmt, batch.payload).batch == BATCH
    body = store.batch_body("B1")
    assert body is not None and msgspec.json.decode(body, type=JournalBatch) == BATCH
    [due] = store.outbox_due("erp_file", 2.0, 10)[1:]
    assert due.payload == BODY


ROWS = "SELECT fmt, payload FROM outbox ORDER BY id"


def test_a_batch_copy_is_dropped_and_restored_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    target = Target(sqlite_path=path)
    upgrade(target)
    downgrade(target, "0004")
    with sqlite3.connect(path) as conn:
        write_as_revision_4(conn.execute, "?")
    assert upgrade(target).applied == ("0005",)
    with sqlite3.connect(path) as conn:
        assert payloads(conn.execute(ROWS).fetchall()) == [("csv", CSV), ("batch.v1", b"")]
    store = SqliteStore(path)
    try:
        reads_back(store)
    finally:
        store.close()
    downgrade(target, "0004")
    assert check(target).at == "0004"
    with sqlite3.connect(path) as conn:
        assert payloads(conn.execute(ROWS).fetchall()) == [("csv", CSV), ("batch.v1", BODY)]
        assert conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone() == (
            "4",
        )


@pytest.fixture
def schema() -> Iterator[str]:
    require("PostgreSQL", *POSTGRES)
    name = f"m_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.mark.service
def test_a_batch_copy_is_dropped_and_restored_postgres(schema: str) -> None:
    target = Target(dsn=DSN, schema=schema)
    upgrade(target)
    downgrade(target, "0004")

    def rows() -> list[tuple[str, bytes]]:
        with psycopg.connect(DSN, autocommit=True) as c:
            c.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            return payloads(c.execute(ROWS).fetchall())

    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        write_as_revision_4(c.execute, "%s")
    assert upgrade(target).applied == ("0005",)
    assert rows() == [("csv", CSV), ("batch.v1", b"")]
    store = PostgresStore(DSN, schema=schema)
    try:
        reads_back(store)
    finally:
        store.close()
    downgrade(target, "0004")
    assert check(target).at == "0004"
    assert rows() == [("csv", CSV), ("batch.v1", BODY)]
