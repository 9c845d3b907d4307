"""The supply state (`flows.supply_state.SupplyStore`) in an embedded SQLite file.

One row holds the encoded state (`supply.db` beside the hub's databases). A session is
one `BEGIN IMMEDIATE` transaction: read, change, write back, commit; a second writer waits
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
        self._conn = connect(path)
        try:
            self._conn.execute("CREATE TABLE IF NOT EXISTS supply_state ("
                               "id INTEGER PRIMARY KEY CHECK (id = 1), body BLOB NOT NULL)")
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"cannot prepare {path}: {exc}") from exc

    @classmethod
    def in_dir(cls, data_dir: Path) -> SqliteSupplyStore:
        return cls(data_dir / FILENAME)

    @contextmanager
    def session(self) -> Iterator[SupplyState]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            row = self._conn.execute("SELECT body FROM supply_state WHERE id = 1").fetchone()
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"cannot read {self.path}: {exc}") from exc
        try:
            state = decode_state(bytes(row[0])) if row else SupplyState()
            yield state
            self._conn.execute("INSERT INTO supply_state (id, body) VALUES (1, ?) ON CONFLICT "
                               "(id) DO UPDATE SET body = excluded.body",
                               (encode_state(state),))
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._conn.close()
