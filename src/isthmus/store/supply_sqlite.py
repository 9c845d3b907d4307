"""The supply state (`flows.supply_state.SupplyStore`) in an embedded SQLite file.

One row holds the encoded state (`supply.db` beside the hub's databases), a table the ids
already applied with their entries. A session is one `BEGIN IMMEDIATE` transaction: read,
change, write back (state and applied ids together), commit; a second writer waits
(busy timeout) instead of losing an update. An error inside the block rolls back, so the
state never holds half an operation.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from isthmus.flows.supply_state import SupplyState, decode_state, encode_state
from isthmus.store.sqlite_connection import StorageUnavailable, connect

FILENAME = "supply.db"


class SqliteSupplyStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        """Opened on first use: a hub that never sees a supply event never creates the file."""
        if self._conn is None:
            conn = connect(self.path)
            try:
                conn.execute("CREATE TABLE IF NOT EXISTS supply_state ("
                             "id INTEGER PRIMARY KEY CHECK (id = 1), body BLOB NOT NULL)")
                conn.execute("CREATE TABLE IF NOT EXISTS supply_applied ("
                             "applied_id TEXT PRIMARY KEY, entry BLOB NOT NULL)")
            except sqlite3.Error as exc:
                conn.close()
                raise StorageUnavailable(f"cannot prepare {self.path}: {exc}") from exc
            self._conn = conn
        return self._conn

    @classmethod
    def in_dir(cls, data_dir: Path) -> SqliteSupplyStore:
        return cls(data_dir / FILENAME)

    @contextmanager
    def session(self) -> Iterator[SupplyState]:
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute("SELECT body FROM supply_state WHERE id = 1").fetchone()
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"cannot read {self.path}: {exc}") from exc
        try:
            state = decode_state(bytes(row[0])) if row else SupplyState()
            yield state
            conn.execute("INSERT INTO supply_state (id, body) VALUES (1, ?) ON CONFLICT "
                               "(id) DO UPDATE SET body = excluded.body",
                               (encode_state(state),))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def applied(self, applied_id: str) -> bytes | None:
        row = self._connection().execute(
            "SELECT entry FROM supply_applied WHERE applied_id = ?", (applied_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def mark_applied(self, applied_id: str, entry: bytes) -> None:
        self._connection().execute(
            "INSERT INTO supply_applied (applied_id, entry) VALUES (?, ?) ON CONFLICT "
            "(applied_id) DO NOTHING", (applied_id, entry))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
