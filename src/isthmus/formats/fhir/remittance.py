"""FHIR R4 payer answers -> the canonical remittance events of the X12 835 path (pure).

A payer that speaks FHIR says what an 835 says in three resources; each becomes the event
the 835 reader produces, so matching, posting, denials and unapplied cash stay in one flow
(`flows.remittance`). FHIR R4 4.0.1 element paths:

ExplanationOfBenefit (13.10) and ClaimResponse (13.6) -> ``ClaimRemitted`` (one CLP):

- ``patient_control_number`` (CLP01): the patient control number of the Claim it answers
  (``ExplanationOfBenefit.claim``, ``ClaimResponse.request``) exactly as a FHIR Claim is
  registered (``Claim.identifier[0].value``, else ``Claim.id``; ``formats.fhir.events``),
  when the Claim is in the Bundle or the store; else the reference's ``identifier.value``
  or the last segment of its literal reference; else the resource's own identifier.
- ``patient``: ``.patient``, so a payment whose claim has no billing account still lands
  on the patient's A/R (only the account token reaches the journal).
- ``payer_id`` / ``payer_name`` (N1*PR): ``.insurer`` (reference id, else
  ``identifier.value``, else ``display``) and ``.insurer.display``.
- ``trace_number`` (TRN02): ``.payment.identifier.value``; ``payment_date`` (BPR16):
  ``.payment.date``, else ``.created``.
- ``charge`` (CLP03): ``.total`` of category ``submitted``, else the sum of ``item.net``.
- ``paid`` (CLP04): ``.payment.amount`` + ``.payment.adjustment``. R4 defines the amount
  as "benefits payable less any payment adjustment"; the adjustment (e.g. a prior
  overpayment recovered, ``payment.adjustmentReason``) becomes a ``ProviderAdjusted`` like
  an 835 PLB, so the cash posted is ``payment.amount``.
- ``adjustments`` (CAS), from ``item.adjudication`` (``.total`` when there are no items),
  by ``category`` code (CodeSystem ``adjudication`` and the CMS Blue Button codes Synthea
  writes): ``copay`` -> PR-3; ``deductible``, ``line_bene_ptb_ddctbl_amt`` -> PR-1;
  ``line_coinsrnc_amt`` -> PR-2; ``submitted`` (``line_sbmtd_chrg_amt``) minus ``eligible``
  (``line_alowd_chrg_amt``), when positive -> CO-45 (charge exceeds the fee schedule).
  ``benefit`` and the provider payment are the payment itself, not an adjustment.
- ``remarks``: ``item.adjudication.reason`` codes (CodeSystem ``adjudication-reason`` or
  X12 CARC) and ``ClaimResponse.error.code`` codes.
- ``claim_status`` (CLP02): ``4`` (denied) when ``.outcome`` is ``error``, or nothing is
  paid on a charge and a reason is given; ``1`` (processed) otherwise. A denial goes to the
  ``denials`` work queue with these codes and posts nothing.
- ``facility``: the Claim's ``provider`` when it is an Organization (Synthea's EOB
  provider is a Practitioner), else ``.provider`` (EOB) / ``.requestor`` (ClaimResponse)
  when it is one; mapped to the ERP company by ``[mappings.facility_company]``.

A ClaimResponse with ``outcome`` complete or partial and no ``payment.amount`` (adjudicated,
not paid yet) -> ``ClaimStatusReported`` (report ``ClaimResponse``, status A2:20, 277CA
005010X214 "accepted for processing"), so the claim's life moves to accepted
(`flows.claim_acks`); nothing posts.

No event (kept, nothing posts) for: ``use`` preauthorization or predetermination (no
money moves); ``outcome`` queued; ``status`` other than active; an EOB with no
``payment.amount`` that is not a denial (not paid yet); an EOB that names its
ClaimResponse (``ExplanationOfBenefit.claimResponse``: the member-facing copy of an
adjudication the ClaimResponse already posts); an amount with no ISO 4217 currency.

PaymentReconciliation (13.9) -> ``RemittancePaid`` (835 BPR/TRN), what a bank deposit is
matched on: ``paymentIdentifier.value`` is the trace (TRN02),
``paymentAmount`` the amount, ``paymentDate`` the date, ``paymentIssuer`` the payer.
It posts nothing: each claim's cash posts from its EOB or
ClaimResponse. ``detail.amount`` is each claim's share, kept in the stored resource.

Amounts are rounded half up to the currency's minor unit here, at the boundary: a payment
is made in whole cents, and Synthea writes binary floating-point products
(140.52 x 0.8 = ``112.41600000000001``) that the ledger would otherwise refuse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from isthmus.formats.fhir.adjudication import (
    Adjudication,
    Claim,
    ClaimResponse,
    ExplanationOfBenefit,
    Total,
)
from isthmus.formats.fhir.currency import MINOR_UNITS
from isthmus.formats.fhir.datatypes import CodeableConcept, Money, Reference
from isthmus.formats.fhir.resources import PaymentReconciliation
from isthmus.model.events import (
    ClaimRemitted,
    ClaimStatusEntry,
    ClaimStatusReported,
    Event,
    PatientRef,
    ProviderAdjusted,
    RemitAdjustment,
    RemittancePaid,
)

ClaimLookup = Callable[[str], Claim | None]
PatientLookup = Callable[[str], PatientRef | None]

#: adjudication category code (last path segment for URL codes) -> (CAS group, CARC).
ADJUSTMENT_CATEGORIES: Final[dict[str, tuple[str, str]]] = {
    "copay": ("PR", "3"),
    "deductible": ("PR", "1"),
    "line_bene_ptb_ddctbl_amt": ("PR", "1"),
    "line_coinsrnc_amt": ("PR", "2"),
}
SUBMITTED: Final = frozenset({"submitted", "line_sbmtd_chrg_amt"})
ALLOWED: Final = frozenset({"eligible", "line_alowd_chrg_amt"})
CONTRACTUAL: Final = ("CO", "45")
NO_MONEY_MOVES: Final = frozenset({"preauthorization", "predetermination"})
PROCESSED: Final = "1"
CLAIM_RESPONSE: Final = "ClaimResponse"  # ClaimStatusReported.report of a FHIR answer
DENIED: Final = "4"


def cents(value: Decimal, currency: str) -> Decimal:
    """``value`` rounded half up to the currency's minor unit (as given when it has none)."""
    minor = MINOR_UNITS.get(currency, 2)
    if minor is None:
        return value
    return value.quantize(Decimal(1).scaleb(-minor), rounding=ROUND_HALF_UP)


def _code(concept: CodeableConcept | None) -> str:
    code = concept.code_in() if concept is not None else None
    return (code or "").rstrip("/").rsplit("/", 1)[-1]


def _ref_id(ref: Reference | None) -> str:
    """The id of a literal reference (``Type/id``, a URL), else its identifier value."""
    if ref is None:
        return ""
    if ref.reference and not ref.reference.startswith("#"):
        return ref.reference.rstrip("/").rsplit("/", 1)[-1]
    return ref.identifier.value or "" if ref.identifier is not None else ""


def _org(ref: Reference | None) -> str:
    if ref is None or not ref.reference or not ref.reference.startswith("Organization/"):
        return ""
    return _ref_id(ref)


def _party(ref: Reference | None) -> tuple[str, str]:
    """(id, name) of a payer or payee reference."""
    if ref is None:
        return "", ""
    return _ref_id(ref) or ref.display or "", ref.display or ""


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text[:10]) if text else None
    except ValueError:
        return None


def _money(m: Money | None, currency: str) -> Decimal | None:
    """The amount of ``m`` when it is a finite amount in ``currency``."""
    if m is None or m.value is None or not m.value.is_finite():
        return None
    return m.value if (m.currency or currency).upper() == currency else None


def _adjustments(
    adjudications: Iterable[Sequence[Adjudication]], currency: str
) -> tuple[RemitAdjustment, ...]:
    """CAS-like (group, CARC, amount) sums over the adjudications of each item."""
    totals: dict[tuple[str, str], Decimal] = {}
    for item in adjudications:
        submitted = allowed = None
        for a in item:
            code, amount = _code(a.category), _money(a.amount, currency)
            if amount is None:
                continue
            if code in SUBMITTED:
                submitted = amount
            elif code in ALLOWED:
                allowed = amount
            elif code in ADJUSTMENT_CATEGORIES:
                k = ADJUSTMENT_CATEGORIES[code]
                totals[k] = totals.get(k, Decimal(0)) + amount
        if submitted is not None and allowed is not None and submitted > allowed:
            totals[CONTRACTUAL] = totals.get(CONTRACTUAL, Decimal(0)) + submitted - allowed
    return tuple(
        RemitAdjustment(g, r, cents(v, currency))
        for (g, r), v in totals.items()
        if cents(v, currency) != 0
    )


def _submitted(totals: Sequence[Total], nets: Iterable[Money | None], currency: str) -> Decimal:
    for t in totals:
        if _code(t.category) in SUBMITTED and (v := _money(t.amount, currency)) is not None:
            return v
    return sum((v for n in nets if (v := _money(n, currency)) is not None), Decimal(0))


def _claim_number(ref: Reference | None, claims: ClaimLookup) -> str:
    """The patient control number of the Claim ``ref`` points to (see the module doc)."""
    if ref is None:
        return ""
    claim = claims(ref.reference) if ref.reference else None
    if claim is not None:
        return next((i.value for i in claim.identifier if i.value), None) or claim.id or ""
    return _ref_id(ref)


RemitSource = ExplanationOfBenefit | ClaimResponse


def claim_remitted(
    r: RemitSource, patients: PatientLookup, claims: ClaimLookup
) -> list[tuple[str, Event]]:
    """(partition key, event) pairs for one EOB or ClaimResponse; [] when nothing moves."""
    if (
        r.use in NO_MONEY_MOVES
        or r.outcome == "queued"
        or r.status not in (None, "active")
        or (isinstance(r, ExplanationOfBenefit) and r.claim_response is not None)
    ):
        return []
    pay = r.payment
    amount = pay.amount if pay is not None else None
    currency = (
        (amount.currency if amount is not None else None)
        or next(
            (t.amount.currency for t in r.total if t.amount is not None and t.amount.currency), None
        )
        or ("USD" if r.outcome == "error" else "")
    ).upper()  # a denial posts nothing
    claim_ref = r.claim if isinstance(r, ExplanationOfBenefit) else r.request
    pcn = (
        _claim_number(claim_ref, claims)
        or next((i.value for i in r.identifier if i.value), None)
        or r.id
        or ""
    )
    if currency not in MINOR_UNITS:
        return _accepted(r, pcn) if amount is None else []
    payment = _money(amount, currency)
    adjustment = _money(pay.adjustment, currency) if pay is not None else None
    charge = _submitted(
        r.total, (i.net for i in r.item) if isinstance(r, ExplanationOfBenefit) else (), currency
    )
    reasons = [c for i in r.item for a in i.adjudication if (c := _code(a.reason))]
    if isinstance(r, ClaimResponse):
        reasons += [c for e in r.error if (c := _code(e.code))]
    paid = cents((payment or Decimal(0)) + (adjustment or Decimal(0)), currency)
    denied = r.outcome == "error" or (paid == 0 and charge > 0 and bool(reasons))
    if payment is None and not denied:
        return _accepted(r, pcn)
    items: list[Sequence[Adjudication]] = [i.adjudication for i in r.item] or [
        [Adjudication(category=t.category, amount=t.amount) for t in r.total]
    ]
    adjustments = () if denied else _adjustments(items, currency)
    payer_id, payer_name = _party(r.insurer)
    claim = claims(claim_ref.reference) if claim_ref is not None and claim_ref.reference else None
    own = r.provider if isinstance(r, ExplanationOfBenefit) else r.requestor
    trace = pay.identifier.value or "" if pay is not None and pay.identifier else ""
    when = _day(pay.date if pay is not None else None) or _day(r.created)
    key = f"remit|{pcn}"
    out: list[tuple[str, Event]] = [
        (
            key,
            ClaimRemitted(
                payer_id=payer_id,
                payer_name=payer_name,
                payee_npi="",
                payee_tin="",
                trace_number=trace,
                payment_method="",
                payment_date=when,
                patient_control_number=pcn,
                claim_status=DENIED if denied else PROCESSED,
                charge=cents(charge, currency),
                paid=cents(Decimal(0), currency) if denied else paid,
                patient_responsibility=cents(
                    sum((a.amount for a in adjustments if a.group == "PR"), Decimal(0)), currency
                ),
                payer_claim_control_number=next((i.value for i in r.identifier if i.value), ""),
                adjustments=adjustments,
                remarks=tuple(dict.fromkeys(reasons)),
                currency=currency,
                facility=_org(claim.provider if claim else None) or _org(own),
                patient=patients(r.patient.reference)
                if r.patient is not None
                and r.patient.reference
                and r.patient.reference.startswith("Patient/")
                else None,
            ),
        )
    ]
    if adjustment and not denied and pay is not None:
        provider = _ref_id(own) or _ref_id(claim.provider if claim else None)
        out.append(
            (
                f"remit|PLB|{provider}|{trace}",
                ProviderAdjusted(
                    payer_id=payer_id,
                    payee_npi="",
                    payee_tin="",
                    provider_id=provider,
                    trace_number=trace,
                    payment_date=when,
                    reason=_code(pay.adjustment_reason),
                    reference=pcn,
                    amount=cents(adjustment, currency),
                    currency=currency,
                ),
            )
        )
    return out


def _accepted(r: RemitSource, pcn: str) -> list[tuple[str, Event]]:
    """A ClaimResponse that adjudicated (outcome complete or partial) with nothing paid
    yet: the claim's status (issue 20, `flows.claim_acks`), 277CA-like: category A2
    (accepted into adjudication). An EOB with no payment says nothing yet."""
    if not isinstance(r, ClaimResponse) or r.outcome not in ("complete", "partial") or not pcn:
        return []
    payer_id, payer_name = _party(r.insurer)
    return [
        (
            f"remit|{pcn}",
            ClaimStatusReported(
                report=CLAIM_RESPONSE,
                payer_id=payer_id,
                payer_name=payer_name,
                trace=pcn,
                patient_control_number=pcn,
                payer_claim_control_number=next((i.value for i in r.identifier if i.value), ""),
                statuses=(ClaimStatusEntry("A2", "20", "PR", _day(r.created)),),
            ),
        )
    ]


def remittance_paid(r: PaymentReconciliation) -> list[tuple[str, Event]]:
    """The bulk payment of a PaymentReconciliation, as an 835 BPR/TRN, keyed like the 835's
    (``deposit|<trace>``, the bank deposit's key); [] when no money moves (no positive
    amount or no payment identifier, as for an 835 with no TRN02)."""
    money = r.payment_amount
    currency = (money.currency or "").upper() if money is not None else ""
    amount = _money(money, currency) if currency in MINOR_UNITS else None
    trace = (r.payment_identifier.value or "").strip() if r.payment_identifier else ""
    if amount is None or amount <= 0 or not trace or r.status not in (None, "active"):
        return []
    payer_id, payer_name = _party(r.payment_issuer)
    return [
        (
            f"deposit|{trace.upper()}",
            RemittancePaid(
                payer_id=payer_id,
                payer_name=payer_name,
                trace_number=trace,
                payment_method="",
                payment_date=_day(r.payment_date),
                amount=cents(amount, currency),
                currency=currency,
            ),
        )
    ]


__all__ = [
    "ADJUSTMENT_CATEGORIES",
    "ClaimLookup",
    "PatientLookup",
    "cents",
    "claim_remitted",
    "remittance_paid",
]
