"""Route one event envelope to the flow that owns it, inside the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from isthmus.config import LaborSettings, Mappings, SettlementPolicy
from isthmus.flows import accounts, references, remittance
from isthmus.flows.charges import post_charge
from isthmus.flows.errors import PermanentError
from isthmus.flows.labor import Accruals, LaborFlow
from isthmus.flows.settlement import SettlementFlow
from isthmus.flows.supply import SupplyFlow
from isthmus.ledger.periods import FiscalCalendar
from isthmus.ledger.remit import RemitAccounts
from isthmus.model import (
    WORKFORCE_EVENTS,
    AccountsMerged,
    BankDeposited,
    BillingAccountOpened,
    Charge,
    ClaimRemitted,
    ClaimSubmitted,
    EncounterDischarged,
    EncounterStarted,
    PatientPaymentSettled,
    PatientRegistered,
    ProcessorDeposited,
    ProviderAdjusted,
    RemittancePaid,
)
from isthmus.model.envelope import Envelope
from isthmus.model.events import SupplyConsumed, SupplyRequested, SupplyUsageVoided
from isthmus.store.ports import Tx


@dataclass(frozen=True)
class Processor:
    secret: str
    mappings: Mappings
    ar_account: str
    calendar: FiscalCalendar
    remit_accounts: RemitAccounts = field(default_factory=RemitAccounts)
    settlement: SettlementPolicy = field(default_factory=SettlementPolicy)
    labor: LaborSettings = field(default_factory=LaborSettings)
    labor_accruals: Accruals | None = None  # the journal reader PayrollPosted reverses from
    supply: SupplyFlow | None = None  # issue 8: stock, replenishment, three-way match

    def _remit_accounts(self) -> RemitAccounts:
        """The remittance chart, with this site's A/R account."""
        if self.remit_accounts.ar == self.ar_account:
            return self.remit_accounts
        return replace(self.remit_accounts, ar=self.ar_account)

    def handle(self, tx: Tx, env: Envelope) -> str:
        admitted = references.admit(tx, env)
        if admitted is None:  # names a FHIR Patient not known yet: held (flows.references)
            return references.HELD
        env = admitted
        ev = env.payload
        if isinstance(ev, Charge):
            outcome = post_charge(tx, env, ev, secret=self.secret, maps=self.mappings,
                                  ar_account=self.ar_account, calendar=self.calendar)
            if self.supply is not None:  # an FT1 supply line also takes stock
                self.supply.on_charge(tx, env, ev)
            return outcome
        if isinstance(ev, SupplyConsumed):
            if self.supply is None:
                raise PermanentError("no supply flow is configured for SupplyConsumed")
            return self.supply.consume(tx, env, ev)
        if isinstance(ev, SupplyRequested | SupplyUsageVoided):
            if self.supply is None:
                raise PermanentError(f"no supply flow is configured for {env.type}")
            if isinstance(ev, SupplyUsageVoided):
                return self.supply.void(tx, env, ev)
            return self.supply.request(tx, env, ev)
        if isinstance(ev, ClaimRemitted):
            return remittance.post_claim_payment(
                tx, env, ev, secret=self.secret, maps=self.mappings,
                accounts=self._remit_accounts(), calendar=self.calendar)
        if isinstance(ev, ProviderAdjusted):
            return remittance.post_provider_adjustment(
                tx, env, ev, accounts=self._remit_accounts(), calendar=self.calendar)
        if isinstance(ev, PatientPaymentSettled | ProcessorDeposited | RemittancePaid |
                      BankDeposited):
            return SettlementFlow(self.secret, self.mappings, self.settlement, self.calendar,
                                  self.ar_account).handle(tx, env)
        if isinstance(ev, WORKFORCE_EVENTS):
            return LaborFlow(self.labor, self.mappings, self.calendar,
                             self.labor_accruals).handle(tx, env)
        if isinstance(ev, ClaimSubmitted):
            return remittance.register_claim(tx, env, ev)
        if isinstance(ev, PatientRegistered):  # PatientUpdated too
            accounts.register(tx, self.secret, ev)
            for held in references.release(tx, env, ev):  # postings that waited for it
                self.handle(tx, held)
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
