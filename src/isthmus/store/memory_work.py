"""The work-item aggregate in memory (the fake of ports_work): work items unique on (kind,
event id), events held behind a missing mapping, and the mapping overrides.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from decimal import Decimal

from isthmus.store.memory_state import MemoryStoreBase, MemoryTxBase
from isthmus.store.ports import HeldEvent, HoldTotals, WorkItem


class MemoryWorkTx(MemoryTxBase):
    """The work-item writes of a transaction in memory (mixin of MemoryTx)."""

    def add_work_item(
        self,
        *,
        kind: str,
        queue: str,
        key: str,
        event_id: str,
        correlation_id: str,
        detail: str,
        envelope: bytes,
        now: float,
    ) -> int | None:
        s = self._s
        known = s.work_keys.get((kind, event_id))
        if known is None:
            item_id = s.next_id("work_items")
            s.work_items[item_id] = WorkItem(
                id=item_id,
                kind=kind,
                queue=queue,
                status="open",
                key=key,
                event_id=event_id,
                correlation_id=correlation_id,
                detail=detail,
                created_at=now,
                updated_at=now,
                resolution="",
                envelope=envelope,
            )
            s.work_keys[(kind, event_id)] = item_id
            return item_id
        item = s.work_items[known]
        if item.status == "resubmitted":  # seen before: it was resubmitted and failed again
            s.work_items[known] = dataclasses.replace(
                item, status="open", detail=detail, updated_at=now
            )
        return None

    def mapping_override(self, table: str, code: str) -> str | None:
        return self._s.overrides.get((table, code))

    def set_mapping_override(self, table: str, code: str, value: str) -> None:
        self._s.overrides[(table, code)] = value

    def close_work_items(self, event_id: str, resolution: str, now: float) -> int:
        closed = 0
        for item_id, item in self._s.work_items.items():
            if item.event_id == event_id and item.status in ("open", "resubmitted"):
                self._s.work_items[item_id] = dataclasses.replace(
                    item,
                    status="resolved",
                    resolution=item.resolution or resolution,
                    updated_at=now,
                )
                closed += 1
        return closed

    def hold_event(self, held: HeldEvent) -> bool:
        known = self._s.held.get((held.ref, held.event_id))
        if known is not None and not known.released_at:
            return False
        self._s.held[(held.ref, held.event_id)] = dataclasses.replace(
            held,
            released_at=0.0,
            entry_key="",
            held_at=known.held_at if known is not None else held.held_at,
        )
        return True

    def pending_events(self, event_ids: Collection[str]) -> set[str]:
        wanted = set(event_ids)
        return {
            w.event_id
            for w in self._s.work_items.values()
            if w.event_id in wanted and w.status in ("open", "resubmitted")
        } | {
            h.event_id
            for h in self._s.held.values()
            if h.event_id in wanted and h.released_at and not h.entry_key
        }

    def held_posted(self, event_id: str, entry_key: str) -> int:
        n = 0
        for k, h in self._s.held.items():
            if h.event_id == event_id and h.released_at and not h.entry_key:
                self._s.held[k] = dataclasses.replace(h, entry_key=entry_key)
                n += 1
        return n


class MemoryWork(MemoryStoreBase):
    """The work items and held events of the in-memory store (mixin of MemoryStore)."""

    def work_items(
        self, status: str | None = None, limit: int = 1000, after: int | None = None
    ) -> list[WorkItem]:
        with self._lock:
            return [
                w
                for _, w in sorted(self._state.work_items.items())
                if status in (None, w.status) and (after is None or w.id > after)
            ][:limit]

    def work_item(self, item_id: int) -> WorkItem | None:
        with self._lock:
            return self._state.work_items.get(item_id)

    def work_items_for(self, correlation_id: str) -> list[WorkItem]:
        with self._lock:
            return [
                w for w in self._state.work_items.values() if w.correlation_id == correlation_id
            ]

    def held_events(self, ref: str, limit: int = 1000) -> list[HeldEvent]:
        with self._lock:
            found = [h for h in self._state.held.values() if h.ref == ref]
        return sorted(found, key=lambda h: (h.held_at, h.event_id))[:limit]

    def holds_of(self, event_ids: Sequence[str]) -> list[HeldEvent]:
        wanted = set(event_ids)
        with self._lock:
            return sorted(
                (h for h in self._state.held.values() if h.event_id in wanted),
                key=lambda h: (h.ref, h.event_id),
            )

    def hold_totals(self, refs: Sequence[str]) -> dict[str, HoldTotals]:
        wanted = set(refs)
        acc: dict[str, tuple[int, dict[str, Decimal], float]] = {}
        with self._lock:
            for h in self._state.held.values():
                if h.ref in wanted and not h.released_at:
                    n, sums, oldest = acc.get(h.ref, (0, {}, h.held_at))
                    sums[h.currency] = sums.get(h.currency, Decimal(0)) + h.amount
                    acc[h.ref] = (n + 1, sums, min(oldest, h.held_at))
        return {
            r: HoldTotals(n, tuple(sorted(sums.items())), oldest)
            for r, (n, sums, oldest) in acc.items()
        }

    def release_held(self, ref: str, event_ids: Sequence[str], now: float) -> int:
        n = 0
        with self._write() as s:
            for e in event_ids:
                h = s.held.get((ref, e))
                if h is not None and not h.released_at:
                    s.held[(ref, e)] = dataclasses.replace(h, released_at=now)
                    n += 1
        return n

    def mapping_overrides(self, tables: Sequence[str]) -> list[tuple[str, str, str]]:
        with self._lock:
            return sorted((t, c, v) for (t, c), v in self._state.overrides.items() if t in tables)

    def set_work_item_status(self, item_id: int, status: str, resolution: str, now: float) -> None:
        with self._write() as s:
            item = s.work_items.get(item_id)
            if item is not None:
                s.work_items[item_id] = dataclasses.replace(
                    item, status=status, resolution=resolution, updated_at=now
                )

    def set_mapping_override(self, table: str, code: str, value: str) -> None:
        with self._write() as s:
            s.overrides[(table, code)] = value
