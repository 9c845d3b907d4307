"""What the in-memory store holds, and what its aggregate mixins (memory_*.py) use of it.

`State` is every table as a dict of immutable values (frozen records, bytes, Decimals), so
copying the containers is a full snapshot: a transaction or savepoint that raises puts its
snapshot back. `MemoryTxBase` and `MemoryStoreBase` name what the mixins reach: the state,
the store's one re-entrant lock, a write block that undoes itself on error, and a Tx.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from isthmus.ledger.journal import JournalEntry
from isthmus.store.ports import (
    ChargeRecord,
    ClaimEvent,
    ClaimRecord,
    ClaimState,
    DeliveryRecord,
    DepositRecord,
    HeldEvent,
    OutboxItem,
    Patient,
    RefundRecord,
    StoredMessage,
    WorkItem,
)

# (patient_key, facility, patient_class, status, updated_at)
Encounter = tuple[str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class Batch:
    """A sealed batch in memory: its channel, policy, line count, creation time and body."""

    channel: str
    policy: str
    line_count: int
    created_at: float
    body: bytes


@dataclass
class State:
    """Everything the store holds. Containers are copied for a snapshot; values never change."""

    inbox: dict[int, StoredMessage] = field(default_factory=dict)
    inbox_keys: dict[tuple[str, str], int] = field(default_factory=dict)
    patients: dict[str, Patient] = field(default_factory=dict)
    encounters: dict[str, Encounter] = field(default_factory=dict)
    billing_accounts: dict[str, tuple[str, str]] = field(default_factory=dict)
    charges: dict[str, ChargeRecord] = field(default_factory=dict)
    claims: dict[str, ClaimRecord] = field(default_factory=dict)  # in register order
    deposits: dict[str, DepositRecord] = field(default_factory=dict)  # in record order
    entries: dict[str, JournalEntry] = field(default_factory=dict)  # in posting order
    entry_batch: dict[str, str] = field(default_factory=dict)
    batches: dict[str, Batch] = field(default_factory=dict)
    outbox: dict[int, OutboxItem] = field(default_factory=dict)
    outbox_keys: set[tuple[str, str, str]] = field(default_factory=set)
    work_items: dict[int, WorkItem] = field(default_factory=dict)
    work_keys: dict[tuple[str, str], int] = field(default_factory=dict)
    overrides: dict[tuple[str, str], str] = field(default_factory=dict)
    held: dict[tuple[str, str], HeldEvent] = field(default_factory=dict)  # (ref, event id)
    refunds: dict[str, RefundRecord] = field(default_factory=dict)  # in request order
    flow_state: dict[str, bytes] = field(default_factory=dict)
    applied: dict[str, bytes] = field(default_factory=dict)
    deliveries: dict[int, DeliveryRecord] = field(default_factory=dict)  # issue 18
    delivery_keys: dict[tuple[str, str], int] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)  # the `meta` table (channel states)
    claim_states: dict[str, ClaimState] = field(default_factory=dict)  # issue 20
    claim_events: dict[str, ClaimEvent] = field(default_factory=dict)
    last_ids: dict[str, int] = field(default_factory=dict)

    def snapshot(self) -> State:
        return State(**{f.name: copy.copy(getattr(self, f.name)) for f in dataclasses.fields(self)})

    def next_id(self, table: str) -> int:
        self.last_ids[table] = self.last_ids.get(table, 0) + 1
        return self.last_ids[table]


class MemoryTxBase:
    """What the transaction mixins use: the state the transaction writes (`_s`)."""

    @property
    def _s(self) -> State:
        raise NotImplementedError


class MemoryStoreBase:
    """What the store mixins use: the state, its lock, a write transaction and a MemoryTx."""

    _state: State
    _lock: threading.RLock

    def _write(self) -> AbstractContextManager[State]:
        raise NotImplementedError

    def _tx(self) -> Any:
        """A MemoryTx on this store (inside `_write`)."""
        raise NotImplementedError
