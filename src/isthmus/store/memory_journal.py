"""The journal and outbox aggregates in memory (the fakes of ports_journal and
ports_outbox): entries in posting order, the batches that seal them, and their files.
A row queued as `BATCH_BODY` holds its batch's body itself (the same bytes, not a copy).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from decimal import Decimal

from isthmus.ledger import batch_codec
from isthmus.ledger.batch import JournalBatch
from isthmus.ledger.journal import JournalEntry, JournalLine
from isthmus.store.memory_state import Batch, MemoryStoreBase, MemoryTxBase
from isthmus.store.ports import OutboxItem
from isthmus.store.ports_journal import BATCH_BODY
from isthmus.store.sql_outbox import MAX_ERROR as _MAX_ERROR


class MemoryJournalTx(MemoryTxBase):
    """The journal writes of a transaction in memory (mixin of MemoryTx)."""

    def insert_entry(self, entry: JournalEntry) -> bool:
        if entry.entry_key in self._s.entries:
            return False
        self._s.entries[entry.entry_key] = entry
        return True

    def ar_balances(self, ar_account: str, token: str) -> dict[tuple[str, str], Decimal]:
        out: dict[tuple[str, str], Decimal] = {}
        for entry in self._s.entries.values():
            for ln in entry.lines:
                if ln.account == ar_account and ln.dims.account_token == token:
                    k = (ln.dims.company, ln.currency)
                    out[k] = out.get(k, Decimal(0)) + ln.debit - ln.credit
        return out


class MemoryJournal(MemoryStoreBase):
    """The journal, its batches and the outbox of the in-memory store (mixin of MemoryStore)."""

    def journal_after(self, after: int, limit: int = 10_000) -> list[tuple[int, JournalEntry]]:
        """Position: 1 + the entry's index in posting order (entries are never removed)."""
        with self._lock:
            found = list(self._state.entries.values())
        return list(enumerate(found, start=1))[after : after + limit]

    def journal_lines(self) -> Iterator[JournalLine]:
        with self._lock:
            lines = [ln for e in self._state.entries.values() for ln in e.lines]
        yield from lines

    def entries(
        self,
        *,
        correlation_id: str | None = None,
        unbatched_channel: str | None = None,
        limit: int = 100_000,
    ) -> list[JournalEntry]:
        with self._lock:
            s = self._state
            found = list(s.entries.values())
            if correlation_id is not None:
                found = [e for e in found if e.correlation_id == correlation_id]
            elif unbatched_channel is not None:
                found = [
                    e
                    for e in found
                    if e.channel == unbatched_channel and e.entry_key not in s.entry_batch
                ]
            return found[:limit]

    def entry_batches(self, entry_keys: Sequence[str]) -> dict[str, str]:
        with self._lock:
            return {
                k: self._state.entry_batch[k] for k in entry_keys if k in self._state.entry_batch
            }

    def unbatched_channels(self) -> list[str]:
        with self._lock:
            s = self._state
            return sorted(
                {e.channel for e in s.entries.values() if e.entry_key not in s.entry_batch}
            )

    def record_batch(
        self, batch: JournalBatch, outbox: Sequence[tuple[str, str, bytes]], now: float
    ) -> bool:
        """Seal a batch: mark its entries, keep its body, queue its files (a `BATCH_BODY` row
        is the body). All or nothing."""
        with self._write() as s:
            if batch.batch_id in s.batches or any(
                k in s.entry_batch or k not in s.entries for k in batch.entry_keys
            ):
                return False
            body = batch_codec.encode(batch)[1]
            s.batches[batch.batch_id] = Batch(
                batch.channel, batch.policy, len(batch.lines), now, body
            )
            for k in batch.entry_keys:
                s.entry_batch[k] = batch.batch_id
            for destination, fmt, payload in outbox:
                key = (destination, batch.batch_id, fmt)
                if key in s.outbox_keys:
                    continue
                s.outbox_keys.add(key)
                item_id = s.next_id("outbox")
                s.outbox[item_id] = OutboxItem(
                    id=item_id,
                    destination=destination,
                    batch_id=batch.batch_id,
                    fmt=fmt,
                    payload=body if payload == BATCH_BODY else payload,
                    status="pending",
                    attempts=0,
                    visible_at=0.0,
                    last_error="",
                )
        return True

    def batches(self) -> list[tuple[str, str, int, float]]:
        with self._lock:
            rows = [
                (bid, b.channel, b.line_count, b.created_at)
                for bid, b in self._state.batches.items()
            ]
        return sorted(rows, key=lambda r: r[3])

    def batch_body(self, batch_id: str) -> bytes | None:
        with self._lock:
            b = self._state.batches.get(batch_id)
            return None if b is None else b.body

    def outbox_due(self, destination: str, now: float, limit: int) -> list[OutboxItem]:
        """Pending rows of `destination` in order, up to the first one still waiting for its
        retry: a destination is drained in order (sent and dead rows hold nothing back)."""
        due: list[OutboxItem] = []
        with self._lock:
            for o in self._state.outbox.values():
                if o.destination != destination or o.status != "pending":
                    continue
                if o.visible_at > now or len(due) >= limit:
                    break
                due.append(o)
        return due

    def outbox_settle(
        self, item_id: int, *, status: str, error: str = "", visible_at: float = 0.0
    ) -> None:
        with self._write() as s:
            item = s.outbox.get(item_id)
            if item is not None:
                s.outbox[item_id] = dataclasses.replace(
                    item,
                    status=status,
                    last_error=error[:_MAX_ERROR],
                    visible_at=visible_at,
                    attempts=item.attempts + 1,
                )

    def outbox_items(self, status: str | None = None) -> list[OutboxItem]:
        with self._lock:
            return [o for o in self._state.outbox.values() if status in (None, o.status)]
