"""Canonical model: the envelope, finance events and Money. Imports nothing of ours."""

from isthmus.model.envelope import Envelope, Source
from isthmus.model.events import (
    AccountsMerged,
    BillingAccountOpened,
    Charge,
    EncounterDischarged,
    EncounterStarted,
    Event,
    PatientRef,
    PatientRegistered,
    PatientUpdated,
)
from isthmus.model.money import Money, MoneyError

__all__ = [
    "AccountsMerged",
    "BillingAccountOpened",
    "Charge",
    "EncounterDischarged",
    "EncounterStarted",
    "Envelope",
    "Event",
    "Money",
    "MoneyError",
    "PatientRef",
    "PatientRegistered",
    "PatientUpdated",
    "Source",
]
