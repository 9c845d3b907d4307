"""`isthmus migrate`: bring a store to HEAD with Alembic, in one transaction, under a lock.

Why Alembic: it is the maintained migration tool for both databases the hub runs on, its
revisions are plain Python files that can hold raw SQL (`op.execute`), and its version
table is one any DBA recognizes. Its SQLAlchemy dependency is paid only here: this module
is imported by `isthmus migrate` alone (the store reads its revision without it,
migrations/__init__.py).

The whole upgrade is one transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: the
migration advisory lock of postgres_schema, so two processes migrating at once take turns):
a failed revision leaves the store at the revision it had. A store made before migrations
(tables, no version row) is stamped 0001 first; a new one gets the whole chain.
`check` only reads, and creates nothing, not even the database file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.pool import NullPool

from isthmus.store.migrations import (
    HEAD,
    LEGACY,
    SchemaNotCurrent,
    SchemaState,
    postgres_state,
    sqlite_state,
)
from isthmus.store.sqlite_connection import StorageUnavailable, connect

_HERE = Path(__file__).resolve().parent
_MIGRATION_LOCK = 0x15_7405  # postgres_schema's: creation and upgrades take turns


@dataclass(frozen=True)
class Target:
    """One store: an embedded SQLite file, or a PostgreSQL schema."""

    sqlite_path: Path | None = None
    dsn: str = ""
    schema: str = ""

    @property
    def where(self) -> str:
        return str(self.sqlite_path) if self.sqlite_path else f"PostgreSQL schema {self.schema}"


@dataclass(frozen=True)
class Outcome:
    """What `upgrade` did: the revision before (None: no store), the one after, and the
    revisions applied."""

    before: str | None  # None: there was no store
    after: str
    applied: tuple[str, ...]


def check(target: Target) -> SchemaState:
    """Where the store stands, read without writing anything."""
    if target.sqlite_path is not None:
        if not target.sqlite_path.is_file():
            return SchemaState(exists=False, revision=None)
        conn = connect(target.sqlite_path, readonly=True)
        try:
            return sqlite_state(conn.execute)
        finally:
            conn.close()
    import psycopg  # noqa: PLC0415 - scale-out only

    try:
        with psycopg.connect(target.dsn, connect_timeout=5) as pg:
            return postgres_state(pg.execute, target.schema)
    except psycopg.OperationalError as exc:
        raise StorageUnavailable(f"PostgreSQL: {exc}") from exc


def _engine(target: Target) -> sa.Engine:
    if target.sqlite_path is not None:
        path = target.sqlite_path
        eng = sa.create_engine("sqlite://", creator=lambda: connect(path), poolclass=NullPool)
        # connect() leaves sqlite3 in autocommit: begin explicitly, so DDL is transactional
        sa.event.listen(eng, "begin", lambda c: c.exec_driver_sql("BEGIN IMMEDIATE"))
        return eng
    import psycopg  # noqa: PLC0415 - scale-out only

    dsn = target.dsn
    return sa.create_engine(
        "postgresql+psycopg://",
        creator=lambda: psycopg.connect(dsn, connect_timeout=5),
        poolclass=NullPool,
    )


def upgrade(target: Target) -> Outcome:
    """Apply every pending revision (none when current: idempotent); SchemaNotCurrent when
    the store is newer than this release."""
    engine = _engine(target)
    try:
        with engine.connect() as conn, conn.begin():
            run = conn.exec_driver_sql
            if target.sqlite_path is None:
                run("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                ident = '"' + target.schema.replace('"', '""') + '"'
                run(f"CREATE SCHEMA IF NOT EXISTS {ident}")
                run(f"SET LOCAL search_path TO {ident}")
                state = postgres_state(run, target.schema)
            else:
                state = sqlite_state(run)
            if state.newer:
                raise SchemaNotCurrent(state, target.where)
            pending = tuple(state.pending())
            if pending:
                cfg = _config(conn, target.schema or None)
                if state.legacy:
                    command.stamp(cfg, LEGACY)
                command.upgrade(cfg, "head")
    except sa.exc.OperationalError as exc:
        raise StorageUnavailable(f"{target.where}: {exc.orig}") from exc
    finally:
        engine.dispose()
    return Outcome(state.at, HEAD, pending)


def _config(conn: sa.Connection, schema: str | None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    cfg.attributes["connection"] = conn
    cfg.attributes["schema"] = schema
    return cfg


def downgrade(target: Target, revision: str) -> None:
    """For tests of a revision's way back; not a command (restore a backup instead)."""
    engine = _engine(target)
    try:
        with engine.connect() as conn, conn.begin():
            if target.sqlite_path is None:
                ident = '"' + target.schema.replace('"', '""') + '"'
                conn.exec_driver_sql(f"SET LOCAL search_path TO {ident}")
            command.downgrade(_config(conn, target.schema or None), revision)
    finally:
        engine.dispose()


def describe(state: SchemaState) -> dict[str, Any]:
    """A schema state as `isthmus migrate --check` reports it: revision, head, the pending
    revisions, and whether it is current."""
    return {
        "revision": state.at,
        "head": HEAD,
        "pending": state.pending(),
        "current": state.current,
    }
