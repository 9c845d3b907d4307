"""The delivery aggregate on SQL (issue 18): the deliveries table's statements, written once,
and the Tx/Store mixins that run them on SQLite and PostgreSQL (sql_dialect.py).

Both dialects take `ON CONFLICT ... DO NOTHING` (SQLite 3.24+), and the
unique (destination, idempotency_key) makes queueing an event twice one delivery. The due
query keeps order per key: a delivery waits while an earlier one of its key waits for its
retry, and the other keys go on (the partial index `deliveries_key` serves that probe).
`add_delivery` runs inside the caller's transaction; settle and resend in one of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from isthmus.store.ports_deliveries import (
    ANY_DELIVERY,
    DeliveryQuery,
    DeliveryRecord,
    DeliveryTotals,
)
from isthmus.store.sql_dialect import StoreBase, TxBase

COLS = (
    "id, destination, key, idempotency_key, event_id, event_type, route, content_type, "
    "body, status, attempts, visible_at, created_at, sent_at, answer_code, answer_detail, "
    "last_error"
)
INSERT = (
    "INSERT INTO deliveries (destination, key, idempotency_key, event_id, event_type, "
    "route, content_type, body, created_at, visible_at) VALUES (?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (destination, idempotency_key) DO NOTHING"
)
DUE = (
    f"SELECT {COLS} FROM deliveries d WHERE destination = ? AND status = 'pending' "
    "AND visible_at <= ? AND NOT EXISTS (SELECT 1 FROM deliveries w WHERE "
    "w.destination = d.destination AND w.key = d.key AND w.status = 'pending' "
    "AND w.visible_at > ? AND w.id < d.id) ORDER BY id LIMIT ?"
)
SETTLE = (
    "UPDATE deliveries SET status = ?, visible_at = ?, attempts = attempts + 1, "
    "last_error = ?, answer_code = CASE WHEN ? = '' THEN answer_code ELSE ? END, "
    "answer_detail = CASE WHEN ? = '' THEN answer_detail ELSE ? END, "
    "sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?"
)
RESEND = (
    "UPDATE deliveries SET status = 'pending', visible_at = ?, last_error = 'resent' "
    "WHERE id = ? AND status IN ('sent', 'dead')"
)
TOTALS = (
    "SELECT destination, sum(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), "
    "sum(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), "
    "sum(CASE WHEN status = 'dead' THEN 1 ELSE 0 END), "
    "min(CASE WHEN status = 'pending' THEN created_at END) "
    "FROM deliveries GROUP BY destination ORDER BY destination"
)
LAST_ANSWERS = (
    "SELECT destination, answer_code, sent_at FROM deliveries WHERE id IN "
    "(SELECT max(id) FROM deliveries WHERE answer_code <> '' GROUP BY destination)"
)
MAX_TEXT = 2000
SQL: Final = {
    "delivery_add": INSERT,
    "deliveries_due": DUE,
    "delivery_settle": SETTLE,
    "delivery_resend": RESEND,
    "delivery_totals": TOTALS,
    "delivery_answers": LAST_ANSWERS,
}


def record(r: Sequence[Any]) -> DeliveryRecord:
    """A DeliveryRecord from a `deliveries` row (COLS order)."""
    return DeliveryRecord(
        int(r[0]),
        r[1],
        r[2],
        r[3],
        r[4],
        r[5],
        r[6],
        r[7],
        bytes(r[8]),
        r[9],
        int(r[10]),
        float(r[11]),
        float(r[12]),
        float(r[13]),
        r[14],
        r[15],
        r[16],
    )


def insert_args(
    *,
    destination: str,
    key: str,
    idempotency_key: str,
    event_id: str,
    event_type: str,
    route: str,
    content_type: str,
    body: bytes,
    now: float,
) -> tuple[Any, ...]:
    """The parameters of `delivery_add`: created and visible now."""
    return (
        destination,
        key,
        idempotency_key,
        event_id,
        event_type,
        route,
        content_type,
        body,
        now,
        now,
    )


def settle_args(
    ids: Sequence[int],
    *,
    status: str,
    now: float,
    visible_at: float,
    error: str,
    answer_code: str,
    answer_detail: str,
) -> list[tuple[Any, ...]]:
    """The parameter rows of `delivery_settle`, one per id; the answer code is cut to 64
    characters, the error and answer detail to MAX_TEXT."""
    code, detail = answer_code[:64], answer_detail[:MAX_TEXT]
    return [
        (status, visible_at, error[:MAX_TEXT], code, code, code, detail, status, now, i)
        for i in ids
    ]


def select(query: DeliveryQuery) -> tuple[str, list[Any]]:
    """The SELECT of `Store.deliveries` for these filters, with its arguments."""
    where: list[str] = ["id > ?"]
    args: list[Any] = [query.after]
    for column, value in (("destination", query.destination), ("status", query.status)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if query.since is not None:
        where.append("created_at >= ?")
        args.append(query.since)
    for column, values in (("event_id", query.event_ids), ("id", query.ids)):
        if values is not None:
            if not values:
                where.append("1 = 0")
                continue
            where.append(f"{column} IN ({', '.join('?' * len(values))})")
            args.extend(values)
    args.append(query.limit)
    return f"SELECT {COLS} FROM deliveries WHERE {' AND '.join(where)} ORDER BY id LIMIT ?", args


def totals(rows: Sequence[Sequence[Any]], answers: Sequence[Sequence[Any]]) -> list[DeliveryTotals]:
    """Per-destination DeliveryTotals from the count rows and each destination's last
    answer."""
    last = {r[0]: (str(r[1]), float(r[2] or 0)) for r in answers}
    return [
        DeliveryTotals(
            r[0],
            int(r[1] or 0),
            int(r[2] or 0),
            int(r[3] or 0),
            float(r[4] or 0),
            *last.get(r[0], ("", 0.0)),
        )
        for r in rows
    ]


class SqlDeliveryTx(TxBase):
    """The delivery writes of a transaction on SQL (mixin of SqlTx)."""

    def add_delivery(
        self,
        *,
        destination: str,
        key: str,
        idempotency_key: str,
        event_id: str,
        event_type: str,
        route: str,
        content_type: str,
        body: bytes,
        now: float,
    ) -> bool:
        return bool(
            self._c.execute(
                self._q["delivery_add"],
                insert_args(
                    destination=destination,
                    key=key,
                    idempotency_key=idempotency_key,
                    event_id=event_id,
                    event_type=event_type,
                    route=route,
                    content_type=content_type,
                    body=body,
                    now=now,
                ),
            ).rowcount
            == 1
        )


class SqlDeliveries(StoreBase):
    """The deliveries port on SQL (mixin of SqlStore)."""

    def deliveries_due(self, destination: str, now: float, limit: int) -> list[DeliveryRecord]:
        return [
            record(r) for r in self._rows(self._q["deliveries_due"], (destination, now, now, limit))
        ]

    def settle_deliveries(
        self,
        ids: Sequence[int],
        *,
        status: str,
        now: float,
        visible_at: float = 0.0,
        error: str = "",
        answer_code: str = "",
        answer_detail: str = "",
    ) -> None:
        args = settle_args(
            ids,
            status=status,
            now=now,
            visible_at=visible_at,
            error=error,
            answer_code=answer_code,
            answer_detail=answer_detail,
        )
        self._run(lambda c: self._d.many(c, self._q["delivery_settle"], args))

    def deliveries(self, query: DeliveryQuery = ANY_DELIVERY) -> list[DeliveryRecord]:
        statement, args = select(query)
        return [record(r) for r in self._rows(self._d.sql(statement), args)]

    def delivery_totals(self) -> list[DeliveryTotals]:
        return totals(
            self._rows(self._q["delivery_totals"]), self._rows(self._q["delivery_answers"])
        )

    def resend_deliveries(self, ids: Sequence[int], now: float) -> list[int]:
        return self._run(
            lambda c: [
                i for i in ids if c.execute(self._q["delivery_resend"], (now, i)).rowcount == 1
            ]
        )
