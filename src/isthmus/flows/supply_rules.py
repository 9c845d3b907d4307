"""What the supply flow's decisions share: its settings as one value, the facts they read,
and the records they write (issue 17).

The supply flow (flows/supply.py) reads the facts of an operation from the store (`Facts`:
whether its source id was applied, and the supply state as saved), then a pure decision
(flows/supply_usage.py for usages, voids and requests; flows/supply_orders.py for receipts
and supplier invoices) works on its own copy of the state (`supply_state.state_of` decodes
it afresh) and returns a `flows.decision.Decision`: the journal entries, the work items of
queue `procurement`, the state to save (`saved`) and the applied ids (`MarkApplied`), all
written by `flows.decision.apply` in the operation's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

from isthmus.config import Mappings
from isthmus.flows.decision import SaveState, WorkItem
from isthmus.flows.supply_state import STATE, SupplyPolicy, SupplyState, encode_state
from isthmus.ledger.journal import Posting
from isthmus.ledger.periods import FiscalCalendar
from isthmus.store.ports import Tx

QUEUE: Final = "procurement"
CHANNEL: Final = "supply"
VOIDED: Final = b"voided"  # a usage's applied record once it was voided before it arrived


@dataclass(frozen=True, slots=True)
class SupplyRules:
    """The site's `[supply]` policy, its mappings and fiscal calendar: all a supply
    decision needs besides the facts."""

    policy: SupplyPolicy
    maps: Mappings
    calendar: FiscalCalendar

    def posting(
        self, key: str, when: date, memo: str, correlation_id: str, causation_id: str
    ) -> Posting:
        """The posting of entry `key` dated `when`, in the period open for it."""
        where = self.calendar.assign(when)
        return Posting(
            entry_key=key,
            posted_on=where.posted_on,
            period=where.period,
            channel=CHANNEL,
            memo=memo,
            correlation_id=correlation_id,
            causation_id=causation_id,
            moved_from=where.moved_from,
        )


@dataclass(frozen=True, slots=True)
class Facts:
    """What the store holds that a supply decision needs: the applied record of the
    operation's source id (None: not applied), for a void the applied record of the usage
    it voids, and the supply state as saved (read only when the decision changes it; None:
    none saved yet)."""

    applied: bytes | None = None
    taken: bytes | None = None
    state: bytes | None = None


@dataclass(frozen=True, slots=True)
class MarkApplied:
    """Record that a source id is applied, with what the flow keeps about it."""

    key: str
    body: bytes = b""

    def write(self, tx: Tx, now: float) -> bool:
        return tx.mark_applied(self.key, self.body)


def saved(state: SupplyState) -> SaveState:
    """The supply state to write back (`flows.decision.SaveState`)."""
    return SaveState(STATE, encode_state(state))


def work_item(
    kind: str, key: str, event_id: str, correlation_id: str, detail: str, envelope: bytes = b""
) -> WorkItem:
    """A work item of queue `procurement` (an envelope when it holds an event to resubmit)."""
    return WorkItem(kind, QUEUE, key, event_id, correlation_id, detail, envelope)
