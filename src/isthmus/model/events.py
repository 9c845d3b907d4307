"""Typed finance events, the vocabulary every flow speaks: one import path for all of them.

Each event is a tagged msgspec Struct so the bus stores compact JSON and decodes it back
into the exact type; the tag is the class name, whichever module defines it. The types live
in one module per domain: `events_patients` (HL7 v2 ADT, BAR, DFT), `events_claims` (X12
835/837/999/277/271 and their FHIR twins), `events_deposits` (processor settlements, bank
deposits), `events_supply` and `events_workforce`. This module re-exports every one of them,
so `from isthmus.model.events import X` is the path the rest of the code uses, and defines
`Event`, the union the bus decodes into (`governance.contracts` reads the types from here).
"""

from __future__ import annotations

from isthmus.model.events_claims import (
    AckError,
    AcknowledgementReceived,
    ClaimBatchStatusReported,
    ClaimRemitted,
    ClaimStatusEntry,
    ClaimStatusReported,
    ClaimSubmitted,
    EligibilityReported,
    ProviderAdjusted,
    RemitAdjustment,
    RemitServiceLine,
    RemittancePaid,
)
from isthmus.model.events_deposits import (
    BankDeposited,
    PatientPaymentSettled,
    ProcessorDeposited,
)
from isthmus.model.events_patients import (
    AccountsMerged,
    BillingAccountClosed,
    BillingAccountOpened,
    Charge,
    ClinicalCodesRecorded,
    CodedEntry,
    Coverage,
    CoverageRecorded,
    EncounterDischarged,
    EncounterStarted,
    EncounterTransferred,
    IdentifiersMoved,
    PatientClassChanged,
    PatientDeleted,
    PatientRef,
    PatientRegistered,
    PatientUpdated,
    VisitEventRecorded,
)
from isthmus.model.events_supply import (
    SupplyConsumed,
    SupplyRequested,
    SupplyUsageVoided,
)
from isthmus.model.events_workforce import (
    WORKFORCE_EVENTS,
    CredentialExpired,
    CredentialExpiring,
    EmployeeTransferred,
    OvertimeApproved,
    OvertimeRejected,
    OvertimeRequested,
    PayrollPosted,
    ShiftChanged,
    ShiftWorked,
)

__all__ = [
    "WORKFORCE_EVENTS",
    "AccountsMerged",
    "AckError",
    "AcknowledgementReceived",
    "BankDeposited",
    "BillingAccountClosed",
    "BillingAccountOpened",
    "Charge",
    "ClaimBatchStatusReported",
    "ClaimRemitted",
    "ClaimStatusEntry",
    "ClaimStatusReported",
    "ClaimSubmitted",
    "ClinicalCodesRecorded",
    "CodedEntry",
    "Coverage",
    "CoverageRecorded",
    "CredentialExpired",
    "CredentialExpiring",
    "EligibilityReported",
    "EmployeeTransferred",
    "EncounterDischarged",
    "EncounterStarted",
    "EncounterTransferred",
    "Event",
    "IdentifiersMoved",
    "OvertimeApproved",
    "OvertimeRejected",
    "OvertimeRequested",
    "PatientClassChanged",
    "PatientDeleted",
    "PatientPaymentSettled",
    "PatientRef",
    "PatientRegistered",
    "PatientUpdated",
    "PayrollPosted",
    "ProcessorDeposited",
    "ProviderAdjusted",
    "RemitAdjustment",
    "RemitServiceLine",
    "RemittancePaid",
    "ShiftChanged",
    "ShiftWorked",
    "SupplyConsumed",
    "SupplyRequested",
    "SupplyUsageVoided",
    "VisitEventRecorded",
]

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
