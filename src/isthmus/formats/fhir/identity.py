"""FHIR identity: the business key of a FHIR-derived posting, and references not yet known.

Business key (README, "Identity and business keys"). A FHIR resource version is one fact,
whatever brought it (POST, PUT, a transaction or batch Bundle, a file in the drop folder):
``fhir|<type>/<logical id>|<version>``, where the version is ``Resource.meta.versionId``
(FHIR R4 2.26.0: the version a server gives each change) and, for a resource without
one, ``sha256:<16 hex>`` of its content without ``meta`` (canonical JSON, keys sorted),
so the same content under the same id is the same version however it was serialized.
A resource whose mapping gives several events (an ExplanationOfBenefit: the claim payment
and its payment adjustment) keys the n-th extra one ``…|<n>``.

Late references. A posting names its patient by reference (``ChargeItem.subject``,
``ExplanationOfBenefit.patient``, ``Encounter.subject``, ``Account.subject``); when the
Patient is neither in the Bundle nor stored yet, its MRN is unknown, so the account token
cannot be derived. The event then carries `pending(reference)`: a PatientRef under the
authority ``urn:isthmus:fhir:reference`` whose "MRN" is the reference itself
(``Patient/<id>``, a logical id, not PHI). `flows.references` holds such events until the
Patient arrives and links them to the patient it names.

A ChargeItem names its billing account the same way (``ChargeItem.account``:
``Account/<logical id>``), but the account number the hub knows is the Account's business
identifier (`formats.fhir.events.account_number`, the PID-18 equivalent), which a real
server's server-assigned id is not. An Account neither in the Bundle nor stored gives the
account number `pending_account(reference)` (``urn:isthmus:fhir:reference|Account/<id>``,
no PHI), held by `flows.references` until the Account registers its number.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

import msgspec

from isthmus.model.events import PatientRef

PENDING_AUTHORITY: Final = "urn:isthmus:fhir:reference"
_PATIENT: Final = "Patient/"
_ACCOUNT: Final = "Account/"
_HISTORY: Final = "/_history/"
_canonical = msgspec.json.Encoder(order="sorted")
_any = msgspec.json.Decoder()


class _Meta(msgspec.Struct, rename="camel"):
    version_id: str | None = None


class _Versioned(msgspec.Struct):
    meta: _Meta | None = None


_versioned = msgspec.json.Decoder(_Versioned)


def version_of(raw: bytes) -> str:
    """The resource's version: ``meta.versionId``, else ``sha256:`` + 16 hex of its
    content without ``meta`` (see the module doc). `raw` is one JSON resource."""
    try:
        meta = _versioned.decode(raw).meta
    except msgspec.MsgspecError:
        meta = None
    if meta is not None and meta.version_id:
        return meta.version_id
    try:
        doc: Any = _any.decode(raw)
    except msgspec.MsgspecError:
        return "sha256:" + hashlib.sha256(raw).hexdigest()[:16]
    if isinstance(doc, dict):
        doc = {k: v for k, v in doc.items() if k != "meta"}
    return "sha256:" + hashlib.sha256(_canonical.encode(doc)).hexdigest()[:16]


def business_key(resource_type: str, resource_id: str, version: str, index: int = 0) -> str:
    """``fhir|<type>/<id>|<version>``, ``…|<index>`` for a resource's extra events."""
    key = f"fhir|{resource_type}/{resource_id}|{version}"
    return f"{key}|{index}" if index else key


def pending(reference: str) -> PatientRef:
    """The patient of a posting whose Patient (``Patient/<id>``) is not known yet."""
    return PatientRef(reference, PENDING_AUTHORITY)


def waiting_for(patient: PatientRef | None) -> str | None:
    """The reference (``Patient/<id>``) a `pending` patient waits for, else None."""
    if patient is None or patient.authority != PENDING_AUTHORITY:
        return None
    return patient.mrn


def _reference(control_id: str, prefix: str) -> str | None:
    if not control_id.startswith(prefix):
        return None
    ref = control_id.split(_HISTORY, 1)[0]
    return ref if len(ref) > len(prefix) and "#" not in ref else None


def patient_reference(control_id: str) -> str | None:
    """``Patient/<id>`` for the inbox control id of a stored Patient (``Patient/<id>``, or
    ``Patient/<id>/_history/<digest16>`` for an update), else None."""
    return _reference(control_id, _PATIENT)


def account_reference(control_id: str) -> str | None:
    """``Account/<id>`` for the inbox control id of a stored Account (as
    `patient_reference`), else None."""
    return _reference(control_id, _ACCOUNT)


def pending_account(reference: str) -> str:
    """The account number of a posting whose Account (``Account/<id>``) is not known yet."""
    return f"{PENDING_AUTHORITY}|{reference}"


def account_waiting_for(account_number: str) -> str | None:
    """The reference (``Account/<id>``) a `pending_account` number waits for, else None."""
    authority, sep, ref = account_number.partition("|")
    return ref if sep and authority == PENDING_AUTHORITY and ref.startswith(_ACCOUNT) else None


__all__ = [
    "PENDING_AUTHORITY",
    "account_reference",
    "account_waiting_for",
    "business_key",
    "patient_reference",
    "pending",
    "pending_account",
    "version_of",
    "waiting_for",
]
