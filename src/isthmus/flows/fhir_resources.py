"""The FHIR resources already in the inbox, read back: a resource's stored or current
version, what a reference stands for (a Patient, an Account's number, a Claim), the
FHIR R4 search of `GET /fhir/<type>`, and a transaction's GET entries.

`FhirResources` is what `flows.fhir_intake.FhirIntake` resolves references with (the
Bundle first: `Local`, then the store) and what the FHIR API (`api.fhir`) reads through.
A reference to a Patient or Account that has not arrived gives the `pending` value the
worker holds a posting on (`flows.references`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from isthmus.flows.fhir_ids import json_decoder
from isthmus.formats.fhir import (
    Account,
    Claim,
    ExplanationOfBenefit,
    FhirError,
    FinanceResource,
    Patient,
    decode_resource,
    operation_outcome,
)
from isthmus.formats.fhir.events import CHANNEL, account_number, patient_ref
from isthmus.formats.fhir.identity import pending, pending_account
from isthmus.model.events import PatientRef
from isthmus.store.ports import MessageQuery, Store, StoredMessage

SEARCHABLE: Final = frozenset({"Account", "ExplanationOfBenefit"})
SCAN_LIMIT: Final = 1_000_000


@dataclass
class Local:
    """What a Bundle itself says about the references its entries make."""

    patients: dict[str, PatientRef] = field(default_factory=dict)
    claims: dict[str, Claim] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)  # Account/<id> -> its number


def _token_match(token: str, system: str | None, value: str | None) -> bool:
    """FHIR R4 token search (3.1.1.5.6) on one Identifier."""
    if "|" not in token:
        return value == token
    sys, _, val = token.partition("|")
    return value == val and (system or "") == sys


def _patients_of(res: FinanceResource) -> set[str]:
    if isinstance(res, Account):
        return {s.reference for s in res.subject if s.reference}
    if isinstance(res, ExplanationOfBenefit) and res.patient is not None:
        return {res.patient.reference} if res.patient.reference else set()
    return set()


class FhirResources:
    """Reads the FHIR resources stored on channel ``fhir`` (module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def stored(self, rtype: str, rid: str) -> StoredMessage | None:
        m = self.store.message_by_control_id(CHANNEL, f"{rtype}/{rid}")
        return m if m is not None and m.status == "accepted" else None

    def patient_of(self, reference: str, local: Local) -> PatientRef | None:
        if reference in local.patients:
            return local.patients[reference]
        rtype, _, rid = reference.partition("/")
        m = self.stored(rtype, rid)
        if m is None:  # not known yet: the posting waits for it (`flows.references`)
            return pending(reference) if rid else None
        try:
            _, p = decode_resource(m.raw)
        except FhirError:
            return None
        return patient_ref(p) if isinstance(p, Patient) else None

    def current(self, rtype: str, rid: str) -> StoredMessage | None:
        """The newest accepted version of a resource (``<type>/<id>`` or an update under
        ``<type>/<id>/_history/<digest16>``), as the FHIR API reads it back."""
        found = self.store.message_page(MessageQuery(history_of=f"{rtype}/{rid}"), limit=8)
        return next((m for m in found if m.channel == CHANNEL and m.status == "accepted"), None)

    def account_of(self, reference: str, local: Local) -> str | None:
        """The account number ``Account/<id>`` stands for: the Account's business
        identifier (`account_number`, the rule its BillingAccountOpened follows), from the
        Bundle, else its current stored version; `pending_account` while it has not
        arrived (the worker holds the posting: `flows.references`)."""
        if reference in local.accounts:
            return local.accounts[reference]
        _, _, rid = reference.partition("/")
        m = self.current("Account", rid) if rid else None
        if m is None:
            return pending_account(reference) if rid else None
        try:
            _, a = decode_resource(m.raw)
        except FhirError:
            return None
        return account_number(a) if isinstance(a, Account) else None

    def claim_of(self, reference: str, local: Local) -> Claim | None:
        if reference in local.claims:
            return local.claims[reference]
        rtype, _, rid = reference.partition("/")
        m = self.stored(rtype, rid) if rtype == "Claim" and rid else None
        try:
            c = decode_resource(m.raw)[1] if m is not None else None
        except FhirError:
            return None
        return c if isinstance(c, Claim) else None

    def search(
        self,
        rtype: str,
        *,
        identifier: str | None = None,
        patient: str | None = None,
        count: int = 100,
    ) -> list[bytes]:
        """The stored resources of ``rtype`` (SEARCHABLE) matching FHIR R4 token search
        ``identifier`` (``system|value``, ``|value`` for no system, or ``value``) and
        reference search ``patient`` (``Patient/id`` or ``id``: Account.subject,
        ExplanationOfBenefit.patient), oldest first, at most ``count``.

        A scan of the accepted inbox rows, not an index: fine for an embedded site, to be
        replaced by a store index before large volumes (see the README)."""
        out: list[bytes] = []
        want_patient = (
            None if patient is None else (patient if "/" in patient else f"Patient/{patient}")
        )
        for m in self.store.messages(status="accepted", limit=SCAN_LIMIT):
            if m.channel != CHANNEL or m.message_type != rtype or "/_history/" in m.control_id:
                continue
            try:
                _, res = decode_resource(m.raw)
            except FhirError:
                continue
            if identifier is not None and not any(
                _token_match(identifier, i.system, i.value) for i in getattr(res, "identifier", ())
            ):
                continue
            if want_patient is not None and want_patient not in _patients_of(res):
                continue
            out.append(m.raw)
            if len(out) >= count:
                break
        return out

    def get_entry(self, target: str | None) -> dict[str, Any]:
        rtype, _, rid = (target or "").partition("/")
        m = self.stored(rtype, rid) if rid else None
        if m is None:
            return {
                "response": {
                    "status": "404 Not Found",
                    "outcome": operation_outcome(
                        [FhirError("not-found", f"{target} is not known")]
                    ),
                }
            }
        return {"resource": json_decoder.decode(m.raw), "response": {"status": "200 OK"}}
