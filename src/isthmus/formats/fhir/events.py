"""FHIR R4 finance resources -> canonical events (pure mapping, channel ``fhir``).

- Patient -> PatientRegistered: the identifier typed MR (v2-0203), else the first one, is
  the MRN and its ``system`` the assigning authority; with no identifier, the logical id
  under the authority ``urn:isthmus:fhir:Patient``.
- Encounter -> EncounterStarted (visit number = first identifier value, else the id).
- Account -> BillingAccountOpened (account number = first identifier value, else the id:
  `account_number`, the PID-18 equivalent).
- ChargeItem -> Charge: ``priceOverride`` (times ``factorOverride`` when given) is the
  extended amount; a negative amount becomes a credit (CD) of the positive amount;
  ``costCenter`` (else ``performingOrganization``) is the department, the performing
  organization the facility, ``occurrence[x]`` (else ``enteredDate``) the service date,
  ``account[0]`` the billing account: ``Account/<id>`` is that Account's `account_number`
  (``accounts`` resolves it; a logical id is not a business number), a reference by
  ``identifier`` its value.
- Claim -> ClaimSubmitted when it has a total (or item nets) in one currency.
- ExplanationOfBenefit, ClaimResponse -> ClaimRemitted (+ ProviderAdjusted for a payment
  adjustment), PaymentReconciliation -> RemittancePaid: see ``formats.fhir.remittance``.
- Everything else (Coverage, Invoice, PaymentNotice) is kept without events.

Subjects are references to Patients; ``lookup`` turns ``Patient/id`` into the patient's
PatientRef (the caller knows the Bundle and the store). Unresolvable subjects give no event.
``claims`` turns ``Claim/id`` into that Claim, when known, for the remittances.
``accounts`` turns ``Account/id`` into that Account's account number (the caller knows the
Bundle and the store; `formats.fhir.identity.pending_account` while it has not arrived).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Final

from isthmus.formats.fhir.adjudication import Claim, ClaimResponse, ExplanationOfBenefit
from isthmus.formats.fhir.datatypes import Identifier, Reference
from isthmus.formats.fhir.finance_types import FinanceResource
from isthmus.formats.fhir.remittance import ClaimLookup, claim_remitted, remittance_paid
from isthmus.formats.fhir.resources import (
    Account,
    ChargeItem,
    Encounter,
    Patient,
    PaymentReconciliation,
)
from isthmus.model.events import (
    BillingAccountOpened,
    Charge,
    ClaimSubmitted,
    EncounterStarted,
    Event,
    PatientRef,
    PatientRegistered,
)
from isthmus.model.money import Money

CHANNEL: Final = "fhir"
DEFAULT_AUTHORITY: Final = "urn:isthmus:fhir:Patient"
Lookup = Callable[[str], PatientRef | None]
AccountLookup = Callable[[str], str | None]
_ACCOUNT: Final = "Account"
_HISTORY: Final = "/_history/"


def control_id(resource_type: str, resource_id: str) -> str:
    """The inbox control id of a FHIR resource: "<resourceType>/<id>"."""
    return f"{resource_type}/{resource_id}"


def _mr(identifiers: tuple[Identifier, ...]) -> Identifier | None:
    for i in identifiers:
        if i.value and i.type is not None and any(c.code == "MR" for c in i.type.coding):
            return i
    return next((i for i in identifiers if i.value), None)


def patient_ref(p: Patient) -> PatientRef | None:
    """The patient a Patient resource names: the MR-typed identifier (else the first one with
    a value) under its system, else the logical id under `DEFAULT_AUTHORITY`; None when it has
    neither."""
    ident = _mr(p.identifier)
    if ident is not None and ident.value:
        return PatientRef(ident.value, ident.system or DEFAULT_AUTHORITY)
    return PatientRef(p.id, DEFAULT_AUTHORITY) if p.id else None


def _ref_id(ref: Reference | None) -> str:
    if ref is None or not ref.reference:
        return ref.display or "" if ref is not None else ""
    return ref.reference.rsplit("/", 1)[-1]


def _first_value(identifiers: tuple[Identifier, ...], fallback: str | None) -> str:
    return next((i.value for i in identifiers if i.value), None) or fallback or ""


def account_number(a: Account) -> str:
    """The number an Account registers its billing account under (BillingAccountOpened),
    and a ChargeItem naming it posts to: its first identifier value, else its id."""
    return _first_value(a.identifier, a.id)


def account_target(ref: Reference) -> str | None:
    """``Account/<id>`` for a literal reference to an Account (relative, absolute or
    versioned), else None."""
    parts = (ref.reference or "").split(_HISTORY, 1)[0].rstrip("/").rsplit("/", 2)
    if len(parts) >= 2 and parts[-2] == _ACCOUNT and parts[-1]:
        return f"{_ACCOUNT}/{parts[-1]}"
    return None


def _own_id(reference: str) -> str:
    return reference.rsplit("/", 1)[-1]


def _account_of(ref: Reference, accounts: AccountLookup) -> str:
    target = account_target(ref)
    if target is not None:
        return accounts(target) or ""
    if not ref.reference and ref.identifier is not None and ref.identifier.value:
        return ref.identifier.value  # a logical reference: the business number itself
    return _ref_id(ref)


def _subject(ref: Reference | None, lookup: Lookup) -> PatientRef | None:
    if ref is None or not ref.reference or not ref.reference.startswith("Patient/"):
        return None
    return lookup(ref.reference)


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            return datetime.fromisoformat(text[:10]).replace(tzinfo=UTC)
        except ValueError:
            return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _charge(c: ChargeItem, lookup: Lookup, accounts: AccountLookup) -> Charge | None:
    patient = _subject(c.subject, lookup)
    price = c.price_override
    if patient is None or price is None or price.value is None or not price.currency:
        return None
    when = (
        c.occurrence_date_time
        or (c.occurrence_period.start if c.occurrence_period else None)
        or c.entered_date
    )
    day = _day(when)
    if day is None:
        return None
    amount = price.value * (c.factor_override if c.factor_override is not None else 1)
    qty = c.quantity.value if c.quantity is not None and c.quantity.value is not None else 1
    code = c.code.code_in() if c.code is not None else None
    return Charge(
        patient=patient,
        transaction_id=f"ChargeItem/{c.id}",
        transaction_type="CD" if amount < 0 else "CG",
        quantity=int(qty),
        amount=Money(abs(amount), price.currency.upper()),
        charge_code=code or "",
        department=_ref_id(c.cost_center or c.performing_organization),
        facility=_ref_id(c.performing_organization),
        service_date=day,
        account_number=_account_of(c.account[0], accounts) if c.account else "",
        visit_number=_ref_id(c.context),
    )


def _claim(c: Claim) -> ClaimSubmitted | None:
    total, currency = (c.total.value, c.total.currency) if c.total is not None else (None, None)
    if total is None:
        nets = [i.net for i in c.item if i.net is not None and i.net.value is not None]
        if not nets or len({n.currency for n in nets}) != 1:
            return None
        total, currency = sum((n.value or Decimal(0) for n in nets), Decimal(0)), nets[0].currency
    ident = _first_value(c.identifier, c.id)
    if not ident:
        return None
    kind = c.type.code_in() if c.type is not None else None
    served = c.billable_period.start if c.billable_period is not None else c.created
    return ClaimSubmitted(
        patient_control_number=ident,
        payer_id=_ref_id(c.insurer),
        payer_name=c.insurer.display or "" if c.insurer is not None else "",
        billing_npi=_ref_id(c.provider),
        total_charge=total,
        currency=(currency or "USD").upper(),
        kind=kind or "",
        service_date=_day(served),
    )


def _no_claim(_: str) -> Claim | None:
    return None


def events_of(
    resource: FinanceResource,
    lookup: Lookup,
    claims: ClaimLookup = _no_claim,
    accounts: AccountLookup = _own_id,
) -> list[tuple[str, Event]]:
    """(partition key, event) pairs for one accepted resource, in order."""
    if isinstance(resource, Patient):
        ref = patient_ref(resource)
        if ref is None:
            return []
        name = resource.name[0] if resource.name else None
        return [
            (
                ref.key,
                PatientRegistered(
                    patient=ref,
                    family_name=name.family or "" if name else "",
                    given_name=" ".join(name.given) if name else "",
                    birth_date=(resource.birth_date or "").replace("-", ""),
                    sex={"male": "M", "female": "F", "other": "O", "unknown": "U"}.get(
                        resource.gender or "", ""
                    ),
                ),
            )
        ]
    if isinstance(resource, Encounter):
        patient = _subject(resource.subject, lookup)
        if patient is None:
            return []
        return [
            (
                patient.key,
                EncounterStarted(
                    patient=patient,
                    visit_number=_first_value(resource.identifier, resource.id),
                    patient_class=resource.class_.code or "" if resource.class_ else "",
                    facility=_ref_id(resource.service_provider),
                    started_at=_instant(resource.period.start if resource.period else None),
                ),
            )
        ]
    if isinstance(resource, Account):
        patient = next((p for s in resource.subject if (p := _subject(s, lookup))), None)
        if patient is None:
            return []
        return [
            (
                patient.key,
                BillingAccountOpened(
                    patient=patient,
                    account_number=account_number(resource),
                    facility=_ref_id(resource.owner),
                ),
            )
        ]
    if isinstance(resource, ChargeItem):
        charge = _charge(resource, lookup, accounts)
        return [(charge.patient.key, charge)] if charge is not None else []
    if isinstance(resource, Claim):
        claim = _claim(resource)
        return [(f"remit|{claim.patient_control_number}", claim)] if claim is not None else []
    if isinstance(resource, ExplanationOfBenefit | ClaimResponse):
        return claim_remitted(resource, lookup, claims)
    if isinstance(resource, PaymentReconciliation):
        return remittance_paid(resource)
    return []


__all__ = [
    "CHANNEL",
    "DEFAULT_AUTHORITY",
    "AccountLookup",
    "Lookup",
    "account_number",
    "account_target",
    "control_id",
    "events_of",
    "patient_ref",
]
