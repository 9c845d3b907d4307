"""Patient, visit, billing account and charge events: what HL7 v2 says of one patient.

ADT (patient administration, HL7 v2.5+ ch. 3), BAR (billing account, ch. 6) and DFT
(financial transaction, ch. 6) as typed events. Field meanings follow the segments they come
from: PID-3 (patient identifier list), PID-18 (patient account number), PV1-19 (visit
number), FT1 (financial transaction), MRG (merge patient information), DG1/PR1, IN1/IN2.
Imported through `isthmus.model.events`, which re-exports every type.
"""

from __future__ import annotations

from datetime import date, datetime

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
