"""The store port: durable state of the hub, one small port per aggregate composed here.

Each aggregate has its own port module (ports_inbox, ports_accounts, ports_journal,
ports_outbox, ports_work, ports_refunds, ports_flow_state, ports_deliveries), with its
records, its in-transaction `...Tx` and its store-level `...Store` protocols; `Tx` and
`Store` are their union, so a flow calls `tx.<method>` whatever aggregate it touches, and
the records are re-exported from here.

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

from contextlib import AbstractContextManager
from typing import Protocol

from isthmus.store.ports_accounts import (
    AccountsStore,
    AccountsTx,
    BillingAccount,
    ChargeRecord,
    ClaimEvent,
    ClaimRecord,
    ClaimState,
    DepositRecord,
    Patient,
)
from isthmus.store.ports_deliveries import (
    ANY_DELIVERY,
    DeliveriesStore,
    DeliveriesTx,
    DeliveryQuery,
    DeliveryRecord,
    DeliveryTotals,
)
from isthmus.store.ports_flow_state import FlowStateTx
from isthmus.store.ports_inbox import (
    HELD,
    Accepted,
    ChannelCount,
    ChannelState,
    Hold,
    Inbound,
    InboxStore,
    MessageQuery,
    PurgeRule,
    StoredMessage,
    held_ref,
)
from isthmus.store.ports_journal import JournalStore, JournalTx
from isthmus.store.ports_outbox import OutboxItem, OutboxStore
from isthmus.store.ports_refunds import RefundRecord, RefundsStore, RefundsTx
from isthmus.store.ports_work import HeldEvent, HoldTotals, WorkItem, WorkStore, WorkTx

__all__ = [
    "ANY_DELIVERY",
    "HELD",
    "Accepted",
    "BillingAccount",
    "ChannelCount",
    "ChannelState",
    "ChargeRecord",
    "ClaimEvent",
    "ClaimRecord",
    "ClaimState",
    "DeliveryQuery",
    "DeliveryRecord",
    "DeliveryTotals",
    "DepositRecord",
    "HeldEvent",
    "Hold",
    "HoldTotals",
    "Inbound",
    "MessageQuery",
    "OutboxItem",
    "Patient",
    "PurgeRule",
    "RefundRecord",
    "Store",
    "StoredMessage",
    "Tx",
    "WorkItem",
    "held_ref",
]


class Tx(AccountsTx, JournalTx, WorkTx, RefundsTx, FlowStateTx, DeliveriesTx, Protocol):
    """Effects of one unit of work; see the module docstring for the idempotency contract."""

    def savepoint(self) -> AbstractContextManager[None]: ...


class Store(
    InboxStore,
    JournalStore,
    OutboxStore,
    WorkStore,
    AccountsStore,
    RefundsStore,
    DeliveriesStore,
    Protocol,
):
    """The hub's durable state: every aggregate's port, plus transactions, migration,
    counts and close."""

    def migrate(self) -> int:
        """Create a new store at the head revision (idempotent); return the revision. An
        older schema raises migrations.SchemaNotCurrent: `isthmus migrate` upgrades it."""
        ...

    def transaction(self) -> AbstractContextManager[Tx]: ...

    def counts(self) -> dict[str, int]: ...

    def close(self) -> None: ...
