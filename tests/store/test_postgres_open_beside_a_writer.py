"""Opening the scale-out store beside a hub that is writing (issue 22).

Every `Hub.open` (a CLI command, a test reading the books, a second `serve --role`) opens
the store, and the store migrates its schema. Running the DDL again on a complete schema
took a SHARE lock on every table (CREATE INDEX IF NOT EXISTS does, even when the index is
there), so the open waited for the writer, or deadlocked with it and PostgreSQL aborted one
side: the scale-out pass failed at random on a busy machine. A complete schema is now only
read. Needs PostgreSQL (tests/services.py).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from isthmus.store.postgres import PostgresStore
from tests.services import POSTGRES, require

pytestmark = pytest.mark.service

DSN = "postgresql://postgres@{}:{}/test".format(*POSTGRES)


@pytest.fixture
def schema() -> Iterator[str]:
    require("PostgreSQL", *POSTGRES)
    name = f"t_{uuid.uuid4().hex}"
    yield name
    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def test_a_second_open_does_not_wait_for_a_writer(schema: str) -> None:
    PostgresStore(DSN, schema=schema).close()  # the schema, complete
    with psycopg.connect(DSN) as writer:  # a hub's transaction, mid-way: writing the inbox
        writer.execute(
            sql.SQL("LOCK TABLE {}.inbox IN ROW EXCLUSIVE MODE").format(sql.Identifier(schema))
        )
        opened: list[PostgresStore] = []
        t = threading.Thread(
            target=lambda: opened.append(PostgresStore(DSN, schema=schema)), daemon=True
        )
        t.start()
        t.join(10.0)  # generous: the open reads the catalog and takes no table lock
        done = bool(opened)
        writer.rollback()  # lets a blocked open finish, so the thread ends either way
    t.join(30.0)
    for store in opened:
        store.close()
    assert done, "opening the store waited for another transaction's table lock"
