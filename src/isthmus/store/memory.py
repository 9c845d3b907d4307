"""In-memory store: the fast fake of the store port, next to the real adapters.

`MemoryStore` passes the same contract suite (tests/store/contract.py) as `SqliteStore`, so
flows can be unit-tested against it in microseconds and trusted against the real thing.
It is not durable and it is not meant for production: it lives as long as the process.
Each aggregate is a mixin of its own (memory_inbox, memory_accounts, memory_journal,
memory_work, memory_refunds, memory_deliveries, claim_adapters) over memory_state's State.

How it keeps the contract:
- One re-entrant lock guards all state. A `transaction()` holds it from begin to end, as
  `BEGIN IMMEDIATE` serializes SQLite writers, so no other thread sees uncommitted effects.
- A transaction snapshots the state when it begins and puts the snapshot back if the block
  raises; a savepoint does the same around its own block. Every stored value is immutable
  (frozen records, bytes, Decimals), so copying the containers is a full snapshot.
- Idempotency keys are the same unique keys as the SQLite schema's constraints: inbox
  (channel, control_id), charges event_id, entries entry_key, work items (kind, event_id),
  batches batch_id, outbox (destination, batch_id, fmt).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from isthmus.store.claim_adapters import MemoryClaims, MemoryClaimTx
from isthmus.store.memory_accounts import MemoryAccounts, MemoryAccountsTx
from isthmus.store.memory_deliveries import MemoryDeliveries, MemoryDeliveryTx
from isthmus.store.memory_inbox import MemoryInbox
from isthmus.store.memory_journal import MemoryJournal, MemoryJournalTx
from isthmus.store.memory_refunds import MemoryRefunds, MemoryRefundsTx
from isthmus.store.memory_state import State
from isthmus.store.memory_work import MemoryWork, MemoryWorkTx
from isthmus.store.migrations import HEAD
from isthmus.store.ports import HELD


class MemoryTx(
    MemoryAccountsTx,
    MemoryJournalTx,
    MemoryWorkTx,
    MemoryRefundsTx,
    MemoryDeliveryTx,
    MemoryClaimTx,
):
    """Effects of one unit of work on a `MemoryStore`; the store's lock is held throughout."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    @property
    def _s(self) -> State:
        return self._store._state

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        with self._store._undo_on_error():
            yield


class MemoryStore(
    MemoryInbox,
    MemoryAccounts,
    MemoryJournal,
    MemoryWork,
    MemoryRefunds,
    MemoryDeliveries,
    MemoryClaims,
):
    """The store port in memory; see the module docstring."""

    def __init__(self) -> None:
        self._state = State()
        self._lock = threading.RLock()

    @contextmanager
    def _undo_on_error(self) -> Iterator[None]:
        """Snapshot the state; put it back if the block raises (the lock must be held)."""
        saved = self._state.snapshot()
        try:
            yield
        except BaseException:
            self._state = saved
            raise

    @contextmanager
    def _write(self) -> Iterator[State]:
        with self._lock, self._undo_on_error():
            yield self._state

    def _tx(self) -> MemoryTx:
        return MemoryTx(self)

    def transaction(self) -> AbstractContextManager[MemoryTx]:
        @contextmanager
        def tx() -> Iterator[MemoryTx]:
            with self._write():
                yield MemoryTx(self)

        return tx()

    def migrate(self) -> int:
        return int(HEAD)  # nothing to create: the schema is the Python types

    def counts(self) -> dict[str, int]:
        with self._lock:
            s = self._state
            return {
                "messages": len(s.inbox),
                "rejected": sum(m.status == "rejected" for m in s.inbox.values()),
                "unpublished": sum(not m.published and m.status != HELD for m in s.inbox.values()),
                "held": sum(m.status == HELD for m in s.inbox.values()),
                "patients": len(s.patients),
                "charges": len(s.charges),
                "journal_entries": len(s.entries),
                "journal_lines": sum(len(e.lines) for e in s.entries.values()),
                "open_work_items": sum(w.status == "open" for w in s.work_items.values()),
                "batches": len(s.batches),
                "outbox_pending": sum(o.status == "pending" for o in s.outbox.values()),
            }

    def close(self) -> None:
        """Nothing to release; kept for the port."""
