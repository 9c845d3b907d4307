"""FHIR identity (`formats.fhir.identity`): a resource version is one business fact, and a
reference to a Patient not known yet is marked as waiting, never taken for an MRN."""

from __future__ import annotations

import json

from isthmus.formats.fhir.identity import (
    PENDING_AUTHORITY,
    business_key,
    patient_reference,
    pending,
    version_of,
    waiting_for,
)
from isthmus.model import PatientRef

_CHARGE = {
    "resourceType": "ChargeItem",
    "id": "ci1",
    "status": "billable",
    "subject": {"reference": "Patient/p1"},
    "priceOverride": {"value": 125.5, "currency": "USD"},
}


def test_the_version_is_meta_version_id_when_the_sender_gives_one() -> None:
    raw = json.dumps({**_CHARGE, "meta": {"versionId": "3"}}).encode()
    assert version_of(raw) == "3"
    assert business_key("ChargeItem", "ci1", version_of(raw)) == "fhir|ChargeItem/ci1|3"
    assert business_key("ClaimResponse", "R1", "3", 1) == "fhir|ClaimResponse/R1|3|1"


def test_without_a_version_the_content_digest_ignores_layout_and_meta() -> None:
    a = version_of(json.dumps(_CHARGE).encode())
    reordered = dict(reversed(list(_CHARGE.items())))
    b = version_of(json.dumps(reordered, indent=2).encode())
    c = version_of(json.dumps({**_CHARGE, "meta": {"lastUpdated": "2025-01-01"}}).encode())
    assert a == b == c and a.startswith("sha256:") and len(a) == len("sha256:") + 16
    changed = {**_CHARGE, "priceOverride": {"value": 99, "currency": "USD"}}
    assert version_of(json.dumps(changed).encode()) != a


def test_a_pending_patient_names_its_reference_and_nothing_else_does() -> None:
    ref = pending("Patient/p1")
    assert ref.authority == PENDING_AUTHORITY and waiting_for(ref) == "Patient/p1"
    assert waiting_for(PatientRef("p1", "urn:isthmus:fhir:Patient")) is None
    assert waiting_for(None) is None


def test_the_patient_a_stored_control_id_registers() -> None:
    assert patient_reference("Patient/p1") == "Patient/p1"
    assert patient_reference("Patient/p1/_history/0123456789abcdef") == "Patient/p1"
    assert patient_reference("Patient/p1#0123456789abcdef") is None  # rejected copy
    assert patient_reference("ChargeItem/p1") is None
    assert patient_reference("Patient/") is None
