"""Typed finance events, the vocabulary every flow speaks.

Each event is a tagged msgspec Struct so the bus stores compact JSON and decodes it back
into the exact type. Field meanings follow HL7 v2.5+ where they come from:
PID-3 (patient identifier list), PID-18 (patient account number), PV1-19 (visit number),
FT1 (financial transaction), MRG (merge patient information).
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
    """ADT A01/A04: a visit begins (PV1-19 visit number, PV1-2 patient class)."""

    patient: PatientRef
    visit_number: str
    patient_class: str = ""
    facility: str = ""
    started_at: datetime | None = None


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

    @property
    def is_credit(self) -> bool:
        return self.transaction_type == "CD"


Event = (
    PatientRegistered
    | PatientUpdated
    | EncounterStarted
    | EncounterDischarged
    | AccountsMerged
    | BillingAccountOpened
    | Charge
)
