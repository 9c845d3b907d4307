"""The store port: durable state of the hub, and the records that cross it.

Contract (tests/store/contract.py runs it against every adapter):
- `accept` is idempotent on (channel, control id): a duplicate stores nothing and returns the
  answer given the first time, so the source gets the same ACK. When the stored message has
  another content digest, `accept` stores nothing and reports a conflict, so the caller can
  keep the newcomer under its own key and refuse it (HL7 table 0357 code 205).
- Effects written inside one `transaction()` commit together or not at all; `savepoint()`
  isolates one message's effects inside a batch.
- A message taken with a `hold` (status "held") is stored with its events, and its work
  item opens in the same transaction (event id and correlation id `held_ref(channel,
  control id)`), so neither is ever without the other. `unpublished` never returns a held
  message: its events reach the bus only after `release`, a person's decision, moves it to
  "accepted" and closes its work item in one transaction.
- Effects are keyed on business keys (journal entry key, charge event id, work item kind +
  event id): writing one twice is a no-op that reports False/None, never a second posting.
- An event held behind a missing mapping is kept once per (ref, event id) (`hold_event`),
  where ref is the event id of the one work item of that missing key; `release_held` marks
  the events a person's fix put back on the bus, `held_posted` what they posted.
- `message_page` is newest first and keyset-paged (`before` an id), each filter served by
  an index on the real adapters: a page never scans the inbox.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

from isthmus.ledger.batch import JournalBatch
from isthmus.ledger.journal import JournalEntry, JournalLine

HELD = "held"


def held_ref(channel: str, control_id: str) -> str:
    """The event id and correlation id of a held message's work item: the message's own
    correlation id, `<channel>/<control id>` (as `flows.intake.correlation_of` names it)."""
    return f"{channel}/{control_id}"


@dataclass(frozen=True, slots=True)
class Hold:
    """Why a message is held back from the bus: the work item that opens with it."""

    kind: str
    queue: str
    detail: str  # what a person must look at; never PHI


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message as a listener hands it to the inbox, with the answer it will get."""

    channel: str
    control_id: str
    raw: bytes
    received_at: float
    peer: str
    message_type: str
    status: str  # "accepted" | "rejected"
    ack_code: str  # AA | AE | AR
    error: str
    events: bytes  # encoded envelopes (msgspec JSON array), empty when rejected
    digest: str = ""  # content digest; the same control id with another digest is a conflict
    hold: Hold | None = None  # status "held": kept, its events wait for `Store.release`


@dataclass(frozen=True, slots=True)
class ChannelState:
    """A channel's operating state (issue 18) as the store keeps it, in the `meta` table
    under `channel:<name>`: every process of a site reads it, so a pause given in one takes
    effect in all. `state` is "running" or "paused"; who set it, why and when."""

    state: str
    by: str = ""
    reason: str = ""
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class ChannelCount:
    """Inbox messages of one (channel, status, published) group and the latest one's time:
    one row of `Store.channel_counts`, what the channel list sums (flows/channels.py)."""

    channel: str
    status: str
    published: bool
    count: int
    last_received_at: float


@dataclass(frozen=True, slots=True)
class Accepted:
    message_id: int
    duplicate: bool
    ack_code: str
    status: str
    error: str
    conflict: bool = False  # control id already taken by different content: nothing stored


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    channel: str
    control_id: str
    received_at: float
    peer: str
    message_type: str
    status: str
    ack_code: str
    error: str
    raw: bytes
    events: bytes
    published: bool
    digest: str = ""
    purged_at: float = 0.0  # retention blanked the body then (0: kept); flows/retention.py


@dataclass(frozen=True, slots=True)
class PurgeRule:
    """Which message bodies retention blanks (flows/retention.py decides the rules).

    Those received before `before` whose body is still there, on `channel` (None: every
    channel but `others`), with status `ignored` (`ignored` True) or any other status but
    `held` (a held message waits for a person); an accepted one only once its events are
    published, so nothing still on its way is touched."""

    before: float
    ignored: bool
    channel: str | None = None
    others: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Patient:
    key: str
    mrn: str
    authority: str
    token: str
    family_name: str = ""
    given_name: str = ""
    birth_date: str = ""
    sex: str = ""
    merged_into: str = ""


@dataclass(frozen=True, slots=True)
class ChargeRecord:
    event_id: str
    patient_key: str
    account_token: str
    transaction_id: str
    transaction_type: str
    charge_code: str
    amount: Decimal
    currency: str
    service_date: date
    entry_key: str


@dataclass(frozen=True, slots=True)
class BillingAccount:
    """A billing account (PID-18) and the patient and facility it belongs to."""

    account_number: str
    patient_key: str
    facility: str


@dataclass(frozen=True, slots=True)
class ClaimRecord:
    """One submitted claim (837 CLM) in the claim register, keyed by its event id."""

    event_id: str
    patient_control_number: str  # CLM01
    payer_id: str
    payer_claim_id: str  # REF*F8, when the claim corrects an earlier one
    total_charge: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class DepositRecord:
    """One side of deposit matching, keyed by its event id: `side` is "eft" (an 835
    payment), "processor" (a processor deposit) or "bank" (a credit on the bank account).
    `reference` is normalized (trimmed, upper case); `matched_with` names the event id of
    the other side once matched, `entry_key` the journal entry the match posted (if any)."""

    event_id: str
    side: str
    reference: str
    amount: Decimal
    currency: str
    on_date: date
    party: str  # payer id, processor, or the bank's deposit type
    correlation_id: str
    matched_with: str = ""
    entry_key: str = ""


@dataclass(frozen=True, slots=True)
class WorkItem:
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
class MessageQuery:
    """Filters of `Store.message_page`; None: any. `message_type` "ADT" matches every ADT
    event ("ADT^A01", ...), "ADT^A01" that one. `sender` is the part of the inbox identity
    before its first ":" (MSH-3.1^MSH-4.1); `control_id` matches the whole identity or the
    part after that ":" (MSH-10)."""

    status: str | None = None
    channel: str | None = None
    message_type: str | None = None
    sender: str | None = None
    control_id: str | None = None
    since: float | None = None  # received at or after
    until: float | None = None  # received before
    # a FHIR resource's versions: control id `<type>/<id>` or `<type>/<id>/_history/<vid>`
    history_of: str | None = None


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


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    destination: str
    batch_id: str
    fmt: str
    payload: bytes
    status: str  # pending | sent | dead
    attempts: int
    visible_at: float
    last_error: str


@dataclass(frozen=True, slots=True)
class RefundRecord:
    """One refund in the refund register (flows/refunds.py), keyed by its id.

    `status`: pending (waits for an approver), posted (approved and posted in the same
    transaction, `entry_key` names the journal entry) or rejected. `account_number` is ""
    when the refund was asked for by account token. `reason` is the requester's free text:
    it stays in the register, never in the journal or the ERP files.
    """

    id: str
    idempotency_key: str
    account_number: str
    account_token: str
    company: str
    amount: Decimal
    currency: str
    reason: str
    status: str  # pending | posted | rejected
    requested_by: str
    requested_at: float
    decided_by: str = ""
    decided_at: float = 0.0
    note: str = ""
    entry_key: str = ""


@dataclass(frozen=True, slots=True)
class ClaimState:
    """Where one claim stands in its life (issue 20, flows/claim_life.py), keyed by its
    patient control number (CLM01); `payer_claim_id` is the payer's (CLP07, 277 REF*1K).

    `controls` is "ISA13/GS06/ST02" of the 837 it last left in (what a 999 names);
    `body` the claim's segments as sent (JSON), for a 276 and a corrected resubmission.
    Money is Decimal in `currency`. No PHI in any text column."""

    claim_key: str
    state: str
    payer_id: str
    total_charge: Decimal
    currency: str
    created_at: float
    updated_at: float
    payer_claim_id: str = ""
    account_number: str = ""
    paid: Decimal = Decimal(0)
    frequency: str = "1"
    controls: str = ""
    status_category: str = ""
    status_code: str = ""
    denial_category: str = ""
    appeal_due: str = ""  # ISO date, "" when none
    submitted_at: float = 0.0
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class ClaimEvent:
    """One transition of a claim (or a fact kept on it without one: from = to), with its
    lineage: `causation_id` the event or file that caused it, `actor` who (a person, or
    "hub"). Unique on `event_id`; `seq` orders a claim's events (1, 2, ...)."""

    event_id: str
    claim_key: str
    seq: int
    kind: str
    from_state: str
    to_state: str
    at: float
    causation_id: str = ""
    correlation_id: str = ""
    actor: str = "hub"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One delivery in a destination's durable outbox (issue 18, flows/delivery.py).

    Unique on (destination, idempotency_key): the same event routed twice to one destination
    is one delivery. `event_id` leads back to the source event (lineage); `answer_*` is what
    the destination said last (codes and reasons, never PHI). `sent_at` 0: not sent yet."""

    id: int
    destination: str
    key: str  # ordering key: one key's deliveries leave in id order
    idempotency_key: str
    event_id: str
    event_type: str
    route: str
    content_type: str
    body: bytes
    status: str  # pending | sent | dead
    attempts: int
    visible_at: float
    created_at: float
    sent_at: float
    answer_code: str
    answer_detail: str
    last_error: str


@dataclass(frozen=True, slots=True)
class DeliveryQuery:
    """Filters of `Store.deliveries`; None: any. Newest last (id order)."""

    destination: str | None = None
    status: str | None = None
    since: float | None = None  # created at or after
    event_ids: tuple[str, ...] | None = None
    ids: tuple[int, ...] | None = None
    after: int = 0  # keyset paging: ids above this one
    limit: int = 1000


ANY_DELIVERY = DeliveryQuery()


@dataclass(frozen=True, slots=True)
class DeliveryTotals:
    """Per destination: how many deliveries in each state, the oldest pending one's creation
    time (0: none), and the last answer with when it came (for `isthmus destinations`)."""

    destination: str
    pending: int
    sent: int
    dead: int
    oldest_pending: float
    last_answer: str
    last_answer_at: float


class Tx(Protocol):
    """Effects of one unit of work; see the module docstring for the idempotency contract."""

    def savepoint(self) -> AbstractContextManager[None]: ...

    def get_patient(self, key: str) -> Patient | None: ...

    def put_patient(self, patient: Patient) -> None: ...

    def put_encounter(
        self, visit_number: str, patient_key: str, facility: str, patient_class: str,
        status: str, at: str,
    ) -> None: ...

    def put_billing_account(self, account_number: str, patient_key: str, facility: str) -> None: ...

    def get_billing_account(self, account_number: str) -> BillingAccount | None:
        """The billing account with this number (PID-18), or None when none is known."""
        ...

    def record_claim(self, claim: ClaimRecord) -> bool:
        """Add a claim to the claim register; False (no change) when its event id is known."""
        ...

    def find_claim(self, patient_control_number: str,
                   payer_claim_id: str = "") -> ClaimRecord | None:
        """The latest registered claim with this patient control number, else (when
        `payer_claim_id` is given) the latest one with that payer claim id."""
        ...

    def merge_patient(self, merged_key: str, survivor_key: str) -> int: ...

    def record_charge(self, charge: ChargeRecord) -> bool: ...

    def insert_entry(self, entry: JournalEntry) -> bool: ...

    def ar_balances(self, ar_account: str, token: str) -> dict[tuple[str, str], Decimal]:
        """A/R balance of one account token per (company, currency), debit positive."""
        ...

    def add_work_item(
        self, *, kind: str, queue: str, key: str, event_id: str, correlation_id: str,
        detail: str, envelope: bytes, now: float,
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

    def record_deposit(self, record: DepositRecord) -> bool:
        """Add one side of deposit matching; False (no change) when its event id is known."""
        ...

    def open_deposits(self, reference: str) -> list[DepositRecord]:
        """The unmatched records with this (normalized) reference, oldest first."""
        ...

    def match_deposits(self, event_id: str, other_event_id: str, entry_key: str) -> None:
        """Mark two records matched with each other (and the entry the match posted)."""
        ...

    def lock_refunds(self, account_token: str) -> None:
        """Hold refund decisions on this account token until the transaction ends, so two
        requests or approvals for one account never check its credit at the same time."""
        ...

    def add_refund(self, refund: RefundRecord) -> bool:
        """Add a refund to the register; False (no change) when its id is known."""
        ...

    def get_refund(self, refund_id: str) -> RefundRecord | None: ...

    def pending_refunds(self, account_token: str) -> list[RefundRecord]:
        """The refunds of this account token still waiting for a decision."""
        ...

    def decide_refund(self, refund_id: str, *, status: str, decided_by: str,
                      decided_at: float, note: str, entry_key: str = "") -> bool:
        """Move a pending refund to `status` (posted | rejected); False (no change) when it
        is not pending any more: someone else decided first."""
        ...

    def load_state(self, name: str) -> bytes | None:
        """A flow's named state (the supply book), held for this transaction alone until it
        ends: a second writer waits. None when it was never saved."""
        ...

    def save_state(self, name: str, body: bytes) -> None:
        """Write a flow's named state back; it commits with the rest of the transaction."""
        ...

    def applied(self, key: str) -> bytes | None:
        """What a flow recorded when it applied `key` (a usage, receipt or invoice id),
        None when it never did: a replay finds it and changes nothing."""
        ...

    def mark_applied(self, key: str, body: bytes) -> bool:
        """Record that `key` is applied (idempotent), with what the flow keeps about it;
        True when this call recorded it, False when it was already (or, under concurrency,
        another transaction's insert of it won)."""
        ...


    def get_claim_state(self, claim_key: str) -> ClaimState | None:
        """A claim's state by its patient control number (issue 20)."""
        ...

    def claim_by_payer_id(self, payer_claim_id: str) -> ClaimState | None:
        """The claim the payer knows by this claim control number (CLP07, REF*1K)."""
        ...

    def put_claim_state(self, state: ClaimState) -> None:
        """Insert or replace a claim's state row."""
        ...

    def add_claim_event(self, event: ClaimEvent) -> bool:
        """Append a claim event; False (no change) when its event id is known."""
        ...

    def add_delivery(self, *, destination: str, key: str, idempotency_key: str,
                     event_id: str, event_type: str, route: str, content_type: str,
                     body: bytes, now: float) -> bool:
        """Queue a delivery in this transaction (it commits with the effects that caused
        it); False when (destination, idempotency_key) is queued already."""
        ...


class Store(Protocol):
    def migrate(self) -> int:
        """Create a new store at the head revision (idempotent); return the revision. An
        older schema raises migrations.SchemaNotCurrent: `isthmus migrate` upgrades it."""
        ...

    def accept(self, batch: Sequence[Inbound]) -> list[Accepted]: ...

    def unpublished(self, limit: int) -> list[StoredMessage]:
        """Committed messages whose events never reached the bus, oldest first; held
        messages are not among them until released."""
        ...

    def release(self, channel: str, control_id: str, *, resolution: str,
                now: float) -> StoredMessage | None:
        """A held message becomes accepted (its events then go out as unpublished ones) and
        its work item is resolved with `resolution`, in one transaction. None (no change)
        when the message is not held: unknown, or released already."""
        ...

    def mark_published(self, ids: Sequence[int]) -> None: ...

    def message(self, message_id: int) -> StoredMessage | None: ...

    def message_by_control_id(self, channel: str, control_id: str) -> StoredMessage | None: ...

    def messages(
        self, *, since: float | None = None, until: float | None = None,
        status: str | None = None, limit: int = 1000,
    ) -> list[StoredMessage]: ...

    def purge_candidates(self, rule: PurgeRule, *, after: int = 0,
                         limit: int = 500) -> list[StoredMessage]:
        """Messages `rule` covers, by id above `after`, oldest first."""
        ...

    def purge_bodies(self, ids: Sequence[int], now: float) -> int:
        """Blank the raw body of each message and mark it purged at `now`; the row (identity,
        digest, status, its events: lineage) stays, and ids already purged are left as they
        are. One transaction; returns how many were purged."""
        ...

    def message_page(self, query: MessageQuery, *, before: int | None = None,
                     limit: int = 50) -> list[StoredMessage]:
        """Messages matching every filter of `query`, newest first (by id), those with an id
        below `before` when given: the next page starts before the last id of this one."""
        ...

    def message_counts(self, since: float | None = None) -> dict[tuple[str, str, str], int]:
        """Inbox messages per (channel, status, ack code), those received at or after
        `since` when it is given (metrics and alert windows)."""
        ...

    def accepted_events(self, since: float | None = None) -> list[tuple[float, bytes]]:
        """(received_at, encoded events) of every accepted message, in inbox order, those
        received at or after `since` when given: what the KPIs read, without raw bytes."""
        ...

    def inbox_after(self, after: int,
                    limit: int = 10_000) -> list[tuple[int, str, float, bytes]]:
        """(message id, status, received_at, encoded events) of inbox messages with an id
        above `after`, by id, only as far as every message below is committed (no id still
        in flight can come in under the last one): the analytics feed's watermark."""
        ...

    def journal_after(self, after: int, limit: int = 10_000) -> list[tuple[int, JournalEntry]]:
        """(position, entry) of journal entries posted after position `after`, in posting
        order, only as far as every entry below is committed: the analytics watermark."""
        ...

    def transaction(self) -> AbstractContextManager[Tx]: ...

    def journal_lines(self) -> Iterator[JournalLine]: ...

    def entries(
        self, *, correlation_id: str | None = None, unbatched_channel: str | None = None,
        limit: int = 100_000,
    ) -> list[JournalEntry]: ...

    def entry_batches(self, entry_keys: Sequence[str]) -> dict[str, str]: ...

    def unbatched_channels(self) -> list[str]: ...

    def record_batch(self, batch: JournalBatch, outbox: Sequence[tuple[str, str, bytes]],
                     now: float) -> bool:
        """Seal a batch with its outbox rows, all or nothing. False (nothing stored) when
        the batch id exists or any of its entries is sealed by another batch already."""
        ...

    def batches(self) -> list[tuple[str, str, int, float]]: ...

    def batch_body(self, batch_id: str) -> bytes | None: ...

    def outbox_due(self, destination: str, now: float, limit: int) -> list[OutboxItem]: ...

    def outbox_settle(self, item_id: int, *, status: str, error: str = "",
                      visible_at: float = 0.0) -> None: ...

    def outbox_items(self, status: str | None = None) -> list[OutboxItem]: ...

    def work_items(self, status: str | None = None, limit: int = 1000,
                   after: int | None = None) -> list[WorkItem]:
        """Work items by id, optionally of one status, those with an id above `after`
        when given (keyset paging: the next page starts after the last id shown)."""
        ...

    def work_item(self, item_id: int) -> WorkItem | None: ...

    def set_work_item_status(self, item_id: int, status: str, resolution: str,
                             now: float) -> None: ...

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

    def deposit_records(self) -> list[DepositRecord]:
        """Every record of deposit matching (EFTs, processor and bank deposits), in order."""
        ...

    def deliveries_due(self, destination: str, now: float, limit: int) -> list[DeliveryRecord]:
        """Pending deliveries of `destination` that are visible at `now`, in id order,
        leaving out every delivery whose key has an earlier one still waiting for its retry
        (order per key; other keys go on)."""
        ...

    def settle_deliveries(self, ids: Sequence[int], *, status: str, now: float,
                          visible_at: float = 0.0, error: str = "", answer_code: str = "",
                          answer_detail: str = "") -> None:
        """Record one try of these deliveries: its outcome (`sent`, `dead`, or `pending`
        again, visible at `visible_at`), the answer and error; attempts + 1."""
        ...

    def deliveries(self, query: DeliveryQuery = ANY_DELIVERY) -> list[DeliveryRecord]: ...

    def delivery_totals(self) -> list[DeliveryTotals]:
        """One row per destination that has deliveries, by name."""
        ...

    def resend_deliveries(self, ids: Sequence[int], now: float) -> list[int]:
        """Put these (sent or dead) deliveries back in their outbox, visible now, with the
        same idempotency key; the ids that were put back."""
        ...

    def counts(self) -> dict[str, int]: ...

    def channel_states(self) -> dict[str, ChannelState]:
        """The state of every channel ever paused or resumed, by name (the `meta` table);
        a channel not in it is running."""
        ...

    def set_channel_state(self, name: str, state: str, by: str, reason: str,
                          now: float) -> ChannelState:
        """Record a channel's state ("running" or "paused"), who set it and why; returns
        what was recorded."""
        ...

    def channel_counts(self) -> list[ChannelCount]:
        """Inbox messages per (channel, status, published) with the latest received time:
        one grouped query, what the channel list and its counters read."""
        ...

    def refunds(self, status: str | None = None, limit: int = 1000,
                after: str | None = None) -> list[RefundRecord]:
        """The refund register, oldest first, optionally of one status, those recorded
        after refund `after` when given (keyset paging on the register's order)."""
        ...

    def refund(self, refund_id: str) -> RefundRecord | None: ...

    def claim_states(self, state: str | None = None, limit: int = 1000) -> list[ClaimState]:
        """Claims (in one state when given), oldest update first (issue 20)."""
        ...

    def claim_events(self, claim_key: str) -> list[ClaimEvent]:
        """A claim's timeline, in `seq` order."""
        ...

    def close(self) -> None: ...
