"""Versioned migrations of the store's schema (SQLite and PostgreSQL): where a store stands.

Every change to the store's tables is a numbered revision in `versions/` (raw SQL per
dialect, run by Alembic: `runner.py`, `isthmus migrate`), frozen once released. Revision
0001 is the schema as it was before migrations existed; `HEAD` is the newest. A store
made by a release before migrations has no version row but its tables (and
`meta.schema_version` 1): it is at 0001, unstamped (`SchemaState.legacy`).

A new, empty database is created at HEAD straight from the head DDL
(`sqlite_schema.SCHEMA`, `postgres_schema.DDL`) and stamped, as Alembic's cookbook
describes ("Building an Up to Date Database from Scratch"); tests/store/test_migrations.py
checks that the chain run from nothing builds the same schema. A store at an older
revision is never upgraded behind the operator's back: opening it raises
`SchemaNotCurrent`, and `isthmus migrate` upgrades it, after a backup.

This module imports neither Alembic nor SQLAlchemy: opening a store only reads the version
row, so `serve` and every command start without them; only `isthmus migrate` loads them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from isthmus.errors import StorageUnavailable

# oldest first; each is versions/r<rev>_*.py
REVISIONS: Final = ("0001", "0002", "0003", "0004", "0005")
HEAD: Final = REVISIONS[-1]
LEGACY: Final = REVISIONS[0]  # what a store made before migrations is
VERSION_TABLE: Final = "alembic_version"
# Alembic's own version table, made here for a store created at HEAD without Alembic.
VERSION_DDL: Final = (
    f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version_num VARCHAR(32) "
    "NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
)

Execute = Callable[[str, tuple[Any, ...]], Any]  # (sql, params) -> a cursor with fetchone()


@dataclass(frozen=True)
class SchemaState:
    """What a database holds: the store's tables (`exists`) and its version row."""

    exists: bool
    revision: str | None  # None: no version row

    @property
    def fresh(self) -> bool:
        """Nothing there yet: create it at HEAD."""
        return not self.exists and self.revision is None

    @property
    def legacy(self) -> bool:
        """Made by a release before migrations: revision 0001 without a version row."""
        return self.exists and self.revision is None

    @property
    def at(self) -> str | None:
        return LEGACY if self.legacy else self.revision

    @property
    def current(self) -> bool:
        return self.revision == HEAD

    @property
    def newer(self) -> bool:
        """Upgraded by a later release than this one."""
        return self.revision is not None and self.revision not in REVISIONS

    def pending(self) -> list[str]:
        """The revisions `isthmus migrate` would apply, oldest first."""
        if self.newer:
            return []
        if self.at is None:
            return list(REVISIONS)
        return list(REVISIONS[REVISIONS.index(self.at) + 1 :])


class SchemaNotCurrent(StorageUnavailable):
    """The store's schema is older (or newer) than this release: upgrade it, then start.

    `state` says where it stands; the shells name the exact command for their site."""

    exit_code = 4

    def __init__(self, state: SchemaState, where: str) -> None:
        self.state = state
        self.where = where
        if state.newer:
            why = (
                f"the store at {where} is at schema revision {state.revision}, made by a "
                f"newer release of Isthmus (this one knows up to {HEAD}): run that "
                "release, or restore the backup taken before it upgraded"
            )
        else:
            why = (
                f"the store at {where} is at schema revision {state.at}, this release "
                f"needs {HEAD}: back it up, then run `isthmus migrate`"
            )
        super().__init__(why)


def sqlite_state(execute: Execute) -> SchemaState:
    """Where an embedded (SQLite) store stands; reads the catalog and the version row."""
    names = {
        r[0]
        for r in execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)",
            ("inbox", VERSION_TABLE),
        ).fetchall()
    }
    revision = None
    if VERSION_TABLE in names:
        row = execute(f"SELECT version_num FROM {VERSION_TABLE}", ()).fetchone()
        revision = None if row is None else str(row[0])
    return SchemaState("inbox" in names, revision)


def postgres_state(execute: Execute, schema: str) -> SchemaState:
    """Where a scale-out (PostgreSQL) store in `schema` stands; reads the catalog only
    (no lock: see postgres_schema._complete) and the version row."""
    row = execute(
        "SELECT to_regclass(format('%%I.inbox', %s::text)) IS NOT NULL, "
        "to_regclass(format('%%I.%%I', %s::text, %s::text)) IS NOT NULL",
        (schema, schema, VERSION_TABLE),
    ).fetchone()
    exists, versioned = bool(row[0]), bool(row[1])
    revision = None
    if versioned:
        quoted = '"' + schema.replace('"', '""') + '"'
        got = execute(f"SELECT version_num FROM {quoted}.{VERSION_TABLE}", ()).fetchone()
        revision = None if got is None else str(got[0])
    return SchemaState(exists, revision)
