"""Finance checks of the fast path: required elements, ISO 4217, precision, references."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from tests.formats.fhir.fhir_corpus import example

from isthmus.formats.fhir import (
    FhirError,
    Money,
    Reference,
    check_money,
    check_reference,
    check_resource,
    decode_resource,
    operation_outcome,
)


def errors_of(name: str, edit: Any) -> list[FhirError]:
    doc = json.loads(example(name))
    edit(doc)
    _, resource = decode_resource(json.dumps(doc).encode())
    return check_resource(resource)


def expressions(errors: list[FhirError]) -> list[str]:
    return [x for e in errors for x in e.expression]


def test_charge_item_needs_subject_and_code() -> None:
    errs = errors_of("ChargeItem-example", lambda d: (d.pop("subject"), d.pop("code")))
    assert [(e.code, e.expression) for e in errs] == [
        ("required", ("ChargeItem.code",)),
        ("required", ("ChargeItem.subject",)),
    ]
    out = operation_outcome(errs)
    assert [i["expression"] for i in out["issue"]] == [["ChargeItem.code"], ["ChargeItem.subject"]]


def test_claim_required_elements() -> None:
    def strip(d: dict[str, Any]) -> None:
        for key in ("patient", "provider", "insurer", "created"):
            d.pop(key)
        for item in d["item"]:
            item.pop("net")

    errs = errors_of("Claim-100150", strip)
    assert {(e.code, e.severity, e.expression[0]) for e in errs} == {
        ("required", "error", "Claim.patient"),
        ("required", "error", "Claim.provider"),
        ("required", "error", "Claim.created"),
        ("required", "warning", "Claim.insurer"),
        ("required", "error", "Claim.total"),
    }


def test_bad_currency() -> None:
    errs = errors_of("Claim-100150", lambda d: d["item"][0]["net"].update(currency="usd"))
    assert [(e.code, e.expression) for e in errs] == [
        ("code-invalid", ("Claim.item[0].net.currency",))
    ]
    errs = errors_of("Invoice-example", lambda d: d["totalGross"].update(currency="EURO"))
    assert expressions(errs) == ["Invoice.totalGross.currency"]


def test_too_many_decimals() -> None:
    errs = errors_of("ChargeItem-example", lambda d: d["priceOverride"].update(value=40.005))
    assert [(e.code, e.expression) for e in errs] == [
        ("value", ("ChargeItem.priceOverride.value",))
    ]
    assert "2 decimals for EUR" in errs[0].diagnostics


@pytest.mark.parametrize(
    ("value", "currency", "ok"),
    [
        ("135.57", "USD", True),
        ("135.570", "USD", True),  # trailing zeros carry no more money
        ("135.571", "USD", False),
        ("453.95200000000006", "USD", False),
        ("1E+2", "USD", True),
        ("1.5E-7", "USD", False),
        ("-1500.00", "USD", True),
        ("1000", "JPY", True),
        ("1000.5", "JPY", False),
        ("1.234", "KWD", True),
        ("1.2345", "KWD", False),
        ("0.123456", "XAU", True),  # gold has no minor unit
        ("1E+400", "USD", True),
        ("NaN", "USD", False),
        ("Infinity", "USD", False),
    ],
)
def test_money_precision(value: str, currency: str, ok: bool) -> None:
    out: list[FhirError] = []
    check_money(Money(value=Decimal(value), currency=currency), "Claim.total", out)
    assert (out == []) is ok
    assert all(e.expression == ("Claim.total.value",) for e in out)


def test_money_without_value() -> None:
    out: list[FhirError] = []
    check_money(Money(currency="USD"), "PaymentNotice.amount", out)
    assert [(e.code, e.expression) for e in out] == [("required", ("PaymentNotice.amount.value",))]


@pytest.mark.parametrize(
    ("ref", "ok"),
    [
        ("Patient/123", True),
        ("Patient/a-b.c", True),
        ("Patient/1/_history/2", True),
        ("urn:uuid:018f428e-34f6-4707-8009-5ad742f901e7", True),
        ("urn:oid:1.2.3.4", True),
        ("#referral", True),
        ("http://www.BenefitsInc.com/fhir/eligibility/225476332402", True),
        ("Patient?identifier=http://x|123", True),
        ("patient/123", False),
        ("Patient/", False),
        ("Patient 123", False),
        ("urn:uuid:not-a-uuid", False),
        ("Patient/" + "x" * 65, False),
        ("", False),
    ],
)
def test_reference_shapes(ref: str, ok: bool) -> None:
    out: list[FhirError] = []
    check_reference(Reference(reference=ref), "Claim.patient", out)
    assert (out == []) is ok
    assert all(e.expression == ("Claim.patient.reference",) for e in out)


def test_bad_reference_in_a_list_is_located() -> None:
    errs = errors_of("ChargeItem-example", lambda d: d["account"].append({"reference": "acct 9"}))
    assert expressions(errs) == ["ChargeItem.account[1].reference"]


def test_payment_reconciliation_requirements() -> None:
    def strip(d: dict[str, Any]) -> None:
        d.pop("paymentAmount")
        d["detail"][2]["amount"]["currency"] = "XYZ"

    errs = errors_of("PaymentReconciliation-ER2500", strip)
    assert expressions(errs) == [
        "PaymentReconciliation.paymentAmount",
        "PaymentReconciliation.detail[2].amount.currency",
    ]


def test_eob_adjudication_amounts() -> None:
    def edit(d: dict[str, Any]) -> None:
        d["item"][0]["adjudication"][2]["amount"]["value"] = 96.001
        d["total"][1]["amount"]["currency"] = "US$"

    errs = errors_of("ExplanationOfBenefit-EB3500", edit)
    assert expressions(errs) == [
        "ExplanationOfBenefit.total[1].amount.currency",
        "ExplanationOfBenefit.item[0].adjudication[2].amount.value",
    ]


def test_other_resources() -> None:
    assert expressions(errors_of("Encounter-example", lambda d: d.pop("class"))) == [
        "Encounter.class"
    ]
    assert expressions(errors_of("Coverage-9876B1", lambda d: d.pop("payor"))) == ["Coverage.payor"]
    assert expressions(errors_of("Account-example", lambda d: d.pop("status"))) == [
        "Account.status"
    ]
    assert expressions(errors_of("PaymentNotice-77654", lambda d: d.pop("amount"))) == [
        "PaymentNotice.amount"
    ]
    assert expressions(
        errors_of("ClaimResponse-R3500", lambda d: d["payment"]["amount"].update(value=1.001))
    ) == ["ClaimResponse.payment.amount.value"]
    assert errors_of("Patient-example", lambda d: d.pop("name")) == []
