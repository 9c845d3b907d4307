"""System-of-record ownership: each data domain has owners; a write from another system is
refused. Pure decisions, called at each boundary (MLLP and HL7 files: flows/hl7_inbound.py;
X12 files: flows/file_intake.py; FHIR: api/auth.py).

DESIGN.md "Governance and security": patient and encounter belong to the EHR, claims and
remittances to billing, and so on. The site says who owns what in its config:

    [ownership]
    patient = "EPIC"                 # HL7 MSH-3/MSH-4, a FHIR principal, an X12 sender id
    encounter = "EPIC"
    claim = ["BILLING", "PAYERX"]

A system is named by what it sends: an HL7 v2 message by its sending application (MSH-3.1)
or facility (MSH-4.1), an X12 interchange by its sender id (ISA06), a FHIR client over
HTTP by the principal of its token, a FHIR file by its Bundle's (or resource's)
`meta.source` (FHIR R4 Meta.source). A domain the config does not name
is open to everyone, and so is everything without an [ownership] table.

A write touches the domains of the events it would produce (`EVENT_DOMAINS`) or, for FHIR,
of the resources it carries (`FHIR_DOMAINS`); the first domain whose owners do not include
the sender refuses the whole write, naming the domain and its owners.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from isthmus.errors import ConfigurationError

DOMAINS: Final = ("patient", "encounter", "account", "charge", "claim", "remittance", "payment")

# model.events type name -> the domain it writes
EVENT_DOMAINS: Final[Mapping[str, str]] = {
    "PatientRegistered": "patient",
    "AccountsMerged": "patient",
    "EncounterStarted": "encounter",
    "EncounterDischarged": "encounter",
    "BillingAccountOpened": "account",
    # issue 15: the other ADT and BAR events write the same domains
    "PatientUpdated": "patient",
    "PatientDeleted": "patient",
    "IdentifiersMoved": "patient",
    "EncounterTransferred": "encounter",
    "PatientClassChanged": "encounter",
    "VisitEventRecorded": "encounter",
    "ClinicalCodesRecorded": "encounter",
    "CoverageRecorded": "account",
    "BillingAccountClosed": "account",
    "Charge": "charge",
    "ClaimSubmitted": "claim",
    "ClaimRemitted": "remittance",
    "ProviderAdjusted": "remittance",
    "RemittancePaid": "remittance",
    # issue 20: the payer's or clearinghouse's other answers about claims (999, 277CA and
    # 277 claim or batch status, 271 eligibility) come from whoever sends the 835s
    "AcknowledgementReceived": "remittance",
    "ClaimStatusReported": "remittance",
    "ClaimBatchStatusReported": "remittance",
    "EligibilityReported": "remittance",
    "PatientPaymentSettled": "payment",
    "ProcessorDeposited": "payment",
    "BankDeposited": "payment",
}

# FHIR R4 resource type -> the domain it writes
FHIR_DOMAINS: Final[Mapping[str, str]] = {
    "Patient": "patient",
    "Encounter": "encounter",
    "Account": "account",
    "Coverage": "account",
    "ChargeItem": "charge",
    "Invoice": "charge",
    "Claim": "claim",
    "ClaimResponse": "remittance",
    "ExplanationOfBenefit": "remittance",
    "PaymentReconciliation": "payment",
    "PaymentNotice": "payment",
}

Owners = Mapping[str, frozenset[str]]


class OwnershipConfigError(ConfigurationError, ValueError):
    """The [ownership] table is invalid; the operator must fix the entry named."""


@dataclass(frozen=True)
class Refusal:
    """A write refused because its sender is not an owner of the domain it touches."""

    domain: str
    owners: tuple[str, ...]
    sender: str

    @property
    def text(self) -> str:
        who = self.sender or "an unidentified system"
        return (
            f"{who} may not write {self.domain} data: the system of record for "
            f"{self.domain} is {', '.join(self.owners)} ([ownership] {self.domain})"
        )


def parse(raw: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """The [ownership] table: domain -> a system name or a list of them."""
    out: dict[str, frozenset[str]] = {}
    for domain, value in raw.items():
        if domain not in DOMAINS:
            raise OwnershipConfigError(
                f"ownership.{domain}: unknown data domain; domains are {', '.join(DOMAINS)}"
            )
        names = [value] if isinstance(value, str) else value
        if (
            not isinstance(names, list)
            or not names
            or not all(isinstance(n, str) and n.strip() for n in names)
        ):
            raise OwnershipConfigError(
                f"ownership.{domain} must be a system name or a non-empty list of them"
            )
        out[domain] = frozenset(n.strip() for n in names)
    return out


def decide(owners: Owners, domains: Iterable[str], senders: Iterable[str]) -> Refusal | None:
    """None when every domain written is open or owned by one of the sender's names."""
    if not owners:
        return None
    names = {s.strip() for s in senders if s and s.strip()}
    for domain in dict.fromkeys(domains):
        allowed = owners.get(domain)
        if allowed is not None and not allowed & names:
            return Refusal(domain, tuple(sorted(allowed)), "/".join(sorted(names)))
    return None


class _Meta(msgspec.Struct):
    source: str = ""


class _Entry(msgspec.Struct):
    resource: dict[str, Any] | None = None


class _Doc(msgspec.Struct):
    resourceType: str = ""  # the FHIR element names
    meta: _Meta | None = None
    entry: list[_Entry] = []


_doc = msgspec.json.Decoder(_Doc)


@dataclass(frozen=True)
class FhirWrite:
    """What a FHIR write body carries: its resource types and the `meta.source` of the
    Bundle or resource (FHIR R4 Meta.source: the system the data comes from)."""

    types: tuple[str, ...]
    source: str


def fhir_write(body: bytes) -> FhirWrite:
    """The resource types of a resource or Bundle body; empty when it is unreadable (the
    FHIR layer answers that with its own 400)."""
    try:
        doc = _doc.decode(body)
    except msgspec.MsgspecError:
        return FhirWrite((), "")
    source = doc.meta.source if doc.meta is not None else ""
    if doc.resourceType != "Bundle":
        return FhirWrite((doc.resourceType,), source)
    types = tuple(
        str(e.resource.get("resourceType", "")) for e in doc.entry if e.resource is not None
    )
    return FhirWrite(types, source)


def event_domains(type_names: Iterable[str]) -> list[str]:
    """The data domains the given event types write, in order (types with no domain skipped)."""
    return [EVENT_DOMAINS[t] for t in type_names if t in EVENT_DOMAINS]


def fhir_domains(resource_types: Iterable[str]) -> list[str]:
    """The data domains the given FHIR resource types write, in order (others skipped)."""
    return [FHIR_DOMAINS[t] for t in resource_types if t in FHIR_DOMAINS]


__all__ = [
    "DOMAINS",
    "EVENT_DOMAINS",
    "FHIR_DOMAINS",
    "FhirWrite",
    "OwnershipConfigError",
    "Refusal",
    "decide",
    "event_domains",
    "fhir_domains",
    "fhir_write",
    "parse",
]
