"""The flow-state aggregate on SQL (SQLite and PostgreSQL): a flow's named state (the
supply book) and the keys it has applied (ports.py).

`load_state` holds the name for the rest of the transaction: the dialect's lock first
(PostgreSQL: an advisory lock, since the row may not exist yet and SELECT ... FOR UPDATE
alone would let two first writers in; SQLite: BEGIN IMMEDIATE holds every writer off).
`mark_applied` is an insert that does nothing on a known key, so a racing insert of the
same key waits for the other transaction, then reports False.
"""

from __future__ import annotations

from typing import Final

from isthmus.store.sql_dialect import TxBase

SQL: Final = {
    "state_get": "SELECT body FROM flow_state WHERE name = ?",
    "state_put": "INSERT INTO flow_state (name, body) VALUES (?,?) ON CONFLICT (name) "
    "DO UPDATE SET body = excluded.body",
    "applied_get": "SELECT body FROM applied WHERE key = ?",
    "applied_add": "INSERT INTO applied (key, body) VALUES (?,?) ON CONFLICT (key) DO NOTHING",
}


class SqlFlowStateTx(TxBase):
    """The flow-state writes of a transaction on SQL (mixin of SqlTx)."""

    def load_state(self, name: str) -> bytes | None:
        self._lock(f"state:{name}")
        row = self._c.execute(self._q["state_get"], (name,)).fetchone()
        return None if row is None else bytes(row[0])

    def save_state(self, name: str, body: bytes) -> None:
        self._c.execute(self._q["state_put"], (name, body))

    def applied(self, key: str) -> bytes | None:
        row = self._c.execute(self._q["applied_get"], (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def mark_applied(self, key: str, body: bytes) -> bool:
        return bool(self._c.execute(self._q["applied_add"], (key, body)).rowcount == 1)
