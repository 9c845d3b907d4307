"""Route one event envelope to the flow that owns it, inside the caller's transaction.

HL7 v2 FT1 lines go to `flows.transactions`, the visit and billing-account events of
issue 15 to `flows.visits` and `flows.accounts`, the ADT merges and moves to
`flows.merges`. An FT1 line first follows the merges (`flows.lineage.follow`), and what a
posting that names a billing account or visit does to A/R is attributed to it
(`lineage.books`, a `lineage.Recorder` around the flow's transaction, `lineage.settle`), so
a later move knows what to reclassify."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from isthmus.config import LaborSettings, Mappings, SettlementPolicy
from isthmus.flows import (
    accounts,
    claim_acks,
    claim_remit,
    lineage,
    merges,
    references,
    remittance,
    transactions,
    visits,
)
from isthmus.flows.claim_remit import ClaimPolicy
from isthmus.flows.errors import PermanentError
from isthmus.flows.labor import Accruals, LaborFlow
from isthmus.flows.settlement import SettlementFlow
from isthmus.flows.supply import SupplyFlow
from isthmus.ledger.periods import FiscalCalendar
from isthmus.ledger.remit import RemitAccounts
from isthmus.model import (
    WORKFORCE_EVENTS,
    AccountsMerged,
    AcknowledgementReceived,
    BankDeposited,
    BillingAccountOpened,
    Charge,
    ClaimRemitted,
    ClaimStatusReported,
    ClaimSubmitted,
    EligibilityReported,
    EncounterDischarged,
    EncounterStarted,
    PatientPaymentSettled,
    PatientRegistered,
    ProcessorDeposited,
    ProviderAdjusted,
    RemittancePaid,
)
from isthmus.model.envelope import Envelope
from isthmus.model.events import (
    BillingAccountClosed,
    ClinicalCodesRecorded,
    CoverageRecorded,
    EncounterTransferred,
    IdentifiersMoved,
    PatientClassChanged,
    PatientDeleted,
    SupplyConsumed,
    SupplyRequested,
    SupplyUsageVoided,
    VisitEventRecorded,
)
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
    claims: ClaimPolicy | None = None  # issue 20: a remittance moves the claim's life

    def _remit_accounts(self) -> RemitAccounts:
        """The remittance chart, with this site's A/R account."""
        if self.remit_accounts.ar == self.ar_account:
            return self.remit_accounts
        return replace(self.remit_accounts, ar=self.ar_account)

    def _receivables(self) -> tuple[str, ...]:
        """The ledger accounts whose lines carry the patient's token: A/R, patient A/R."""
        return tuple(dict.fromkeys((self.ar_account, self._remit_accounts().patient_ar)))

    def handle(self, tx: Tx, env: Envelope) -> str:
        admitted = references.admit(tx, env)
        if admitted is None:  # names a FHIR Patient/Account not known yet: held (references)
            return references.HELD
        env = admitted
        ev = env.payload
        if isinstance(ev, Charge):  # FT1 CG/CD/PY/AJ by [mappings.transaction_types]
            ev, found = lineage.follow(tx, ev)
            rec = lineage.Recorder(tx)
            outcome = transactions.post_line(rec.tx, env, ev, secret=self.secret,
                                             maps=self.mappings,
                                             accounts=self._remit_accounts(),
                                             calendar=self.calendar)
            lineage.settle(tx, self._receivables(), found, rec.posted)
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
            acct, _ = remittance.match_account(tx, ev)
            found = None if acct is None else lineage.books(
                tx, account=acct.account_number, visit="", patient_key=acct.patient_key)
            rec = lineage.Recorder(tx)
            outcome = remittance.post_claim_payment(
                rec.tx, env, ev, secret=self.secret, maps=self.mappings,
                accounts=self._remit_accounts(), calendar=self.calendar)
            if self.claims is not None:  # issue 20: paid, underpaid or denied
                claim_remit.on_remitted(rec.tx, env, ev, policy=self.claims, outcome=outcome,
                                        books=claim_remit.Books(
                                            self.secret, self.mappings, self.calendar,
                                            self._remit_accounts()))
            lineage.settle(tx, self._receivables(), found, rec.posted)
            return outcome
        if isinstance(ev, ProviderAdjusted):
            return remittance.post_provider_adjustment(
                tx, env, ev, accounts=self._remit_accounts(), calendar=self.calendar)
        if isinstance(ev, PatientPaymentSettled):
            acct = tx.get_billing_account(ev.account_number)
            found = None if acct is None else lineage.books(
                tx, account=acct.account_number, visit="", patient_key=acct.patient_key)
            rec = lineage.Recorder(tx)
            outcome = SettlementFlow(self.secret, self.mappings, self.settlement,
                                     self.calendar, self.ar_account).handle(rec.tx, env)
            lineage.settle(tx, self._receivables(), found, rec.posted)
            return outcome
        if isinstance(ev, ProcessorDeposited | RemittancePaid | BankDeposited):
            return SettlementFlow(self.secret, self.mappings, self.settlement, self.calendar,
                                  self.ar_account).handle(tx, env)
        if isinstance(ev, WORKFORCE_EVENTS):
            return LaborFlow(self.labor, self.mappings, self.calendar,
                             self.labor_accruals).handle(tx, env)
        if isinstance(ev, ClaimSubmitted):
            return remittance.register_claim(tx, env, ev)
        if isinstance(ev, AcknowledgementReceived | ClaimStatusReported | EligibilityReported):
            return claim_acks.on_response(tx, env, ev)  # issue 20: 999, 277(CA), 271 in
        if isinstance(ev, PatientRegistered):  # PatientUpdated too
            accounts.register(tx, self.secret, ev)
            for held in references.release(tx, env, ev):  # postings that waited for it
                self.handle(tx, held)
        elif isinstance(ev, EncounterStarted | EncounterDischarged):
            accounts.encounter(tx, self.secret, ev, env.occurred_at.isoformat())
            visits.start_or_end(tx, env, ev)
        elif isinstance(ev, BillingAccountOpened):
            accounts.billing_account(tx, self.secret, ev)
            visits.reopen(tx, ev.account_number)
            for held in references.release(tx, env, ev):  # charges that waited for it
                self.handle(tx, held)
        elif isinstance(ev, AccountsMerged):
            accounts.merge(tx, self.secret, env, ev, ar_account=self.ar_account,
                           calendar=self.calendar,
                           patient_ar=self._remit_accounts().patient_ar)
        else:
            return self._visit_event(tx, env, ev)
        return "applied"

    def _visit_event(self, tx: Tx, env: Envelope, ev: object) -> str:
        """The ADT visit / identifier events and BAR account events of issue 15."""
        if isinstance(ev, EncounterTransferred):
            return visits.transfer(tx, self.secret, env, ev)
        if isinstance(ev, PatientClassChanged):
            return visits.class_change(tx, self.secret, env, ev)
        if isinstance(ev, VisitEventRecorded):
            return visits.record(tx, self.secret, env, ev)
        if isinstance(ev, ClinicalCodesRecorded):
            return visits.codes(tx, env, ev)
        if isinstance(ev, CoverageRecorded):
            return visits.coverage(tx, ev)
        if isinstance(ev, BillingAccountClosed):
            return visits.close_account(tx, self.secret, ev)
        if isinstance(ev, PatientDeleted):
            return accounts.delete_person(tx, self.secret, env, ev, ar_account=self.ar_account)
        if isinstance(ev, IdentifiersMoved):
            return merges.apply(tx, self.secret, env, ev, receivables=self._receivables(),
                                calendar=self.calendar)
        raise PermanentError(f"no flow handles {type(ev).__name__}")
