"""The work-item aggregate's port: what waits for a person (work items, unique on kind and
event id), the events held behind a missing mapping, and the mapping overrides a fix writes.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True, slots=True)
class WorkItem:
    """Something waiting for a person: a held event (kind, queue, detail) and the envelope
    to resubmit once fixed."""

    id: int
    kind: str
    queue: str
    status: str  # open | resolved | resubmitted
    key: str
    event_id: str
    correlation_id: str
    detail: str
    created_at: float
    updated_at: float
    resolution: str
    envelope: bytes


@dataclass(frozen=True, slots=True)
class HeldEvent:
    """An event held behind a missing mapping: `ref` is the event id of the work item of
    that missing key, shared by every event it holds. `released_at` 0: still held."""

    ref: str
    event_id: str
    key: str  # the bus partition key the event goes back out on
    envelope: bytes
    amount: Decimal
    currency: str
    held_at: float
    released_at: float = 0.0
    entry_key: str = ""  # the journal entry it posted once released


@dataclass(frozen=True, slots=True)
class HoldTotals:
    """What one work item holds: how many events, their amount per currency, the oldest."""

    count: int
    amounts: tuple[tuple[str, Decimal], ...]  # (currency, sum), by currency
    oldest: float


class WorkTx(Protocol):
    """The work-item writes inside a store transaction: work items, mapping overrides and
    held events."""

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
    ) -> int | None: ...

    def mapping_override(self, table: str, code: str) -> str | None: ...

    def set_mapping_override(self, table: str, code: str, value: str) -> None:
        """Keep what a flow learns from a feed (an employee's expired credential, a
        transfer) as a mapping row, inside this transaction."""
        ...

    def close_work_items(self, event_id: str, resolution: str, now: float) -> int:
        """Mark the open or resubmitted work items of an event resolved (it went through)."""
        ...

    def pending_events(self, event_ids: Collection[str]) -> set[str]:
        """Those of `event_ids` that have an open or resubmitted work item, or a released
        hold whose posting is not recorded yet: the events whose posting must close or
        record something (`close_work_items`, `held_posted`). One read for a worker's
        batch, instead of two writes an event."""
        ...

    def hold_event(self, held: HeldEvent) -> bool:
        """Keep an event behind the work item `held.ref`; True when it is newly held (or held
        again after a release), False when it is held there already."""
        ...

    def held_posted(self, event_id: str, entry_key: str) -> int:
        """Record the journal entry a released held event posted; how many holds it ends."""
        ...


class WorkStore(Protocol):
    """Work items, mapping overrides and held events, read and changed in a transaction of
    their own."""

    def work_items(
        self, status: str | None = None, limit: int = 1000, after: int | None = None
    ) -> list[WorkItem]:
        """Work items by id, optionally of one status, those with an id above `after`
        when given (keyset paging: the next page starts after the last id shown)."""
        ...

    def work_item(self, item_id: int) -> WorkItem | None: ...

    def set_work_item_status(
        self, item_id: int, status: str, resolution: str, now: float
    ) -> None: ...

    def set_mapping_override(self, table: str, code: str, value: str) -> None: ...

    def work_items_for(self, correlation_id: str) -> list[WorkItem]: ...

    def held_events(self, ref: str, limit: int = 1000) -> list[HeldEvent]:
        """The events held (or once held) behind work item event id `ref`, oldest first."""
        ...

    def holds_of(self, event_ids: Sequence[str]) -> list[HeldEvent]:
        """Every hold (current or released) of these events, by ref and event id: which
        work item an event waits (or waited) behind, for its message's trace."""
        ...

    def hold_totals(self, refs: Sequence[str]) -> dict[str, HoldTotals]:
        """Per ref, what is still held behind it (refs holding nothing are left out)."""
        ...

    def release_held(self, ref: str, event_ids: Sequence[str], now: float) -> int:
        """Mark these events of `ref` released (back on the bus); how many were held."""
        ...

    def mapping_overrides(self, tables: Sequence[str]) -> list[tuple[str, str, str]]:
        """(table, code, value) of every override row of these tables, by table and code."""
        ...
