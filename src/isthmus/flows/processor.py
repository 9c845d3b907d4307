"""Route one event envelope to the flow that owns it, inside the caller's transaction.

HL7 v2 FT1 lines go to `flows.transactions`, the visit and billing-account events of
issue 15 to `flows.visits` and `flows.accounts`, the ADT merges and moves to
`flows.merges` (those handlers are `flows.admissions`). An FT1 line first follows the
merges (`flows.lineage.follow`), and what a posting that names a billing account or visit
does to A/R is attributed to it (`lineage.books`, a `lineage.Recorder` around the flow's
transaction, `lineage.settle`), so a later move knows what to reclassify.

Issue 17: a registry maps each payload type to its handler, built once with the processor
(`Processor.__post_init__`), in place of an isinstance ladder run per event: adding an event
type is one line of `_registry`. A subtype finds its parent's handler (PatientUpdated is a
PatientRegistered). Handlers answer with a typed outcome (`flows.outcome`); a type no flow
handles is the outcome `Refused`, which `handle` turns into the dead letter it always was.
The worker passes `now`, the time every work item and resolution of the event carries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from isthmus.config import LaborSettings, Mappings, SettlementPolicy
from isthmus.flows import (
    account_state,
    accounts,
    claim_acks,
    claim_fhir,
    claim_remit,
    lineage,
    references,
    remittance,
    transactions,
)
from isthmus.flows.admissions import Admissions
from isthmus.flows.claim_pricing import ClaimPolicy
from isthmus.flows.errors import PermanentError
from isthmus.flows.labor import Accruals, LaborFlow
from isthmus.flows.outcome import APPLIED, SHARED, Outcome, Refused, of
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
    ClaimBatchStatusReported,
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

Handler = Callable[[Tx, Envelope, float], Outcome]


@dataclass(frozen=True)
class Processor:
    """The site's flows for every event type, built once from its settings; `handle`
    applies one event in the caller's transaction and answers its outcome's word."""

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
    _handlers: dict[type, Handler] = field(init=False, repr=False, compare=False)
    _settlement: SettlementFlow = field(init=False, repr=False, compare=False)
    _labor: LaborFlow = field(init=False, repr=False, compare=False)
    _chart: RemitAccounts = field(init=False, repr=False, compare=False)
    _ar_accounts: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _admissions: Admissions = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # built once: the flows and the registry depend only on the settings above
        object.__setattr__(
            self,
            "_settlement",
            SettlementFlow(
                self.secret, self.mappings, self.settlement, self.calendar, self.ar_account
            ),
        )
        object.__setattr__(
            self, "_labor", LaborFlow(self.labor, self.mappings, self.calendar, self.labor_accruals)
        )
        # the remittance chart with this site's A/R, and the receivables: every event asks
        chart = (
            self.remit_accounts
            if self.remit_accounts.ar == self.ar_account
            else replace(self.remit_accounts, ar=self.ar_account)
        )
        object.__setattr__(self, "_chart", chart)
        object.__setattr__(
            self, "_ar_accounts", tuple(dict.fromkeys((self.ar_account, chart.patient_ar)))
        )
        object.__setattr__(
            self,
            "_admissions",
            Admissions(
                self.secret, self.ar_account, chart.patient_ar, self._ar_accounts, self.calendar
            ),
        )
        object.__setattr__(self, "_handlers", self._registry())

    def _registry(self) -> dict[type, Handler]:
        """Payload type -> handler: one line per event type."""
        adt = self._admissions  # issue 15: the ADT visit / identifier and BAR account events
        return {
            Charge: self._charge,  # FT1 CG/CD/PY/AJ by [mappings.transaction_types]
            SupplyConsumed: self._consumed,
            SupplyRequested: self._requested,
            SupplyUsageVoided: self._voided,
            ClaimRemitted: self._claim_remitted,
            ProviderAdjusted: self._provider_adjusted,
            PatientPaymentSettled: self._card_payment,
            ProcessorDeposited: self._deposit,
            RemittancePaid: self._deposit,
            BankDeposited: self._deposit,
            **{t: self._workforce for t in WORKFORCE_EVENTS},
            ClaimSubmitted: self._claim_submitted,
            AcknowledgementReceived: self._claim_response,  # issue 20: 999, 277(CA), 271
            ClaimStatusReported: self._claim_response,
            ClaimBatchStatusReported: self._claim_response,
            EligibilityReported: self._claim_response,
            PatientRegistered: self._registered,  # PatientUpdated too
            EncounterStarted: adt.encounter,
            EncounterDischarged: adt.encounter,
            BillingAccountOpened: self._account_opened,
            AccountsMerged: adt.merged,
            EncounterTransferred: adt.transferred,
            PatientClassChanged: adt.class_changed,
            VisitEventRecorded: adt.visit_recorded,
            ClinicalCodesRecorded: adt.codes,
            CoverageRecorded: adt.coverage,
            BillingAccountClosed: adt.account_closed,
            PatientDeleted: adt.deleted,
            IdentifiersMoved: adt.moved,
        }

    def _remit_accounts(self) -> RemitAccounts:
        """The remittance chart, with this site's A/R account."""
        return self._chart

    def _receivables(self) -> tuple[str, ...]:
        """The ledger accounts whose lines carry the patient's token: A/R, patient A/R."""
        return self._ar_accounts

    def handle(self, tx: Tx, env: Envelope, now: float) -> str:
        """Apply `env` at `now`; the outcome's word (`flows.outcome`), as stored and
        counted. A type no flow handles is dead-lettered (PermanentError)."""
        # `process`, inlined: the worker calls this once per event
        admitted = references.admit(tx, env, now)
        if admitted is None:  # names a FHIR Patient/Account not known yet: held (references)
            return references.HELD
        kind = type(admitted.payload)
        if kind is Charge:  # most events: its registered handler, called without the look-up
            return self._charge(tx, admitted, now).label  # (about 0.7 % of the worker's cost)
        handler = self._handlers.get(kind) or self.handler_of(kind)
        if handler is None:
            raise PermanentError(f"no flow handles {kind.__name__}")
        outcome = handler(tx, admitted, now)
        if type(outcome) is Refused:
            raise PermanentError(outcome.reason)
        return outcome.label

    def process(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        """Apply `env` at `now` with the handler its payload type is registered with."""
        admitted = references.admit(tx, env, now)
        if admitted is None:  # names a FHIR Patient/Account not known yet: held (references)
            return of(references.HELD)
        env = admitted
        kind = type(env.payload)
        handler = self._handlers.get(kind) or self.handler_of(kind)
        if handler is None:
            return Refused(f"no flow handles {kind.__name__}")
        return handler(tx, env, now)

    def handler_of(self, kind: type) -> Handler | None:
        """The handler of a payload type, or of its nearest registered parent."""
        found = self._handlers.get(kind)
        if found is None:
            found = next((self._handlers[t] for t in kind.__mro__ if t in self._handlers), None)
            if found is not None:
                self._handlers[kind] = found  # the next one of its kind looks up once
        return found

    # -- handlers ------------------------------------------------------------------------
    def _charge(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        ev = env.payload
        assert isinstance(ev, Charge)
        ev, found = lineage.follow(tx, ev)
        rec = lineage.Recorder(tx)
        outcome = transactions.post_line(
            rec.tx,
            env,
            ev,
            secret=self.secret,
            maps=self.mappings,
            accounts=self._remit_accounts(),
            calendar=self.calendar,
            now=now,
        )
        lineage.settle(tx, self._receivables(), found, rec.posted)
        if self.supply is not None:  # an FT1 supply line also takes stock
            self.supply.on_charge(tx, env, ev, now)
        return SHARED[outcome]  # "posted", "duplicate", "held" or "applied"

    def _supply_flow(self, env: Envelope) -> SupplyFlow | Refused:
        return self.supply or Refused(f"no supply flow is configured for {env.type}")

    def _consumed(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        ev, flow = env.payload, self._supply_flow(env)
        assert isinstance(ev, SupplyConsumed)
        return flow if isinstance(flow, Refused) else of(flow.consume(tx, env, ev, now))

    def _requested(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        ev, flow = env.payload, self._supply_flow(env)
        assert isinstance(ev, SupplyRequested)
        return flow if isinstance(flow, Refused) else of(flow.request(tx, env, ev, now))

    def _voided(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        ev, flow = env.payload, self._supply_flow(env)
        assert isinstance(ev, SupplyUsageVoided)
        return flow if isinstance(flow, Refused) else of(flow.void(tx, env, ev, now))

    def _claim_remitted(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        ev = env.payload
        assert isinstance(ev, ClaimRemitted)
        acct, _ = remittance.match_account(tx, ev)
        found = (
            None
            if acct is None
            else lineage.books(
                tx, account=acct.account_number, visit="", patient_key=acct.patient_key
            )
        )
        rec = lineage.Recorder(tx)
        outcome = remittance.post_claim_payment(
            rec.tx,
            env,
            ev,
            secret=self.secret,
            maps=self.mappings,
            accounts=self._remit_accounts(),
            calendar=self.calendar,
            now=now,
        )
        if self.claims is not None:  # issue 20: paid, underpaid or denied
            claim_remit.on_remitted(
                rec.tx,
                env,
                ev,
                policy=self.claims,
                outcome=outcome,
                books=claim_remit.Books(
                    self.secret, self.mappings, self.calendar, self._remit_accounts()
                ),
            )
        lineage.settle(tx, self._receivables(), found, rec.posted)
        return of(outcome)

    def _provider_adjusted(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        ev = env.payload
        assert isinstance(ev, ProviderAdjusted)
        return remittance.post_provider_adjustment(
            tx, env, ev, accounts=self._remit_accounts(), calendar=self.calendar, now=now
        )

    def _card_payment(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        ev = env.payload
        assert isinstance(ev, PatientPaymentSettled)
        acct = tx.get_billing_account(ev.account_number)
        found = (
            None
            if acct is None
            else lineage.books(
                tx, account=acct.account_number, visit="", patient_key=acct.patient_key
            )
        )
        rec = lineage.Recorder(tx)
        outcome = self._settlement.handle(rec.tx, env, now)
        lineage.settle(tx, self._receivables(), found, rec.posted)
        return outcome

    def _deposit(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        return self._settlement.handle(tx, env, now)

    def _workforce(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        return self._labor.handle(tx, env, now)

    def _claim_submitted(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        ev = env.payload
        assert isinstance(ev, ClaimSubmitted)
        outcome = remittance.register_claim(tx, env, ev, now)
        if self.claims is not None and claim_fhir.from_fhir(env):  # issue 20: its life
            claim_fhir.on_claim(tx, env, ev, now=now)
        return outcome

    def _claim_response(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        ev = env.payload
        assert isinstance(
            ev,
            AcknowledgementReceived
            | ClaimStatusReported
            | ClaimBatchStatusReported
            | EligibilityReported,
        )
        return of(claim_acks.on_response(tx, env, ev, now))

    def _release(
        self, tx: Tx, env: Envelope, ev: PatientRegistered | BillingAccountOpened, now: float
    ) -> None:
        """Handle, in this transaction, the postings that waited for `ev` (references)."""
        for held in references.release(tx, env, ev, now):
            self.handle(tx, held, now)  # a refusal fails the releasing event, as before

    def _registered(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        ev = env.payload
        assert isinstance(ev, PatientRegistered)
        accounts.register(tx, self.secret, ev)
        self._release(tx, env, ev, now)
        return APPLIED

    def _account_opened(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        ev = env.payload
        assert isinstance(ev, BillingAccountOpened)
        accounts.billing_account(tx, self.secret, ev)
        account_state.reopen(tx, ev.account_number, now)
        self._release(tx, env, ev, now)
        return APPLIED
