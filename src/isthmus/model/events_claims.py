"""Claim and remittance events: the X12 (and FHIR) conversation with payers.

Remittances follow ASC X12 005010X221A1 (835: BPR, TRN, CLP, CAS, LQ, PLB), claims
005010X222A2/X223A3 (837: CLM, REF*F8), acknowledgements 005010X231A1 (999), claim status
005010X214/X212 (277CA, 277) and eligibility 005010X279A1 (271). They carry no patient
names or identifiers beyond the account number (CLP01). Imported through
`isthmus.model.events`, which re-exports every type.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import msgspec

from isthmus.model.events_patients import PatientRef


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
