"""The deliveries port (issue 18) in memory: mixed into MemoryTx and MemoryStore, with the
same contract as the SQL adapters (tests/store/contract_deliveries.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from isthmus.store.ports import ANY_DELIVERY, DeliveryQuery, DeliveryRecord, DeliveryTotals
from isthmus.store.sql_deliveries import MAX_TEXT

__all__ = ["DeliveryRecord", "MemoryDeliveries", "MemoryDeliveryTx"]


def _add(
    s: Any,
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
    if (destination, idempotency_key) in s.delivery_keys:
        return False
    i = s.next_id("deliveries")
    s.delivery_keys[(destination, idempotency_key)] = i
    s.deliveries[i] = DeliveryRecord(
        i,
        destination,
        key,
        idempotency_key,
        event_id,
        event_type,
        route,
        content_type,
        body,
        "pending",
        0,
        now,
        now,
        0.0,
        "",
        "",
        "",
    )
    return True


class MemoryDeliveryTx:
    """The delivery writes of a transaction in memory (mixin of MemoryTx)."""

    def _tx(self) -> Any:
        return self  # the MemoryTx this is mixed into

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
        return _add(
            self._tx()._s,
            destination=destination,
            key=key,
            idempotency_key=idempotency_key,
            event_id=event_id,
            event_type=event_type,
            route=route,
            content_type=content_type,
            body=body,
            now=now,
        )


class MemoryDeliveries:
    """The deliveries port of the in-memory store (mixin of MemoryStore)."""

    def _m(self) -> Any:
        return self  # the MemoryStore this is mixed into: its _lock, _state and _write

    def _all(self) -> Iterator[DeliveryRecord]:
        return iter(list(self._m()._state.deliveries.values()))

    def deliveries_due(self, destination: str, now: float, limit: int) -> list[DeliveryRecord]:
        due: list[DeliveryRecord] = []
        waiting: set[str] = set()
        with self._m()._lock:
            for d in self._all():
                if d.destination != destination or d.status != "pending":
                    continue
                if d.visible_at > now:
                    waiting.add(d.key)
                elif d.key not in waiting and len(due) < limit:
                    due.append(d)
        return due

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
        with self._m()._write() as s:
            for i in ids:
                d = s.deliveries.get(i)
                if d is None:
                    continue
                s.deliveries[i] = dataclasses.replace(
                    d,
                    status=status,
                    visible_at=visible_at,
                    attempts=d.attempts + 1,
                    last_error=error[:MAX_TEXT],
                    answer_code=answer_code[:64] if answer_code else d.answer_code,
                    answer_detail=answer_detail[:MAX_TEXT] if answer_code else d.answer_detail,
                    sent_at=now if status == "sent" else d.sent_at,
                )

    def deliveries(self, query: DeliveryQuery = ANY_DELIVERY) -> list[DeliveryRecord]:
        out: list[DeliveryRecord] = []
        with self._m()._lock:
            for d in self._all():
                if len(out) >= query.limit:
                    break
                if (
                    d.id <= query.after
                    or query.destination not in (None, d.destination)
                    or query.status not in (None, d.status)
                    or (query.since is not None and d.created_at < query.since)
                    or (query.event_ids is not None and d.event_id not in query.event_ids)
                    or (query.ids is not None and d.id not in query.ids)
                ):
                    continue
                out.append(d)
        return out

    def delivery_totals(self) -> list[DeliveryTotals]:
        rows: dict[str, list[Any]] = {}
        with self._m()._lock:
            for d in self._all():
                r = rows.setdefault(d.destination, [0, 0, 0, 0.0, "", 0.0])
                r[("pending", "sent", "dead").index(d.status)] += 1
                if d.status == "pending" and (not r[3] or d.created_at < r[3]):
                    r[3] = d.created_at
                if d.answer_code:
                    r[4], r[5] = d.answer_code, d.sent_at
        return [DeliveryTotals(name, *rows[name]) for name in sorted(rows)]

    def resend_deliveries(self, ids: Sequence[int], now: float) -> list[int]:
        done: list[int] = []
        with self._m()._write() as s:
            for i in ids:
                d = s.deliveries.get(i)
                if d is not None and d.status in ("sent", "dead"):
                    s.deliveries[i] = dataclasses.replace(
                        d, status="pending", visible_at=now, last_error="resent"
                    )
                    done.append(i)
        return done
