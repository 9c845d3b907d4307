"""Route one event envelope to the flow that owns it, inside the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass

from isthmus.config import Mappings
from isthmus.flows import accounts
from isthmus.flows.charges import post_charge
from isthmus.flows.errors import PermanentError
from isthmus.ledger.periods import FiscalCalendar
from isthmus.model import (
    AccountsMerged,
    BillingAccountOpened,
    Charge,
    EncounterDischarged,
    EncounterStarted,
    PatientRegistered,
)
from isthmus.model.envelope import Envelope
from isthmus.store.ports import Tx


@dataclass(frozen=True)
class Processor:
    secret: str
    mappings: Mappings
    ar_account: str
    calendar: FiscalCalendar

    def handle(self, tx: Tx, env: Envelope) -> str:
        ev = env.payload
        if isinstance(ev, Charge):
            return post_charge(tx, env, ev, secret=self.secret, maps=self.mappings,
                               ar_account=self.ar_account, calendar=self.calendar)
        if isinstance(ev, PatientRegistered):  # PatientUpdated too
            accounts.register(tx, self.secret, ev)
        elif isinstance(ev, EncounterStarted | EncounterDischarged):
            accounts.encounter(tx, self.secret, ev, env.occurred_at.isoformat())
        elif isinstance(ev, BillingAccountOpened):
            accounts.billing_account(tx, self.secret, ev)
        elif isinstance(ev, AccountsMerged):
            accounts.merge(tx, self.secret, env, ev, ar_account=self.ar_account,
                           calendar=self.calendar)
        else:
            raise PermanentError(f"no flow handles {type(ev).__name__}")
        return "applied"
