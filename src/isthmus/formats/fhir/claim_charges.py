"""FHIR Claim items -> charges, for a site whose only charge feed is its Claims (pure).

Synthea, and many payer-facing FHIR feeds, send Claims and ExplanationOfBenefits but no
ChargeItems and no HL7 DFT. Without charges, an EOB's payment has nothing to be applied to
(`flows.remittance`: unapplied cash). A site that says so (`[channels.fhir] charges_from =
"claim"`) takes each Claim item as the charge it bills, so the EOB pays down what was
charged. FHIR R4 4.0.1 Claim (13.5) element paths:

- amount: ``item.net``, else ``item.unitPrice`` x ``item.quantity`` x ``item.factor``; an
  item with neither takes what ``Claim.total`` leaves after the other items, when it is the
  only such item (Synthea's encounter item: ``total`` 265.52, the vaccine item's ``net``
  140.52, the encounter 125.00); a negative amount is a credit (CD). Rounded half up to
  the currency's minor unit, as the payer side is (`formats.fhir.remittance.cents`).
- charge code: ``item.productOrService`` (its first coding), mapped by
  ``[mappings.charge_codes]`` like any charge code.
- facility and department: ``Claim.provider`` (the billing Organization; a ChargeItem's
  ``performingOrganization`` plays the same part), mapped by ``[mappings.facility_company]``
  and ``[mappings.department_cost_center]``.
- service date: ``item.servicedDate`` / ``servicedPeriod.start``, else
  ``Claim.billablePeriod.start``, else ``Claim.created``.
- visit: ``item.encounter[0]``; transaction id ``Claim/<id>/item/<sequence>``.

Only ``use`` claim (not a preauthorization or predetermination) with ``status`` active
bills anything. The business key of each charge is `item_key` (README, "Identity and
business keys"): the claim and the item's sequence, not the resource version, so a Claim
sent again in another Bundle or file charges nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Final

from isthmus.formats.fhir.adjudication import Claim, ClaimItem
from isthmus.formats.fhir.currency import MINOR_UNITS
from isthmus.formats.fhir.datatypes import Money as FhirMoney
from isthmus.formats.fhir.datatypes import Reference
from isthmus.formats.fhir.remittance import cents
from isthmus.model.events import Charge, PatientRef
from isthmus.model.money import Money

CLAIM: Final = "claim"  # [channels.fhir] charges_from: Claim items are the charges
CHARGE_ITEM: Final = "chargeitem"  # the default: ChargeItems are (a Claim only registers)
SOURCES: Final = (CHARGE_ITEM, CLAIM)
Lookup = Callable[[str], PatientRef | None]


def item_key(claim_id: str, sequence: int) -> str:
    """The business key of the charge of one Claim item: ``fhir|Claim/<id>|item/<n>``."""
    return f"fhir|Claim/{claim_id}|item/{sequence}"


def _ref_id(ref: Reference | None) -> str:
    if ref is None or not ref.reference:
        return ""
    return ref.reference.rstrip("/").rsplit("/", 1)[-1]


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text[:10]) if text else None
    except ValueError:
        return None


def _amount(item: ClaimItem) -> FhirMoney | None:
    if item.net is not None and item.net.value is not None:
        return item.net
    price = item.unit_price
    if price is None or price.value is None:
        return None
    qty = item.quantity.value if item.quantity is not None and item.quantity.value else 1
    return FhirMoney(value=price.value * qty * (item.factor or 1), currency=price.currency)


def _amounts(claim: Claim) -> list[tuple[ClaimItem, Decimal, str]]:
    """Each item with its amount and currency (see the module doc)."""
    given = [(i, _amount(i)) for i in claim.item]
    known = [(i, m) for i, m in given if m is not None]
    currencies = {
        (m.currency or (claim.total.currency if claim.total else None) or "").upper()
        for _, m in known
    }
    if claim.total is not None and claim.total.currency:
        currencies.add(claim.total.currency.upper())
    if len(currencies) != 1:
        return []
    [currency] = currencies
    out = [(i, m.value or Decimal(0), currency) for i, m in known]
    rest = [i for i, m in given if m is None]
    if len(rest) == 1 and claim.total is not None and claim.total.value is not None:
        left = claim.total.value - sum((a for _, a, _ in out), Decimal(0))
        out.append((rest[0], left, currency))
    return [(i, cents(a, c), c) for i, a, c in out if c in MINOR_UNITS and cents(a, c) != 0]


def claim_charges(claim: Claim, lookup: Lookup) -> list[tuple[int, Charge]]:
    """(item sequence, charge) for each billed item of a Claim; [] when it bills nothing
    (see the module doc) or names no known patient."""
    if claim.use not in (None, "claim") or claim.status not in (None, "active"):
        return []
    if (
        claim.patient is None
        or not claim.patient.reference
        or not claim.patient.reference.startswith("Patient/")
    ):
        return []
    patient = lookup(claim.patient.reference)
    if patient is None:
        return []
    billing = _ref_id(claim.provider)
    served = _day(claim.billable_period.start if claim.billable_period else None) or _day(
        claim.created
    )
    out: list[tuple[int, Charge]] = []
    for n, (item, amount, currency) in enumerate(_amounts(claim), start=1):
        seq = item.sequence or n
        when = (
            _day(item.serviced_date)
            or _day(item.serviced_period.start if item.serviced_period else None)
            or served
        )
        code = item.product_or_service.code_in() if item.product_or_service else None
        if when is None or not code:
            continue
        qty = item.quantity.value if item.quantity is not None and item.quantity.value else 1
        out.append(
            (
                seq,
                Charge(
                    patient=patient,
                    transaction_id=f"Claim/{claim.id}/item/{seq}",
                    transaction_type="CD" if amount < 0 else "CG",
                    quantity=int(qty),
                    amount=Money(abs(amount), currency),
                    charge_code=code,
                    department=billing,
                    facility=billing,
                    service_date=when,
                    visit_number=_ref_id(item.encounter[0]) if item.encounter else "",
                ),
            )
        )
    return out


__all__ = ["CHARGE_ITEM", "CLAIM", "SOURCES", "claim_charges", "item_key"]
