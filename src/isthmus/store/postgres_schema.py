"""The scale-out store's schema (PostgreSQL) and its idempotent migration.

The same tables and unique constraints as the embedded schema (one text, sql_schema.py),
so both adapters carry the idempotency contract the same way. Types are PostgreSQL's own:
identity ids, BYTEA for bytes, DOUBLE PRECISION for epoch times (SQLite REAL), DATE for
dates, BOOLEAN for flags.

Money is NUMERIC, never a float: PostgreSQL keeps the scale of every value, so an amount
comes back as the Decimal it went in ("125.50", "0.000"), and sums can be done in SQL.

Journal entries and batches get a `seq` identity because PostgreSQL, unlike SQLite, has no
rowid to give back the posting order.

This is the schema at the head revision (store/migrations): a new schema is created from
it and stamped; an existing one changes only through a revision in
store/migrations/versions/ (a test holds the two equal).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from isthmus.store.migrations import (
    HEAD,
    VERSION_DDL,
    VERSION_TABLE,
    SchemaNotCurrent,
    postgres_state,
)
from isthmus.store.sql_schema import ddl

SCHEMA_VERSION = int(HEAD)

DDL = ddl("postgresql")

# One key for every Isthmus migration: concurrent starters (several workers booting at
# once) take turns instead of racing on CREATE ... IF NOT EXISTS, which is not atomic.
_MIGRATION_LOCK = 0x15_7405


def migrate(conn: psycopg.Connection[Any], schema: str) -> int:
    """Create `schema` at HEAD if it holds no store; return the revision of a current one.

    SchemaNotCurrent for an older or newer one (`isthmus migrate` upgrades it). Safe to run
    from several processes at once: creation takes the migration advisory lock and looks
    again. A store that exists is only read: its catalog and version row, no lock (running
    DDL again on a live schema deadlocked with a hub's writers, issue 22).
    """
    with conn.transaction():
        state = postgres_state(conn.execute, schema)
    if state.fresh:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            state = postgres_state(conn.execute, schema)
            if state.fresh:
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
                )
                conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
                conn.execute(DDL)
                conn.execute(VERSION_DDL)
                conn.execute(f"INSERT INTO {VERSION_TABLE} VALUES (%s)", (HEAD,))
                conn.execute(
                    "INSERT INTO meta VALUES ('schema_version', %s) ON CONFLICT DO NOTHING",
                    (str(SCHEMA_VERSION),),
                )
                state = postgres_state(conn.execute, schema)
    if not state.current:
        raise SchemaNotCurrent(state, f"PostgreSQL schema {schema}")
    return SCHEMA_VERSION
