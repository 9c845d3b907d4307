"""The business-key gate: each business fact is kept once, whatever envelope brought it.

An event's `business_key` (`Envelope.business_key`, set by its decoder: README, "Identity
and business keys") names the fact it posts: an 835 claim payment by payer + TRN02 +
CLP01/CLP07 (X12 835 loop 2100), an HL7 charge by sender + FT1-2, a card payment by
processor + transaction id, a FHIR resource by type + id + version, ... The event id, by
contrast, comes from the transport (ISA13, MSH-10, a file's hash, a deposit id), so the same
fact re-sent in a new envelope arrives under another event id.

The worker runs the gate inside each event's savepoint, before its flow, so the record and
the event's effects commit (or roll back) together:

* no record for the key: record (event id, content digest) and run the flow;
* recorded by the same event id: run the flow as before (a redelivery, a retry, a replay or
  a work item's resubmit; flows are idempotent on the event id, and a resubmit must post);
* recorded by another event id with the same digest: a duplicate, nothing happens
  (outcome "duplicate");
* recorded by another event id with another digest: a conflict, nothing posts and a
  `business_key_conflict` work item goes to the queue that owns that money (outcome
  "conflict"); a person decides which content is right.

The digest is SHA-256 over the event type and the canonical JSON of its payload (msgspec,
decimals as strings). `decide` is the pure decision; `gate` reads, writes and answers.
"""

from __future__ import annotations

import hashlib
from enum import Enum
from typing import Final

import msgspec

from isthmus.flows import charges, remittance, settlement, supply_rules
from isthmus.flows import labor as labor_flow
from isthmus.model import (
    WORKFORCE_EVENTS,
    BankDeposited,
    Charge,
    ClaimRemitted,
    PatientPaymentSettled,
    ProcessorDeposited,
    ProviderAdjusted,
    RemittancePaid,
)
from isthmus.model.envelope import Envelope, encode_envelope
from isthmus.model.events import Event, SupplyConsumed, SupplyRequested, SupplyUsageVoided
from isthmus.store.ports import Tx

PREFIX: Final = "bk:"
CONFLICT_KIND: Final = "business_key_conflict"
DUPLICATE: Final = "duplicate"
CONFLICT: Final = "conflict"
DEFAULT_QUEUE: Final = "finance-master-data"

_payload_enc = msgspec.json.Encoder(decimal_format="string")


class Seen(msgspec.Struct, frozen=True):
    """What the store keeps about a business key: the event that brought it first, and the
    digest of that event's content."""

    event_id: str
    digest: str


_seen_enc = msgspec.json.Encoder()
_seen_dec = msgspec.json.Decoder(Seen)


class Decision(Enum):
    """What to do with an event whose business key is (or is not) known."""

    FIRST = "first"  # record it, run the flow
    SAME_EVENT = "same_event"  # run the flow (idempotent on the event id)
    DUPLICATE = "duplicate"  # no effect
    CONFLICT = "conflict"  # no posting; a work item

    @property
    def runs(self) -> bool:
        return self in (Decision.FIRST, Decision.SAME_EVENT)


def digest(env: Envelope) -> str:
    """The content digest of an event: its type and its payload's canonical JSON."""
    body = env.type.encode() + b"\n" + _payload_enc.encode(env.payload)
    return hashlib.sha256(body).hexdigest()


def record_key(business_key: str) -> str:
    """The applied-record key of a business key (namespaced beside the flows' own keys)."""
    return PREFIX + business_key


def decide(seen: Seen | None, event_id: str, content: str) -> Decision:
    """Pure: the gate's answer for an event with this id and content digest, given what is
    recorded for its business key."""
    if seen is None:
        return Decision.FIRST
    if seen.event_id == event_id:
        return Decision.SAME_EVENT
    return Decision.DUPLICATE if seen.digest == content else Decision.CONFLICT


def queue_of(ev: Event) -> str:
    """The work queue that owns the money of this event (a conflict goes there)."""
    if isinstance(ev, ClaimRemitted | ProviderAdjusted | RemittancePaid):
        return remittance.QUEUES["unapplied_cash"]
    if isinstance(ev, PatientPaymentSettled | ProcessorDeposited | BankDeposited):
        return settlement.QUEUES["unapplied_cash"]
    if isinstance(ev, Charge):
        return charges.QUEUES["unpostable_charge"]
    if isinstance(ev, WORKFORCE_EVENTS):
        return labor_flow.QUEUES["unapproved_overtime"]
    if isinstance(ev, SupplyConsumed | SupplyRequested | SupplyUsageVoided):
        return supply_rules.QUEUE
    return DEFAULT_QUEUE


def _read(tx: Tx, key: str) -> Seen | None:
    body = tx.applied(key)
    return None if body is None else _seen_dec.decode(body)


def gate(tx: Tx, env: Envelope, now: float) -> str | None:
    """Apply the decision for `env` inside the caller's savepoint: None when its flow is to
    run, else the outcome ("duplicate" or "conflict"). Events without a business key pass."""
    if not env.business_key:
        return None
    key = record_key(env.business_key)
    content = digest(env)
    # Claim the key first: a new key (the common case) costs one insert and no read. When
    # it was known (a resend, a replay) or another transaction's insert of it won
    # (PostgreSQL, READ COMMITTED: the loser's insert waits, then does nothing), reading it
    # back tells what came first.
    if tx.mark_applied(key, _seen_enc.encode(Seen(env.event_id, content))):
        return None
    seen = _read(tx, key)
    decision = decide(seen, env.event_id, content)
    if decision.runs:
        return None
    if decision is Decision.DUPLICATE or seen is None:
        return DUPLICATE
    tx.add_work_item(
        kind=CONFLICT_KIND,
        queue=queue_of(env.payload),
        key=env.key,
        event_id=env.event_id,
        correlation_id=env.correlation_id,
        detail=(
            f"business key {env.business_key!r} came first with event {seen.event_id}; "
            f"event {env.event_id} ({env.type}) carries other content for it and was "
            "not posted: decide which is right and correct it at the source"
        ),
        envelope=encode_envelope(env),
        now=now,
    )
    return CONFLICT
