"""Embedded governance store: principals, token digests and the audit chain in SQLite.

Its own file, `data_dir/governance.db` (created owner-only, 0600), so it never meets the
store's migrations, and `isthmus backup` copies it with the rest. One connection per call
(WAL, synchronous=FULL, sqlite_connection.connect): calls come from CLI commands and from
the HTTP threads, are few and short, and no connection is shared between threads. The SQL
is sql_governance.py's; BEGIN IMMEDIATE serializes initializers and audit writers.

The audit table refuses UPDATE and DELETE through triggers. That stops a mistake, not an
attacker with the file (who can drop the trigger); the hash chain is what catches them.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from isthmus.store.sql_dialect import SQLITE
from isthmus.store.sql_governance import DDL, SqlGovernance
from isthmus.store.sqlite_connection import StorageUnavailable, connect

SCHEMA: Final = (
    DDL.replace("{TIME}", "REAL").replace("{SEQ}", "INTEGER")
    + """
CREATE TRIGGER IF NOT EXISTS gov_audit_no_update BEFORE UPDATE ON gov_audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS gov_audit_no_delete BEFORE DELETE ON gov_audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
"""
)


class SqliteGovernance(SqlGovernance):
    """The governance store on its own SQLite file."""

    _q = SqlGovernance.dialect(SQLITE)
    _unlimited = -1

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._conn() as c:  # made 0600 in a 0700 directory (private_files)
            c.executescript(SCHEMA)

    @contextlib.contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = connect(self.path)
        try:
            yield conn
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"{self.path}: {exc}") from exc
        finally:
            conn.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._conn() as c:
            c.execute("BEGIN IMMEDIATE")
            try:
                yield c
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")
