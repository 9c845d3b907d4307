"""Stores for the delivery tests: memory, SQLite, and PostgreSQL in its own schema of the
database ISTHMUS_PG_DSN names (or `test`), dropped after the test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from isthmus.store.memory import MemoryStore
from isthmus.store.ports import Store
from isthmus.store.postgres import PostgresStore
from isthmus.store.sqlite import SqliteStore
from tests.services import POSTGRES, require

DSN = os.environ.get("ISTHMUS_PG_DSN") or f"postgresql://postgres@{POSTGRES[0]}:{POSTGRES[1]}/test"


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
        name = f"dl_{uuid.uuid4().hex[:12]}"
        s = PostgresStore(DSN, schema=name)
    yield s
    s.close()
    if name:
        with psycopg.connect(DSN, autocommit=True) as c:
            c.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
