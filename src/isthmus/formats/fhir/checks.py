"""Finance checks on decoded FHIR resources: plain functions returning FhirError lists.

The fast path's validation, run on every resource the hub accepts (full FHIR validation
is :mod:`isthmus.formats.fhir.validate`, on demand). Each check reads only what a posting
needs and cites the FHIR R4 4.0.1 rule it enforces:

- required elements: the R4 cardinality (1..1) of the element, e.g. ChargeItem.subject
  and ChargeItem.code (15.3), Claim.patient/provider/created (13.5); plus finance needs
  beyond R4, named as such: a Claim must carry a ``total`` or item ``net`` amounts, and
  should name its ``insurer`` (R4 0..1, so a warning).
- Money (2.24.0.14): ``currency`` from ISO 4217 (valueset-currencies), ``value`` finite
  and with no more decimals than the currency's minor unit (2 for USD, 0 for JPY).
- References (2.3.0): literal references are "Type/id" (optionally "/_history/vid"),
  "urn:uuid:..." or "urn:oid:..." inside Bundles (2.36.4.1), "#id" for contained
  resources, an absolute URL, or "Type?query" (conditional, in a transaction, 3.1.0.11.2).

Usage: ``errors = check_resource(resource)``; reject when any ``error.is_error``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Final

from isthmus.formats.fhir.adjudication import Claim, ClaimResponse, ExplanationOfBenefit, Total
from isthmus.formats.fhir.currency import MINOR_UNITS
from isthmus.formats.fhir.datatypes import Money, Reference
from isthmus.formats.fhir.outcome import FhirError
from isthmus.formats.fhir.resources import (
    Account,
    ChargeItem,
    Coverage,
    Encounter,
    Invoice,
    Patient,
    PaymentNotice,
    PaymentReconciliation,
    Resource,
)

Errors = list[FhirError]

_ID = r"[A-Za-z0-9\-.]{1,64}"
_REFERENCE: Final = re.compile(
    rf"[A-Z][A-Za-z]{{1,63}}/{_ID}(?:/_history/{_ID})?"  # relative Type/id
    r"|urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|urn:oid:[0-2](?:\.(?:0|[1-9][0-9]*))+"
    rf"|#{_ID}|#"  # contained
    r"|https?://[^\s/]+(?:/[^\s]*)?"  # absolute URL
    r"|[A-Z][A-Za-z]{1,63}\?\S+"  # conditional reference (transaction)
)


def _excess_decimals(value: Decimal, minor: int) -> bool:
    """True when a finite amount has non-zero digits beyond ``minor`` decimals."""
    text = str(value)  # the C implementation: "135.57", "-0.001", "1.5E-7"
    if "E" not in text:
        dot = text.find(".")
        return dot >= 0 and len(text) - dot - 1 > minor and len(text[dot + 1 :].rstrip("0")) > minor
    _, digits, exp = value.as_tuple()
    assert isinstance(exp, int)
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return -exp - trailing > minor


def money_ok(money: Money) -> bool:
    """The fast test of :func:`check_money`: no allocation when the amount is sound."""
    value, currency = money.value, money.currency
    if value is None or not value.is_finite():
        return False
    if currency is None:
        return True
    minor = MINOR_UNITS.get(currency, -1)
    return minor is None or (minor >= 0 and not _excess_decimals(value, minor))


def check_money(money: Money | None, where: str, out: Errors) -> None:
    """Money.currency is ISO 4217; Money.value is present, finite, within minor units."""
    if money is None or money_ok(money):
        return
    value, currency = money.value, money.currency
    minor: int | None = None
    if currency is not None:
        if currency not in MINOR_UNITS:
            out.append(
                FhirError(
                    "code-invalid",
                    f"currency {currency!r} is not an ISO 4217 code",
                    [f"{where}.currency"],
                )
            )
        else:
            minor = MINOR_UNITS[currency]
    if value is None:
        out.append(FhirError("required", "an amount needs a value", [f"{where}.value"]))
    elif not value.is_finite():
        out.append(FhirError("value", f"amount {value} is not finite", [f"{where}.value"]))
    elif minor is not None and _excess_decimals(value, minor):
        out.append(
            FhirError(
                "value",
                f"amount {value} has more than {minor} decimals for {currency}",
                [f"{where}.value"],
            )
        )


def check_reference(ref: Reference | None, where: str, out: Errors) -> None:
    """A literal reference has one of the shapes FHIR R4 allows (2.3.0)."""
    if ref is None or ref.reference is None:
        return
    if not _REFERENCE.fullmatch(ref.reference):
        out.append(
            FhirError(
                "value",
                "the reference is not Type/id, urn:uuid:, urn:oid:, #id, Type?query or a "
                "URL (R4 2.3.0; its value is not repeated: it may be anything)",
                [f"{where}.reference"],
            )
        )


def check_required(value: object, where: str, out: Errors, why: str = "") -> None:
    """An element the finance path cannot do without (R4 1..1 unless ``why`` says more)."""
    if value is None or value in ("", ()):
        out.append(FhirError("required", why or f"{where} is required", [where]))


def _require(resource: Any, root: str, names: Sequence[str], out: Errors) -> None:
    for name in names:
        value = getattr(resource, name)
        if value is None or value in ("", ()):
            check_required(None, f"{root}.{_camel(name)}", out)


def _money_at(money: Money | None, array: str, i: int, name: str, out: Errors) -> None:
    """check_money at ``array[i].name``, the path built only when there is an issue."""
    if money is not None and not money_ok(money):
        check_money(money, f"{array}[{i}].{name}", out)


def _refs(resource: Any, root: str, names: Sequence[str], out: Errors) -> None:
    for name in names:
        value = getattr(resource, name)
        if value is None or value == ():
            continue
        if isinstance(value, tuple):
            for i, ref in enumerate(value):
                if ref.reference is not None and not _REFERENCE.fullmatch(ref.reference):
                    check_reference(ref, f"{root}.{_camel(name)}[{i}]", out)
        elif value.reference is not None and not _REFERENCE.fullmatch(value.reference):
            check_reference(value, f"{root}.{_camel(name)}", out)


@functools.cache
def _camel(name: str) -> str:
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(p.title() for p in rest)


def _totals(totals: Sequence[Total], root: str, out: Errors) -> None:
    for i, total in enumerate(totals):
        if total.amount is not None and not money_ok(total.amount):
            check_money(total.amount, f"{root}.total[{i}].amount", out)


def check_patient(p: Patient) -> Errors:
    """No finance check on a Patient: the posting path reads only its identifiers (R4 8.1),
    all optional."""
    return []


def check_encounter(e: Encounter) -> Errors:
    """Encounter.status and Encounter.class are 1..1 (R4 8.11); subject, serviceProvider
    and account must be valid references."""
    out: Errors = []
    check_required(e.status, "Encounter.status", out)
    check_required(e.class_, "Encounter.class", out)
    _refs(e, "Encounter", ("subject", "service_provider", "account"), out)
    return out


def check_account(a: Account) -> Errors:
    """Account.status is 1..1 (R4 15.2) and each guarantor.party (1..1) a valid reference,
    as are subject and owner."""
    out: Errors = []
    check_required(a.status, "Account.status", out)
    _refs(a, "Account", ("subject", "owner"), out)
    for i, g in enumerate(a.guarantor):
        check_required(g.party, f"Account.guarantor[{i}].party", out)
        check_reference(g.party, f"Account.guarantor[{i}].party", out)
    return out


def check_coverage(c: Coverage) -> Errors:
    """Coverage.status, beneficiary and payor are required (R4 13.3) and must be valid
    references."""
    out: Errors = []
    check_required(c.status, "Coverage.status", out)
    check_required(c.beneficiary, "Coverage.beneficiary", out)
    check_required(c.payor, "Coverage.payor", out)
    _refs(c, "Coverage", ("beneficiary", "payor"), out)
    return out


def check_charge_item(c: ChargeItem) -> Errors:
    """ChargeItem.status, code and subject are 1..1 (R4 15.3); priceOverride must be valid
    Money and factorOverride finite; its references must be valid."""
    out: Errors = []
    check_required(c.status, "ChargeItem.status", out)
    check_required(c.code, "ChargeItem.code", out)
    check_required(c.subject, "ChargeItem.subject", out)
    check_money(c.price_override, "ChargeItem.priceOverride", out)
    if c.factor_override is not None and not c.factor_override.is_finite():
        out.append(
            FhirError("value", "factorOverride is not finite", ["ChargeItem.factorOverride"])
        )
    _refs(
        c,
        "ChargeItem",
        ("subject", "context", "enterer", "performing_organization", "cost_center", "account"),
        out,
    )
    return out


def check_invoice(v: Invoice) -> Errors:
    """Invoice.status is 1..1 (R4 15.5); totalNet, totalGross and every line item's price
    component amount must be valid Money, chargeItemReference a valid reference."""
    out: Errors = []
    check_required(v.status, "Invoice.status", out)
    check_money(v.total_net, "Invoice.totalNet", out)
    check_money(v.total_gross, "Invoice.totalGross", out)
    for i, line in enumerate(v.line_item):
        check_reference(
            line.charge_item_reference, f"Invoice.lineItem[{i}].chargeItemReference", out
        )
        for j, pc in enumerate(line.price_component):
            check_money(pc.amount, f"Invoice.lineItem[{i}].priceComponent[{j}].amount", out)
    for j, pc in enumerate(v.total_price_component):
        check_money(pc.amount, f"Invoice.totalPriceComponent[{j}].amount", out)
    _refs(v, "Invoice", ("subject", "recipient", "account"), out)
    return out


def check_claim(c: Claim) -> Errors:
    """Claim.status, use, patient, created and provider are 1..1 (R4 13.5); finance also
    needs a total or item net amounts, and warns when the insurer (0..1) is missing. Money
    and references are checked."""
    out: Errors = []
    _require(c, "Claim", ("status", "use", "patient", "created", "provider"), out)
    if c.insurer is None:
        out.append(
            FhirError(
                "required",
                "Claim.insurer should name the payer billed",
                ["Claim.insurer"],
                "warning",
            )
        )
    check_money(c.total, "Claim.total", out)
    has_net = False
    for i, item in enumerate(c.item):
        _money_at(item.unit_price, "Claim.item", i, "unitPrice", out)
        _money_at(item.net, "Claim.item", i, "net", out)
        has_net = has_net or item.net is not None
        for j, enc in enumerate(item.encounter):
            if enc.reference is not None and not _REFERENCE.fullmatch(enc.reference):
                check_reference(enc, f"Claim.item[{i}].encounter[{j}]", out)
    if c.total is None and not has_net:
        check_required(None, "Claim.total", out, "a Claim needs a total or item net amounts")
    _refs(c, "Claim", ("patient", "provider", "insurer"), out)
    return out


def check_claim_response(r: ClaimResponse) -> Errors:
    """ClaimResponse.status, use, patient, created, insurer and outcome are 1..1 (R4 13.6);
    payment.amount (1..1 when payment is given), totals and adjudication amounts must be
    valid Money."""
    out: Errors = []
    _require(r, "ClaimResponse", ("status", "use", "patient", "created", "insurer", "outcome"), out)
    _totals(r.total, "ClaimResponse", out)
    if r.payment is not None:
        check_required(r.payment.amount, "ClaimResponse.payment.amount", out)
        check_money(r.payment.amount, "ClaimResponse.payment.amount", out)
        check_money(r.payment.adjustment, "ClaimResponse.payment.adjustment", out)
    for i, item in enumerate(r.item):
        for j, adj in enumerate(item.adjudication):
            check_money(adj.amount, f"ClaimResponse.item[{i}].adjudication[{j}].amount", out)
    _refs(r, "ClaimResponse", ("patient", "insurer", "request"), out)
    return out


def check_explanation_of_benefit(e: ExplanationOfBenefit) -> Errors:
    """ExplanationOfBenefit.status, use, patient, created, insurer, provider and outcome are
    1..1 (R4 13.10); payment, totals, item and adjudication amounts must be valid Money,
    references valid."""
    out: Errors = []
    root = "ExplanationOfBenefit"
    _require(
        e, root, ("status", "use", "patient", "created", "insurer", "provider", "outcome"), out
    )
    _totals(e.total, root, out)
    if e.payment is not None:
        check_money(e.payment.amount, f"{root}.payment.amount", out)
        check_money(e.payment.adjustment, f"{root}.payment.adjustment", out)
    for i, item in enumerate(e.item):
        _money_at(item.unit_price, f"{root}.item", i, "unitPrice", out)
        _money_at(item.net, f"{root}.item", i, "net", out)
        for j, adj in enumerate(item.adjudication):
            if adj.amount is not None and not money_ok(adj.amount):
                check_money(adj.amount, f"{root}.item[{i}].adjudication[{j}].amount", out)
    _refs(e, root, ("patient", "insurer", "provider", "claim", "claim_response"), out)
    return out


def check_payment_notice(n: PaymentNotice) -> Errors:
    """PaymentNotice.status, created, payment and amount are 1..1 (R4 13.8); amount must be
    valid Money, references valid."""
    out: Errors = []
    _require(n, "PaymentNotice", ("status", "created", "payment", "amount"), out)
    check_money(n.amount, "PaymentNotice.amount", out)
    _refs(n, "PaymentNotice", ("request", "response", "payment", "payee"), out)
    return out


def check_payment_reconciliation(r: PaymentReconciliation) -> Errors:
    """PaymentReconciliation.status, created, paymentDate and paymentAmount are 1..1
    (R4 13.9); paymentAmount and each detail amount must be valid Money, references valid."""
    out: Errors = []
    root = "PaymentReconciliation"
    _require(r, root, ("status", "created", "payment_date", "payment_amount"), out)
    check_money(r.payment_amount, f"{root}.paymentAmount", out)
    for i, d in enumerate(r.detail):
        where = f"{root}.detail[{i}]"
        check_money(d.amount, f"{where}.amount", out)
        _refs(d, where, ("request", "response", "payee"), out)
    _refs(r, root, ("payment_issuer", "request", "requestor"), out)
    return out


_CHECKS: Final[dict[type[Resource], Callable[[Any], Errors]]] = {
    Patient: check_patient,
    Encounter: check_encounter,
    Account: check_account,
    Coverage: check_coverage,
    ChargeItem: check_charge_item,
    Invoice: check_invoice,
    Claim: check_claim,
    ClaimResponse: check_claim_response,
    ExplanationOfBenefit: check_explanation_of_benefit,
    PaymentNotice: check_payment_notice,
    PaymentReconciliation: check_payment_reconciliation,
}


def check_resource(resource: Resource) -> Errors:
    """Every finance check that applies to ``resource``; an empty list when it is sound."""
    check = _CHECKS.get(type(resource))
    return check(resource) if check is not None else []
