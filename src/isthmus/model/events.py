"""Typed finance events, the vocabulary every flow speaks.

Each event is a tagged msgspec Struct so the bus stores compact JSON and decodes it back
into the exact type. Field meanings follow HL7 v2.5+ where they come from:
PID-3 (patient identifier list), PID-18 (patient account number), PV1-19 (visit number),
FT1 (financial transaction), MRG (merge patient information). Remittance and claim events
follow ASC X12 005010X221A1 (835: BPR, TRN, CLP, CAS, LQ, PLB) and X222A2/X223A3 (837: CLM,
REF*F8); they carry no patient names or identifiers beyond the account number (CLP01).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import msgspec

from isthmus.model.money import Money


class PatientRef(msgspec.Struct, frozen=True):
    """A patient identity: MRN plus its assigning authority (PID-3.1 and PID-3.4)."""

    mrn: str
    authority: str

    @property
    def key(self) -> str:
        return f"{self.authority}|{self.mrn}"


class PatientRegistered(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """ADT A01/A04/A05: a patient is known to the hospital. Demographics are PHI."""

    patient: PatientRef
    family_name: str = ""
    given_name: str = ""
    birth_date: str = ""
    sex: str = ""
    account_number: str = ""
    facility: str = ""


class PatientUpdated(PatientRegistered, frozen=True, tag=True, kw_only=True):
    """ADT A08: demographics changed."""


class EncounterStarted(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """ADT A01/A04: a visit begins (PV1-19 visit number, PV1-2 patient class), at its first
    location PV1-3 (`location` PL-1 point of care, `department` the location or PV1-10
    hospital service, as for EncounterTransferred); `trigger` A01 or A04 ("" from FHIR)."""

    patient: PatientRef
    visit_number: str
    patient_class: str = ""
    facility: str = ""
    started_at: datetime | None = None
    location: str = ""
    department: str = ""
    trigger: str = ""


class EncounterDischarged(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """ADT A03: the visit ends (PV1-45 discharge date/time)."""

    patient: PatientRef
    visit_number: str
    facility: str = ""
    discharged_at: datetime | None = None


class AccountsMerged(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """ADT A40: the patient in MRG-1 is merged into the surviving patient in PID-3."""

    survivor: PatientRef
    merged: PatientRef


class EncounterTransferred(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """ADT A02 transfer (and each patient of an A17 swap): the visit moves to PV1-3
    (`location` PL-1 point of care, `department` the location or PV1-10 hospital service,
    the key of `[mappings.department_cost_center]`). A12 cancel transfer: `cancelled`, the
    last transfer of the visit is undone."""

    patient: PatientRef
    visit_number: str
    location: str = ""
    department: str = ""
    facility: str = ""
    at: datetime | None = None
    trigger: str = "A02"
    cancelled: bool = False


class PatientClassChanged(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """ADT A06 (outpatient to inpatient) / A07 (inpatient to outpatient): PV1-2 patient
    class, HL7 table 0004, the account type of the visit."""

    patient: PatientRef
    visit_number: str
    patient_class: str
    facility: str = ""
    at: datetime | None = None
    trigger: str = ""


class VisitEventRecorded(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A visit event kept on the visit with no posting (HL7 v2.5.1 ch. 3): A14 pending
    admit, A15 pending transfer, A16 pending discharge, A25 cancel pending discharge, A26
    cancel pending transfer; A13 cancel discharge (the visit is active again); A11 cancel
    admit, A27 cancel pending admit, A38 cancel pre-admit (the visit is cancelled; charges
    already on it open a work item)."""

    patient: PatientRef
    visit_number: str
    trigger: str
    facility: str = ""
    at: datetime | None = None


class PatientDeleted(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """ADT A29 delete person information: refused into a work item when the person has
    financial activity."""

    patient: PatientRef


class IdentifiersMoved(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """ADT A41/A42/A44/A45/A47/A49/A50/A51 (merge account, merge visit, move account, move
    visit, change identifier...): the identifiers the message moves, from MRG (MRG-1 prior
    patient, MRG-3 prior account, MRG-5 prior visit) to PID-3 / PID-18 / PV1-19."""

    trigger: str
    patient: PatientRef
    prior_patient: PatientRef | None = None
    prior_account: str = ""
    prior_visit: str = ""
    account_number: str = ""
    visit_number: str = ""


class CodedEntry(msgspec.Struct, frozen=True):
    """A DG1 diagnosis (DG1-3, DG1-6 type) or PR1 procedure (PR1-3): code and system."""

    code: str
    system: str = ""
    kind: str = ""


class ClinicalCodesRecorded(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """BAR P12 (and DG1/PR1 of other BAR and DFT messages): diagnoses and procedures kept
    with the visit for claims. Codes only; never sent to the ERP."""

    patient: PatientRef
    visit_number: str = ""
    account_number: str = ""
    diagnoses: tuple[CodedEntry, ...] = ()
    procedures: tuple[CodedEntry, ...] = ()


class Coverage(msgspec.Struct, frozen=True):
    """IN1/IN2: a plan (IN1-2), its payer (IN1-3 id, IN1-4 name), the plan type (IN1-15)
    and the visit's financial class (PV1-20), the payer dimension of reports."""

    plan_id: str = ""
    payer_id: str = ""
    payer_name: str = ""
    plan_type: str = ""
    financial_class: str = ""


class CoverageRecorded(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """The insurance of a billing account (PID-18) as the message states it, in IN1 order."""

    patient: PatientRef
    account_number: str
    plans: tuple[Coverage, ...] = ()


class BillingAccountClosed(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """BAR P06 end account (`purged` False) or P02 purge patient accounts (`purged` True):
    a later charge to the account is held with a work item."""

    patient: PatientRef
    account_number: str
    purged: bool = False
    at: datetime | None = None


class BillingAccountOpened(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """BAR P01: a billing account (PID-18) is opened for a patient."""

    patient: PatientRef
    account_number: str
    facility: str = ""
    visit_number: str = ""


class Charge(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """DFT P03 FT1: one financial transaction.

    `transaction_type` is FT1-6 (HL7 table 0017: CG charge, CD credit, PY payment, AJ
    adjustment). `amount` is the extended amount (FT1-11), or unit amount (FT1-12) times
    quantity (FT1-10) when FT1-11 is empty; a credit is always carried as a positive amount
    with transaction_type "CD".
    """

    patient: PatientRef
    transaction_id: str
    transaction_type: str
    quantity: int
    amount: Money
    charge_code: str
    department: str
    facility: str
    performing_provider: str = ""
    service_date: date
    account_number: str = ""
    visit_number: str = ""

    # FT1-11 was sent negative on a type other than CG (a PY or AJ usually is): the amount
    # is still carried positive, and an adjustment sent positive raises the balance
    negative: bool = False

    @property
    def is_credit(self) -> bool:
        return self.transaction_type == "CD"


class RemitAdjustment(msgspec.Struct, frozen=True):
    """CAS: group code (CO, PR, OA, PI, CR), CARC reason, amount (sign as sent)."""

    group: str
    reason: str
    amount: Decimal


class RemitServiceLine(msgspec.Struct, frozen=True, kw_only=True):
    """835 loop 2110, one service line as paid: SVC01 procedure (C003-1 qualifier, C003-2
    code, C003-3..6 modifiers), SVC02 billed, SVC03 paid, SVC04 revenue code, SVC05 units
    paid, the line's CAS, its DTM*472 service date (else DTM*150, the period's start) and
    REF*6R, the line item control number the 837 gave it. What a fee schedule is compared
    with, line by line (`flows.claim_remit`)."""

    code: str
    qualifier: str = ""
    modifiers: tuple[str, ...] = ()
    charge: Decimal
    paid: Decimal
    revenue_code: str = ""
    units: Decimal | None = None
    adjustments: tuple[RemitAdjustment, ...] = ()
    service_date: date | None = None
    control_number: str = ""


class ClaimRemitted(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """835 loop 2100 (one CLP) with its payment header (BPR, TRN) and payer/payee.

    Amounts are in `currency` (CUR02, USD by default) with the signs sent: a reversal
    (CLP02 = 22) carries negative amounts. `adjustments` sums the CAS of the claim and of
    its service lines per (group, CARC); `remarks` are the RARC codes (MOA, MIA, LQ*HE).
    Patient and insured names (NM1*QC/IL) are never copied here.
    """

    payer_id: str  # TRN03 or N1*PR N104
    payer_name: str
    payee_npi: str
    payee_tin: str
    trace_number: str  # TRN02: EFT trace or check number
    payment_method: str  # BPR04: ACH, CHK, FWT, BOP, NON
    payment_date: date | None = None  # BPR16
    patient_control_number: str  # CLP01 (the billing account number, PID-18)
    claim_status: str  # CLP02
    charge: Decimal  # CLP03
    paid: Decimal  # CLP04
    patient_responsibility: Decimal = Decimal(0)  # CLP05
    payer_claim_control_number: str = ""  # CLP07
    adjustments: tuple[RemitAdjustment, ...] = ()
    remarks: tuple[str, ...] = ()
    reversal: bool = False
    currency: str = "USD"
    facility: str = ""  # a facility hint when the sender gives one; usually empty
    # FHIR ExplanationOfBenefit.patient / ClaimResponse.patient (never set from X12): the
    # patient whose A/R a payment with no known billing account is applied to. An MRN
    # reference like Charge.patient; only its account token reaches the journal.
    patient: PatientRef | None = None
    # 835 loop 2110 (issue 20): the service lines as paid, in order; empty when the 835
    # has none (or the event came from FHIR or before lines were carried)
    lines: tuple[RemitServiceLine, ...] = ()

    @property
    def payee_key(self) -> str:
        return self.payee_npi or self.payee_tin


class ProviderAdjusted(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """835 PLB: a provider-level adjustment. A positive amount reduces the payment
    (e.g. WO overpayment recovery), a negative one adds to it (e.g. L6 interest)."""

    payer_id: str
    payee_npi: str
    payee_tin: str
    provider_id: str  # PLB01
    trace_number: str
    payment_date: date | None = None
    fiscal_period: date | None = None  # PLB02
    reason: str  # PLB03-1
    reference: str = ""  # PLB03-2
    amount: Decimal
    currency: str = "USD"

    @property
    def payee_key(self) -> str:
        return self.payee_npi or self.payee_tin or self.provider_id


class ClaimSubmitted(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """837P/837I loop 2300 CLM: a claim sent to a payer, for the claim register that
    remittances match on (CLP01 = CLM01, CLP07 = REF*F8 for corrections)."""

    patient_control_number: str  # CLM01
    payer_id: str  # 2010BB NM1*PR NM109
    payer_name: str = ""
    billing_npi: str = ""
    total_charge: Decimal
    currency: str = "USD"
    kind: str = ""  # professional | institutional
    frequency: str = ""  # CLM05-3
    payer_claim_control_number: str = ""  # REF*F8
    service_date: date | None = None


class AckError(msgspec.Struct, frozen=True):
    """999 loops 2100/2110 of a received acknowledgment: IK301 segment id, IK302 position in
    the set, IK303 loop, IK304 code (620); IK401 element (and component), IK402 data element
    reference, IK403 code (621). IK404, the copy of the bad data, is never kept."""

    segment_id: str
    position: int
    loop: str = ""
    code: str = ""
    elements: tuple[str, ...] = ()  # "<element>:<component>/<reference>/<IK403 code>"


class AcknowledgementReceived(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """An inbound 999 (005010X231A1) loop 2000: what a receiver said of one transaction set
    the hub SENT (AK102 our GS06, AK202 our ST02). Not the 999 the hub answers inbound X12
    with (`formats.x12.ack999`): that one is written out, never taken in."""

    sender: str  # ISA06 of the 999: who acknowledges
    functional_id: str  # AK101 (HC for an 837)
    group_control: str  # AK102
    set_id: str  # AK201
    set_control: str  # AK202
    convention: str = ""  # AK203
    status: str  # IK501: A, E accepted; R, M, W, X rejected
    codes: tuple[str, ...] = ()  # IK502-506
    group_status: str = ""  # AK901
    errors: tuple[AckError, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.status in ("A", "E")


class ClaimStatusEntry(msgspec.Struct, frozen=True):
    """One STC C043: category (code list 507), status (508), entity (98); STC02 date,
    STC04 charge and STC05 paid of the first one."""

    category: str
    code: str = ""
    entity: str = ""
    effective: date | None = None
    charge: Decimal | None = None
    paid: Decimal | None = None


class ClaimStatusReported(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A 277CA (005010X214) or 277 (005010X212) claim level: a payer's or clearinghouse's
    status of one claim; or a FHIR ClaimResponse that adjudicated and paid nothing yet
    (report "ClaimResponse", status A2). No patient or subscriber name or member id is
    copied."""

    report: str  # "277CA", "277" or "ClaimResponse"
    payer_id: str  # 2100A NM109 (PR payer, AY clearinghouse)
    payer_name: str = ""
    trace: str = ""  # TRN02
    patient_control_number: str = ""  # REF*EJ (277), REF*D9 (277CA)
    payer_claim_control_number: str = ""  # REF*1K
    statuses: tuple[ClaimStatusEntry, ...] = ()
    currency: str = "USD"


class ClaimBatchStatusReported(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A 277CA (005010X214) status above the claims: at the information receiver level
    (HL 21, loop 2200B) it answers a whole 837 batch, at the billing provider level (HL 19,
    2200C) the provider's claims of it. `batch` is the 2200B TRN02 (the BHT03 of our 837),
    `provider_npi` the 2100C NM109 (NM108 XX). No claim is named; no patient data."""

    report: str  # "277CA" or "277"
    payer_id: str  # 2100A NM109 (PR payer, AY clearinghouse)
    payer_name: str = ""
    level: str  # HL03: "21" information receiver, "19" billing provider
    batch: str = ""  # 2200B TRN02
    trace: str = ""  # the level's own TRN02
    provider_npi: str = ""  # 2100C NM109 when NM108 is XX
    statuses: tuple[ClaimStatusEntry, ...] = ()


class EligibilityReported(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A 271 (005010X279A1) answer for one subscriber or dependent inquiry, reduced to what
    billing keeps: active/inactive, plan, co-payment, deductible and out-of-pocket remaining,
    AAA03 reject reasons. `trace` is TRN02, the trace of the hub's 270. No name, birth date
    or member id is copied."""

    payer_id: str  # 2100A NM109
    payer_name: str = ""
    trace: str
    status: str  # active | inactive | unknown
    plan: str = ""
    copay: Decimal | None = None
    deductible_remaining: Decimal | None = None
    out_of_pocket_remaining: Decimal | None = None
    rejections: tuple[str, ...] = ()
    currency: str = "USD"


class RemittancePaid(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """835 BPR/TRN: the payment of one 835 transaction set, as the bank will see it.

    `amount` is BPR02 (total actual provider payment), `trace_number` TRN02 (the EFT
    reassociation trace or check number, 005010X221A1 section 1.10.2.3): a bank deposit with
    this reference and amount is this payment arriving.
    """

    payer_id: str
    payer_name: str = ""
    payee_npi: str = ""
    payee_tin: str = ""
    trace_number: str
    payment_method: str  # BPR04: ACH, CHK, FWT, BOP
    payment_date: date | None = None  # BPR16
    amount: Decimal
    currency: str = "USD"

    @property
    def payee_key(self) -> str:
        return self.payee_npi or self.payee_tin


class PatientPaymentSettled(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A card or online patient payment (or its refund or chargeback) settled by a payment
    processor, from its settlement file. `account_number` is the billing account (PID-18),
    never card data. Amounts carry their sign: a refund or chargeback is negative;
    gross - fee = net."""

    processor: str
    deposit_id: str
    transaction_id: str
    kind: str  # payment | refund | chargeback
    account_number: str
    transaction_date: date
    deposit_date: date
    gross: Decimal
    fee: Decimal
    net: Decimal
    currency: str = "USD"


class ProcessorDeposited(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A processor's deposit (payout): the sum of the payments it settles, less its fees,
    paid into the bank on `deposit_date`."""

    processor: str
    deposit_id: str
    deposit_date: date
    gross: Decimal
    fee: Decimal
    net: Decimal
    currency: str = "USD"
    transactions: int = 0


class BankDeposited(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A credit on the hospital's bank account, from a bank deposit file. `reference` is
    what it matches on: an 835 trace number (TRN02) or a processor deposit id."""

    deposit_date: date
    amount: Decimal
    reference: str
    method: str = ""  # ACH | CARD | CHECK | WIRE | OTHER | "" (unknown)
    currency: str = "USD"
    bank_account: str = ""


class SupplyConsumed(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A supply or implant used by a procedure (issue 8), from an HL7 v2 DFT FT1 supply
    line, a FHIR R4 SupplyDelivery or a departmental inventory CSV feed.

    `usage_id` is the source's own id for the line (idempotency). `item` is the ERP item
    number, `location` the stock location it was taken from, `quantity` units used (> 0).
    `lot` / `serial` are kept where the source gives them (implant traceability). The link
    to the patient's finances is the billing account (PID-18), visit (PV1-19) and the charge
    line it was billed on (FT1-2 transaction id), never the patient's identity.
    """

    usage_id: str
    item: str
    location: str
    quantity: Decimal
    used_on: date
    department: str = ""
    facility: str = ""
    lot: str = ""
    serial: str = ""
    account_number: str = ""
    visit_number: str = ""
    charge_id: str = ""


class SupplyUsageVoided(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A usage recorded in error (FHIR R4 SupplyDelivery `entered-in-error`): the stock it
    took goes back and its cost is reversed; a usage voided before it arrived takes
    nothing when it does."""

    usage_id: str
    voided_on: date


class SupplyRequested(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A department asks for stock (issue 8; FHIR R4 SupplyRequest): a replenishment
    requisition for `quantity` of `item` delivered to `location`, budget-checked like one
    the hub makes at a reorder point. `request_id` is the source's id (idempotency)."""

    request_id: str
    item: str
    location: str
    quantity: Decimal
    requested_on: date
    department: str = ""


# --- workforce (HCM / scheduling feed) --------------------------------------------------
# Employees are named by their HCM employee id only: never a name (the feed's names are
# dropped at the boundary), so nothing here can put a person's name into a journal or log.


class ShiftWorked(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A worked shift from a timecard: hours per pay code (regular, overtime, shift
    differential, on-call). `overtime_approval` names the approval the feed carries, if
    any; `credential_expires_on` is the employee's licence expiry the feed states, if any."""

    shift_id: str
    employee_id: str
    department: str = ""  # empty: the employee's home department (ERP master)
    work_date: date
    regular_hours: Decimal = Decimal(0)
    overtime_hours: Decimal = Decimal(0)
    differential_hours: Decimal = Decimal(0)
    on_call_hours: Decimal = Decimal(0)
    overtime_approval: str = ""
    credential_expires_on: date | None = None


class ShiftChanged(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A scheduled shift moved or reassigned (no money until it is worked)."""

    shift_id: str
    employee_id: str
    department: str = ""
    work_date: date
    change: str = ""  # rescheduled | reassigned | cancelled


class OvertimeRequested(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """Overtime asked for a shift (worked on `work_date`); it posts only once approved."""

    request_id: str
    shift_id: str
    employee_id: str
    department: str = ""  # empty: the employee's home department (ERP master)
    work_date: date
    hours: Decimal


class OvertimeApproved(OvertimeRequested, frozen=True, tag=True, kw_only=True):
    """The overtime of a shift approved: its held overtime hours may post."""

    approver: str = ""


class OvertimeRejected(OvertimeRequested, frozen=True, tag=True, kw_only=True):
    """The overtime of a shift refused: its held overtime hours never post."""

    approver: str = ""


class CredentialExpiring(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """An employee's licence or certification expires soon (`expires_on`)."""

    employee_id: str
    credential: str
    expires_on: date


class CredentialExpired(CredentialExpiring, frozen=True, tag=True, kw_only=True):
    """An employee's licence or certification has expired on `expires_on`."""


class EmployeeTransferred(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """An employee moved from one department to another on `effective_on`."""

    employee_id: str
    from_department: str
    to_department: str
    effective_on: date


class PayrollPosted(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """The ERP's payroll run for the pay period ending `pay_period_end` has posted: the
    period's labor accruals are reversed (on `posted_on`)."""

    payroll_id: str
    pay_period_end: date
    posted_on: date


WORKFORCE_EVENTS = (
    ShiftWorked,
    ShiftChanged,
    OvertimeRequested,
    OvertimeApproved,
    OvertimeRejected,
    CredentialExpiring,
    CredentialExpired,
    EmployeeTransferred,
    PayrollPosted,
)


Event = (
    PatientRegistered
    | PatientUpdated
    | EncounterStarted
    | EncounterDischarged
    | AccountsMerged
    | BillingAccountOpened
    | EncounterTransferred
    | PatientClassChanged
    | VisitEventRecorded
    | PatientDeleted
    | IdentifiersMoved
    | ClinicalCodesRecorded
    | CoverageRecorded
    | BillingAccountClosed
    | Charge
    | ClaimRemitted
    | ProviderAdjusted
    | ClaimSubmitted
    | AcknowledgementReceived
    | ClaimStatusReported
    | ClaimBatchStatusReported
    | EligibilityReported
    | RemittancePaid
    | PatientPaymentSettled
    | ProcessorDeposited
    | BankDeposited
    | ShiftWorked
    | ShiftChanged
    | OvertimeRequested
    | OvertimeApproved
    | OvertimeRejected
    | CredentialExpiring
    | CredentialExpired
    | EmployeeTransferred
    | PayrollPosted
    | SupplyConsumed
    | SupplyUsageVoided
    | SupplyRequested
)
