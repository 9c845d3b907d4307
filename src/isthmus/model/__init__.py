"""Canonical model: the envelope, finance events and Money. Imports nothing of ours."""

from isthmus.model.envelope import Envelope, Source
from isthmus.model.events import (
    AccountsMerged,
    BankDeposited,
    BillingAccountOpened,
    Charge,
    ClaimRemitted,
    ClaimSubmitted,
    EncounterDischarged,
    EncounterStarted,
    Event,
    PatientPaymentSettled,
    PatientRef,
    PatientRegistered,
    PatientUpdated,
    ProcessorDeposited,
    ProviderAdjusted,
    RemitAdjustment,
    RemittancePaid,
)
from isthmus.model.money import Money, MoneyError

__all__ = [
    "AccountsMerged",
    "BankDeposited",
    "BillingAccountOpened",
    "Charge",
    "ClaimRemitted",
    "ClaimSubmitted",
    "EncounterDischarged",
    "EncounterStarted",
    "Envelope",
    "Event",
    "Money",
    "MoneyError",
    "PatientPaymentSettled",
    "PatientRef",
    "PatientRegistered",
    "PatientUpdated",
    "ProcessorDeposited",
    "ProviderAdjusted",
    "RemitAdjustment",
    "RemittancePaid",
    "Source",
]
