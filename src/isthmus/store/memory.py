"""In-memory store: the fast fake of the store port, next to the real adapters.

`MemoryStore` passes the same contract suite (tests/store/contract.py) as `SqliteStore`, so
flows can be unit-tested against it in microseconds and trusted against the real thing.
It is not durable and it is not meant for production: it lives as long as the process.

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

import copy
import dataclasses
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from isthmus.ledger.batch import JournalBatch
from isthmus.ledger.journal import JournalEntry, JournalLine
from isthmus.store import channel_meta
from isthmus.store.claim_adapters import MemoryClaims, MemoryClaimTx
from isthmus.store.memory_deliveries import DeliveryRecord, MemoryDeliveries, MemoryDeliveryTx
from isthmus.store.message_filter import matches
from isthmus.store.migrations import HEAD
from isthmus.store.ports import (
    HELD,
    Accepted,
    BillingAccount,
    ChannelCount,
    ChannelState,
    ChargeRecord,
    ClaimEvent,
    ClaimRecord,
    ClaimState,
    DepositRecord,
    HeldEvent,
    HoldTotals,
    Inbound,
    MessageQuery,
    OutboxItem,
    Patient,
    PurgeRule,
    RefundRecord,
    StoredMessage,
    WorkItem,
    held_ref,
)
from isthmus.store.purge_filter import purge_matches

_batch_enc = msgspec.json.Encoder(decimal_format="string")
_MAX_ERROR = 2000

# (patient_key, facility, patient_class, status, updated_at)
Encounter = tuple[str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class _Batch:
    channel: str
    policy: str
    line_count: int
    created_at: float
    body: bytes


@dataclass
class _State:
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
    batches: dict[str, _Batch] = field(default_factory=dict)
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

    def snapshot(self) -> _State:
        return _State(**{f.name: copy.copy(getattr(self, f.name))
                         for f in dataclasses.fields(self)})

    def next_id(self, table: str) -> int:
        self.last_ids[table] = self.last_ids.get(table, 0) + 1
        return self.last_ids[table]


class MemoryTx(MemoryDeliveryTx, MemoryClaimTx):
    """Effects of one unit of work on a `MemoryStore`; the store's lock is held throughout."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    @property
    def _s(self) -> _State:
        return self._store._state

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        with self._store._undo_on_error():
            yield

    def get_patient(self, key: str) -> Patient | None:
        return self._s.patients.get(key)

    def put_patient(self, patient: Patient) -> None:
        old = self._s.patients.get(patient.key)
        if old is not None:  # upsert keeps the identity: mrn, authority, token
            patient = dataclasses.replace(patient, mrn=old.mrn, authority=old.authority,
                                          token=old.token)
        self._s.patients[patient.key] = patient

    def put_encounter(self, visit_number: str, patient_key: str, facility: str,
                      patient_class: str, status: str, at: str) -> None:
        old = self._s.encounters.get(visit_number)
        if old is None:
            self._s.encounters[visit_number] = (patient_key, facility, patient_class, status, at)
        else:
            self._s.encounters[visit_number] = (old[0], old[1], patient_class or old[2],
                                                status, at)

    def put_billing_account(self, account_number: str, patient_key: str, facility: str) -> None:
        old = self._s.billing_accounts.get(account_number)
        self._s.billing_accounts[account_number] = (patient_key,
                                                    old[1] if old else facility)

    def get_billing_account(self, account_number: str) -> BillingAccount | None:
        row = self._s.billing_accounts.get(account_number)
        return None if row is None else BillingAccount(account_number, row[0], row[1])

    def record_claim(self, claim: ClaimRecord) -> bool:
        if claim.event_id in self._s.claims:
            return False
        self._s.claims[claim.event_id] = claim
        return True

    def find_claim(self, patient_control_number: str,
                   payer_claim_id: str = "") -> ClaimRecord | None:
        claims = list(self._s.claims.values())[::-1]
        found = next((c for c in claims if c.patient_control_number ==
                      patient_control_number), None)
        if found is None and payer_claim_id:
            found = next((c for c in claims if c.payer_claim_id == payer_claim_id), None)
        return found

    def merge_patient(self, merged_key: str, survivor_key: str) -> int:
        s = self._s
        if merged_key in s.patients:
            s.patients[merged_key] = dataclasses.replace(s.patients[merged_key],
                                                         merged_into=survivor_key)
        for visit, enc in s.encounters.items():
            if enc[0] == merged_key:
                s.encounters[visit] = (survivor_key, *enc[1:])
        for number, (owner, facility) in s.billing_accounts.items():
            if owner == merged_key:
                s.billing_accounts[number] = (survivor_key, facility)
        moved = 0
        for event_id, charge in s.charges.items():
            if charge.patient_key == merged_key:
                s.charges[event_id] = dataclasses.replace(charge, patient_key=survivor_key)
                moved += 1
        return moved

    def record_charge(self, charge: ChargeRecord) -> bool:
        if charge.event_id in self._s.charges:
            return False
        self._s.charges[charge.event_id] = charge
        return True

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

    def add_work_item(self, *, kind: str, queue: str, key: str, event_id: str,
                      correlation_id: str, detail: str, envelope: bytes,
                      now: float) -> int | None:
        s = self._s
        known = s.work_keys.get((kind, event_id))
        if known is None:
            item_id = s.next_id("work_items")
            s.work_items[item_id] = WorkItem(
                id=item_id, kind=kind, queue=queue, status="open", key=key, event_id=event_id,
                correlation_id=correlation_id, detail=detail, created_at=now, updated_at=now,
                resolution="", envelope=envelope)
            s.work_keys[(kind, event_id)] = item_id
            return item_id
        item = s.work_items[known]
        if item.status == "resubmitted":  # seen before: it was resubmitted and failed again
            s.work_items[known] = dataclasses.replace(item, status="open", detail=detail,
                                                      updated_at=now)
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
                    item, status="resolved", resolution=item.resolution or resolution,
                    updated_at=now)
                closed += 1
        return closed

    def hold_event(self, held: HeldEvent) -> bool:
        known = self._s.held.get((held.ref, held.event_id))
        if known is not None and not known.released_at:
            return False
        self._s.held[(held.ref, held.event_id)] = dataclasses.replace(
            held, released_at=0.0, entry_key="",
            held_at=known.held_at if known is not None else held.held_at)
        return True

    def pending_events(self, event_ids: Collection[str]) -> set[str]:
        wanted = set(event_ids)
        return ({w.event_id for w in self._s.work_items.values()
                 if w.event_id in wanted and w.status in ("open", "resubmitted")}
                | {h.event_id for h in self._s.held.values()
                   if h.event_id in wanted and h.released_at and not h.entry_key})

    def held_posted(self, event_id: str, entry_key: str) -> int:
        n = 0
        for k, h in self._s.held.items():
            if h.event_id == event_id and h.released_at and not h.entry_key:
                self._s.held[k] = dataclasses.replace(h, entry_key=entry_key)
                n += 1
        return n

    def record_deposit(self, record: DepositRecord) -> bool:
        if record.event_id in self._s.deposits:
            return False
        self._s.deposits[record.event_id] = record
        return True

    def open_deposits(self, reference: str) -> list[DepositRecord]:
        return [d for d in self._s.deposits.values()
                if d.reference == reference and not d.matched_with]

    def match_deposits(self, event_id: str, other_event_id: str, entry_key: str) -> None:
        for a, b in ((event_id, other_event_id), (other_event_id, event_id)):
            if a in self._s.deposits:
                self._s.deposits[a] = dataclasses.replace(
                    self._s.deposits[a], matched_with=b, entry_key=entry_key)

    def lock_refunds(self, account_token: str) -> None:
        """Nothing to do: the store's lock is held for the whole transaction."""

    def add_refund(self, refund: RefundRecord) -> bool:
        if refund.id in self._s.refunds:
            return False
        self._s.refunds[refund.id] = refund
        return True

    def get_refund(self, refund_id: str) -> RefundRecord | None:
        return self._s.refunds.get(refund_id)

    def pending_refunds(self, account_token: str) -> list[RefundRecord]:
        return [r for r in self._s.refunds.values()
                if r.account_token == account_token and r.status == "pending"]

    def decide_refund(self, refund_id: str, *, status: str, decided_by: str,
                      decided_at: float, note: str, entry_key: str = "") -> bool:
        r = self._s.refunds.get(refund_id)
        if r is None or r.status != "pending":
            return False
        self._s.refunds[refund_id] = dataclasses.replace(
            r, status=status, decided_by=decided_by, decided_at=decided_at, note=note,
            entry_key=entry_key)
        return True

    def load_state(self, name: str) -> bytes | None:
        return self._s.flow_state.get(name)

    def save_state(self, name: str, body: bytes) -> None:
        self._s.flow_state[name] = body

    def applied(self, key: str) -> bytes | None:
        return self._s.applied.get(key)

    def mark_applied(self, key: str, body: bytes) -> bool:
        if key in self._s.applied:
            return False
        self._s.applied[key] = body
        return True


class MemoryStore(MemoryDeliveries, MemoryClaims):
    """The store port in memory; see the module docstring."""

    def __init__(self) -> None:
        self._state = _State()
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
    def _write(self) -> Iterator[_State]:
        with self._lock, self._undo_on_error():
            yield self._state

    def transaction(self) -> AbstractContextManager[MemoryTx]:
        @contextmanager
        def tx() -> Iterator[MemoryTx]:
            with self._write():
                yield MemoryTx(self)
        return tx()

    # inbox ---------------------------------------------------------------------------------
    def migrate(self) -> int:
        return int(HEAD)  # nothing to create: the schema is the Python types

    def accept(self, batch: Sequence[Inbound]) -> list[Accepted]:
        out: list[Accepted] = []
        with self._write() as s:
            for m in batch:
                known = s.inbox_keys.get((m.channel, m.control_id))
                if known is not None:
                    first = s.inbox[known]
                    out.append(Accepted(known, True, first.ack_code, first.status, first.error,
                                        conflict=bool(m.digest and first.digest
                                                      and m.digest != first.digest)))
                    continue
                mid = s.next_id("inbox")
                s.inbox[mid] = StoredMessage(
                    id=mid, channel=m.channel, control_id=m.control_id,
                    received_at=m.received_at, peer=m.peer, message_type=m.message_type,
                    status=m.status, ack_code=m.ack_code, error=m.error, raw=m.raw,
                    events=m.events, published=not m.events, digest=m.digest)
                s.inbox_keys[(m.channel, m.control_id)] = mid
                if m.hold is not None:
                    ref = held_ref(m.channel, m.control_id)
                    MemoryTx(self).add_work_item(
                        kind=m.hold.kind, queue=m.hold.queue, key=m.control_id,
                        event_id=ref, correlation_id=ref, detail=m.hold.detail,
                        envelope=b"", now=m.received_at)
                out.append(Accepted(mid, False, m.ack_code, m.status, m.error))
        return out

    def unpublished(self, limit: int) -> list[StoredMessage]:
        with self._lock:
            return [m for m in self._state.inbox.values()
                    if not m.published and m.status != HELD][:limit]

    def release(self, channel: str, control_id: str, *, resolution: str,
                now: float) -> StoredMessage | None:
        with self._write() as s:
            mid = s.inbox_keys.get((channel, control_id))
            if mid is None or s.inbox[mid].status != HELD:
                return None
            s.inbox[mid] = dataclasses.replace(s.inbox[mid], status="accepted")
            MemoryTx(self).close_work_items(held_ref(channel, control_id), resolution, now)
            return s.inbox[mid]

    def mark_published(self, ids: Sequence[int]) -> None:
        with self._write() as s:
            for i in ids:
                if i in s.inbox:
                    s.inbox[i] = dataclasses.replace(s.inbox[i], published=True)

    def message(self, message_id: int) -> StoredMessage | None:
        with self._lock:
            return self._state.inbox.get(message_id)

    def message_by_control_id(self, channel: str, control_id: str) -> StoredMessage | None:
        with self._lock:
            known = self._state.inbox_keys.get((channel, control_id))
            return None if known is None else self._state.inbox[known]

    def messages(self, *, since: float | None = None, until: float | None = None,
                 status: str | None = None, limit: int = 1000) -> list[StoredMessage]:
        with self._lock:
            return [m for m in self._state.inbox.values()
                    if (since is None or m.received_at >= since)
                    and (until is None or m.received_at < until)
                    and (status is None or m.status == status)][:limit]

    def purge_candidates(self, rule: PurgeRule, *, after: int = 0,
                         limit: int = 500) -> list[StoredMessage]:
        with self._lock:
            return [m for _, m in sorted(self._state.inbox.items())
                    if purge_matches(rule, after, m)][:limit]

    def purge_bodies(self, ids: Sequence[int], now: float) -> int:
        done = 0
        with self._write() as s:
            for i in ids:
                m = s.inbox.get(i)
                if m is not None and not m.purged_at:
                    s.inbox[i] = dataclasses.replace(m, raw=b"", purged_at=now)
                    done += 1
        return done

    def message_page(self, query: MessageQuery, *, before: int | None = None,
                     limit: int = 50) -> list[StoredMessage]:
        out: list[StoredMessage] = []
        with self._lock:
            for mid in sorted(self._state.inbox, reverse=True):
                if len(out) >= limit:
                    break
                m = self._state.inbox[mid]
                if (before is None or mid < before) and matches(query, m):
                    out.append(m)
        return out

    def message_counts(self, since: float | None = None) -> dict[tuple[str, str, str], int]:
        out: dict[tuple[str, str, str], int] = {}
        with self._lock:
            for m in self._state.inbox.values():
                if since is None or m.received_at >= since:
                    k = (m.channel, m.status, m.ack_code)
                    out[k] = out.get(k, 0) + 1
        return out

    def accepted_events(self, since: float | None = None) -> list[tuple[float, bytes]]:
        with self._lock:
            return [(m.received_at, m.events) for m in self._state.inbox.values()
                    if m.status == "accepted" and (since is None or m.received_at >= since)]

    def inbox_after(self, after: int,
                    limit: int = 10_000) -> list[tuple[int, str, float, bytes]]:
        with self._lock:
            return [(i, m.status, m.received_at, m.events)
                    for i, m in self._state.inbox.items() if i > after][:limit]

    # ledger --------------------------------------------------------------------------------
    def journal_after(self, after: int, limit: int = 10_000) -> list[tuple[int, JournalEntry]]:
        """Position: 1 + the entry's index in posting order (entries are never removed)."""
        with self._lock:
            found = list(self._state.entries.values())
        return list(enumerate(found, start=1))[after:after + limit]

    def journal_lines(self) -> Iterator[JournalLine]:
        with self._lock:
            lines = [ln for e in self._state.entries.values() for ln in e.lines]
        yield from lines

    def entries(self, *, correlation_id: str | None = None,
                unbatched_channel: str | None = None, limit: int = 100_000) -> list[JournalEntry]:
        with self._lock:
            s = self._state
            found = list(s.entries.values())
            if correlation_id is not None:
                found = [e for e in found if e.correlation_id == correlation_id]
            elif unbatched_channel is not None:
                found = [e for e in found
                         if e.channel == unbatched_channel and e.entry_key not in s.entry_batch]
            return found[:limit]

    def entry_batches(self, entry_keys: Sequence[str]) -> dict[str, str]:
        with self._lock:
            return {k: self._state.entry_batch[k] for k in entry_keys
                    if k in self._state.entry_batch}

    def unbatched_channels(self) -> list[str]:
        with self._lock:
            s = self._state
            return sorted({e.channel for e in s.entries.values()
                           if e.entry_key not in s.entry_batch})

    def record_batch(self, batch: JournalBatch, outbox: Sequence[tuple[str, str, bytes]],
                     now: float) -> bool:
        """Seal a batch: mark its entries, keep its body, queue its files. All or nothing."""
        with self._write() as s:
            if batch.batch_id in s.batches or any(
                    k in s.entry_batch or k not in s.entries for k in batch.entry_keys):
                return False
            s.batches[batch.batch_id] = _Batch(batch.channel, batch.policy, len(batch.lines),
                                               now, _batch_enc.encode(batch))
            for k in batch.entry_keys:
                s.entry_batch[k] = batch.batch_id
            for destination, fmt, payload in outbox:
                key = (destination, batch.batch_id, fmt)
                if key in s.outbox_keys:
                    continue
                s.outbox_keys.add(key)
                item_id = s.next_id("outbox")
                s.outbox[item_id] = OutboxItem(
                    id=item_id, destination=destination, batch_id=batch.batch_id, fmt=fmt,
                    payload=payload, status="pending", attempts=0, visible_at=0.0,
                    last_error="")
        return True

    def batches(self) -> list[tuple[str, str, int, float]]:
        with self._lock:
            rows = [(bid, b.channel, b.line_count, b.created_at)
                    for bid, b in self._state.batches.items()]
        return sorted(rows, key=lambda r: r[3])

    def batch_body(self, batch_id: str) -> bytes | None:
        with self._lock:
            b = self._state.batches.get(batch_id)
            return None if b is None else b.body

    # outbox --------------------------------------------------------------------------------
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

    def outbox_settle(self, item_id: int, *, status: str, error: str = "",
                      visible_at: float = 0.0) -> None:
        with self._write() as s:
            item = s.outbox.get(item_id)
            if item is not None:
                s.outbox[item_id] = dataclasses.replace(
                    item, status=status, last_error=error[:_MAX_ERROR], visible_at=visible_at,
                    attempts=item.attempts + 1)

    def outbox_items(self, status: str | None = None) -> list[OutboxItem]:
        with self._lock:
            return [o for o in self._state.outbox.values() if status in (None, o.status)]

    # work items ----------------------------------------------------------------------------
    def work_items(self, status: str | None = None, limit: int = 1000,
                   after: int | None = None) -> list[WorkItem]:
        with self._lock:
            return [w for _, w in sorted(self._state.work_items.items())
                    if status in (None, w.status) and (after is None or w.id > after)][:limit]

    def work_item(self, item_id: int) -> WorkItem | None:
        with self._lock:
            return self._state.work_items.get(item_id)

    def work_items_for(self, correlation_id: str) -> list[WorkItem]:
        with self._lock:
            return [w for w in self._state.work_items.values()
                    if w.correlation_id == correlation_id]

    def held_events(self, ref: str, limit: int = 1000) -> list[HeldEvent]:
        with self._lock:
            found = [h for h in self._state.held.values() if h.ref == ref]
        return sorted(found, key=lambda h: (h.held_at, h.event_id))[:limit]

    def holds_of(self, event_ids: Sequence[str]) -> list[HeldEvent]:
        wanted = set(event_ids)
        with self._lock:
            return sorted((h for h in self._state.held.values() if h.event_id in wanted),
                          key=lambda h: (h.ref, h.event_id))

    def hold_totals(self, refs: Sequence[str]) -> dict[str, HoldTotals]:
        wanted = set(refs)
        acc: dict[str, tuple[int, dict[str, Decimal], float]] = {}
        with self._lock:
            for h in self._state.held.values():
                if h.ref in wanted and not h.released_at:
                    n, sums, oldest = acc.get(h.ref, (0, {}, h.held_at))
                    sums[h.currency] = sums.get(h.currency, Decimal(0)) + h.amount
                    acc[h.ref] = (n + 1, sums, min(oldest, h.held_at))
        return {r: HoldTotals(n, tuple(sorted(sums.items())), oldest)
                for r, (n, sums, oldest) in acc.items()}

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
            return sorted((t, c, v) for (t, c), v in self._state.overrides.items()
                          if t in tables)

    def deposit_records(self) -> list[DepositRecord]:
        with self._lock:
            return list(self._state.deposits.values())

    def set_work_item_status(self, item_id: int, status: str, resolution: str,
                             now: float) -> None:
        with self._write() as s:
            item = s.work_items.get(item_id)
            if item is not None:
                s.work_items[item_id] = dataclasses.replace(
                    item, status=status, resolution=resolution, updated_at=now)

    def set_mapping_override(self, table: str, code: str, value: str) -> None:
        with self._write() as s:
            s.overrides[(table, code)] = value

    def channel_states(self) -> dict[str, ChannelState]:
        with self._lock:
            return channel_meta.states(self._state.meta.items())

    def set_channel_state(self, name: str, state: str, by: str, reason: str,
                          now: float) -> ChannelState:
        out = ChannelState(state, by, reason, now)
        value = channel_meta.encode(out)
        with self._write() as s:
            s.meta[channel_meta.key(name)] = value
        return out

    def channel_counts(self) -> list[ChannelCount]:
        groups: dict[tuple[str, str, bool], tuple[int, float]] = {}
        with self._lock:
            for m in self._state.inbox.values():
                k = (m.channel, m.status, m.published)
                n, last = groups.get(k, (0, 0.0))
                groups[k] = (n + 1, max(last, m.received_at))
        return [ChannelCount(ch, st, pub, n, last)
                for (ch, st, pub), (n, last) in groups.items()]

    def counts(self) -> dict[str, int]:
        with self._lock:
            s = self._state
            return {
                "messages": len(s.inbox),
                "rejected": sum(m.status == "rejected" for m in s.inbox.values()),
                "unpublished": sum(not m.published and m.status != HELD
                                   for m in s.inbox.values()),
                "held": sum(m.status == HELD for m in s.inbox.values()),
                "patients": len(s.patients),
                "charges": len(s.charges),
                "journal_entries": len(s.entries),
                "journal_lines": sum(len(e.lines) for e in s.entries.values()),
                "open_work_items": sum(w.status == "open" for w in s.work_items.values()),
                "batches": len(s.batches),
                "outbox_pending": sum(o.status == "pending" for o in s.outbox.values()),
            }

    def refunds(self, status: str | None = None, limit: int = 1000,
                after: str | None = None) -> list[RefundRecord]:
        with self._lock:
            rows = list(self._state.refunds.values())
            if after is not None:
                ids = [r.id for r in rows]
                rows = rows[ids.index(after) + 1:] if after in ids else []
            return [r for r in rows if status in (None, r.status)][:limit]

    def refund(self, refund_id: str) -> RefundRecord | None:
        with self._lock:
            return self._state.refunds.get(refund_id)

    def close(self) -> None:
        """Nothing to release; kept for the port."""

    # inspection for tests: the port has no reader for these yet ----------------------------
    def encounter(self, visit_number: str) -> Encounter | None:
        with self._lock:
            return self._state.encounters.get(visit_number)

    def billing_account(self, account_number: str) -> tuple[str, str] | None:
        """(patient_key, facility) of a billing account, or None."""
        with self._lock:
            return self._state.billing_accounts.get(account_number)
