"""The deliveries port (issue 18) on the scale-out store: mixed into PostgresTx and
PostgresStore, running `delivery_sql`'s statements with PostgreSQL's placeholders."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg.abc import Params
from psycopg.rows import TupleRow

from isthmus.store import delivery_sql as q
from isthmus.store.ports import ANY_DELIVERY, DeliveryQuery, DeliveryRecord, DeliveryTotals

Conn = psycopg.Connection[TupleRow]
T = TypeVar("T")
_INSERT, _DUE, _SETTLE, _RESEND = (q.postgres(s) for s in (q.INSERT, q.DUE, q.SETTLE,
                                                           q.RESEND))


class PostgresDeliveryTx:
    _c: Conn

    def add_delivery(self, *, destination: str, key: str, idempotency_key: str,
                     event_id: str, event_type: str, route: str, content_type: str,
                     body: bytes, now: float) -> bool:
        return self._c.execute(_INSERT, q.insert_args(
            destination=destination, key=key, idempotency_key=idempotency_key,
            event_id=event_id, event_type=event_type, route=route, content_type=content_type,
            body=body, now=now)).rowcount == 1


class PostgresDeliveries:
    if TYPE_CHECKING:
        def _run(self, work: Callable[[Conn], T]) -> T: ...

        def _rows(self, query: str, args: Params = ()) -> list[tuple[Any, ...]]: ...

    def deliveries_due(self, destination: str, now: float, limit: int) -> list[DeliveryRecord]:
        return [q.record(r) for r in self._rows(_DUE, (destination, now, now, limit))]

    def settle_deliveries(self, ids: Sequence[int], *, status: str, now: float,
                          visible_at: float = 0.0, error: str = "", answer_code: str = "",
                          answer_detail: str = "") -> None:
        args = q.settle_args(ids, status=status, now=now, visible_at=visible_at, error=error,
                             answer_code=answer_code, answer_detail=answer_detail)

        def settle(c: Conn) -> None:
            with c.cursor() as cur:
                cur.executemany(_SETTLE, args)
        self._run(settle)

    def deliveries(self, query: DeliveryQuery = ANY_DELIVERY) -> list[DeliveryRecord]:
        statement, args = q.select(query)
        return [q.record(r) for r in self._rows(q.postgres(statement), args)]

    def delivery_totals(self) -> list[DeliveryTotals]:
        return q.totals(self._rows(q.TOTALS), self._rows(q.LAST_ANSWERS))

    def resend_deliveries(self, ids: Sequence[int], now: float) -> list[int]:
        return self._run(lambda c: [i for i in ids
                                    if c.execute(_RESEND, (now, i)).rowcount == 1])
