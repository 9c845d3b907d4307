"""Canonical model: the envelope, finance events and Money. Imports nothing of ours."""

from isthmus.model.envelope import Envelope, Source
from isthmus.model.events import (
    AccountsMerged,
    BillingAccountOpened,
    Charge,
    ClaimRemitted,
    ClaimSubmitted,
    EncounterDischarged,
    EncounterStarted,
    Event,
    PatientRef,
    PatientRegistered,
    PatientUpdated,
    ProviderAdjusted,
    RemitAdjustment,
)
from isthmus.model.money import Money, MoneyError

__all__ = [
    "AccountsMerged",
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
    "PatientRef",
    "PatientRegistered",
    "PatientUpdated",
    "ProviderAdjusted",
    "RemitAdjustment",
    "Source",
]
