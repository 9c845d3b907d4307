"""The deliveries port (issue 18) on the embedded store: mixed into SqliteTx and SqliteStore.

The SQL is `delivery_sql`'s, shared with PostgreSQL; this module only runs it on SQLite's
connections (inside the caller's transaction for `add_delivery`, a write transaction of
its own for the settle and resend calls).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from isthmus.store import delivery_sql as q
from isthmus.store.ports import ANY_DELIVERY, DeliveryQuery, DeliveryRecord, DeliveryTotals


class SqliteDeliveryTx:
    _c: sqlite3.Connection

    def add_delivery(self, *, destination: str, key: str, idempotency_key: str,
                     event_id: str, event_type: str, route: str, content_type: str,
                     body: bytes, now: float) -> bool:
        return self._c.execute(q.INSERT, q.insert_args(
            destination=destination, key=key, idempotency_key=idempotency_key,
            event_id=event_id, event_type=event_type, route=route, content_type=content_type,
            body=body, now=now)).rowcount == 1


class SqliteDeliveries:
    if TYPE_CHECKING:
        def _conn(self) -> sqlite3.Connection: ...

        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def deliveries_due(self, destination: str, now: float, limit: int) -> list[DeliveryRecord]:
        return [q.record(r) for r in self._conn().execute(
            q.DUE, (destination, now, now, limit))]

    def settle_deliveries(self, ids: Sequence[int], *, status: str, now: float,
                          visible_at: float = 0.0, error: str = "", answer_code: str = "",
                          answer_detail: str = "") -> None:
        with self._write() as c:
            c.executemany(q.SETTLE, q.settle_args(
                ids, status=status, now=now, visible_at=visible_at, error=error,
                answer_code=answer_code, answer_detail=answer_detail))

    def deliveries(self, query: DeliveryQuery = ANY_DELIVERY) -> list[DeliveryRecord]:
        statement, args = q.select(query)
        return [q.record(r) for r in self._conn().execute(statement, args)]

    def delivery_totals(self) -> list[DeliveryTotals]:
        c = self._conn()
        return q.totals(c.execute(q.TOTALS).fetchall(), c.execute(q.LAST_ANSWERS).fetchall())

    def resend_deliveries(self, ids: Sequence[int], now: float) -> list[int]:
        with self._write() as c:
            return [i for i in ids if c.execute(q.RESEND, (now, i)).rowcount == 1]
