"""Golden tests: every finance example of FHIR R4 4.0.1 decodes, with values asserted."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.formats.fhir.fhir_corpus import (
    CORPUS,
    example,
    finance_examples,
    ids,
    load_json,
    other_examples,
    require_corpus,
)

from isthmus.formats.fhir import (
    Account,
    ChargeItem,
    Claim,
    ClaimResponse,
    Coverage,
    Encounter,
    ExplanationOfBenefit,
    FhirError,
    Invoice,
    Money,
    Patient,
    PaymentNotice,
    PaymentReconciliation,
    Period,
    check_resource,
    decode_as,
    decode_resource,
)

FINANCE = finance_examples()


def test_corpus_has_every_finance_type() -> None:
    require_corpus()
    assert {p.name.split("-")[0] for p in FINANCE} == {
        "Account",
        "ChargeItem",
        "Claim",
        "ClaimResponse",
        "Coverage",
        "Encounter",
        "ExplanationOfBenefit",
        "Invoice",
        "Patient",
        "PaymentNotice",
        "PaymentReconciliation",
    }


def _monies(doc: Any) -> list[Decimal]:
    """Every Money value of a JSON document, found without our decoder."""
    found: list[Decimal] = []
    if isinstance(doc, dict):
        if "currency" in doc and "value" in doc:
            found.append(doc["value"])
        for key, value in doc.items():
            if key != "contained":
                found.extend(_monies(value))
    elif isinstance(doc, list):
        for value in doc:
            found.extend(_monies(value))
    return found


def _struct_monies(value: Any) -> list[Decimal]:
    found: list[Decimal] = []
    if isinstance(value, Money) and value.value is not None:
        found.append(value.value)
    elif isinstance(value, tuple):
        for v in value:
            found.extend(_struct_monies(v))
    elif hasattr(value, "__struct_fields__"):
        for name in value.__struct_fields__:
            found.extend(_struct_monies(getattr(value, name)))
    return found


@pytest.mark.parametrize("path", FINANCE, ids=ids(FINANCE))
def test_example_decodes_and_passes_checks(path: Path) -> None:
    rtype, resource = decode_resource(path.read_bytes())
    doc = load_json(path)
    assert rtype == doc["resourceType"] == type(resource).__name__
    assert resource.id == doc["id"]
    assert check_resource(resource) == []


@pytest.mark.parametrize("path", FINANCE, ids=ids(FINANCE))
def test_example_money_is_exact(path: Path) -> None:
    """Every amount we read is one the JSON holds, exactly (no float on the way)."""
    _, resource = decode_resource(path.read_bytes())
    ours = sorted(_struct_monies(resource))
    theirs = sorted(_monies(load_json(path)))
    if resource.resource_type != "Coverage":  # costToBeneficiary is not a finance element here
        assert bool(ours) == bool(theirs)
    assert set(ours) <= set(theirs)
    assert all(str(v) in path.read_text() for v in ours)


@pytest.mark.parametrize("path", other_examples(), ids=ids(other_examples()))
def test_non_finance_examples_are_not_supported(path: Path) -> None:
    with pytest.raises(FhirError) as info:
        decode_resource(path.read_bytes())
    assert info.value.code == "not-supported"


def test_claim_100150() -> None:
    claim = decode_as(Claim, example("Claim-100150"))
    assert (claim.status, claim.use, claim.created) == ("active", "claim", "2014-08-16")
    assert claim.patient is not None and claim.patient.reference == "Patient/1"
    assert claim.provider is not None and claim.provider.reference == "Organization/1"
    assert claim.insurer is not None and claim.insurer.reference == "Organization/2"
    assert claim.priority is not None and claim.priority.code_in() == "normal"
    assert claim.total is None
    [item] = claim.item
    assert item.sequence == 1
    assert item.product_or_service is not None and item.product_or_service.code_in() == "1200"
    assert item.serviced == "2014-08-16"
    assert item.unit_price == Money(value=Decimal("135.57"), currency="USD")
    assert item.net == Money(value=Decimal("135.57"), currency="USD")
    assert claim.insurance[0].coverage is not None
    assert claim.insurance[0].coverage.reference == "Coverage/9876B1"


def test_claim_totals_and_periods() -> None:
    """Claims with a total, several items, and servicedPeriod (choice type)."""
    for path in FINANCE:
        if not path.name.startswith("Claim-"):
            continue
        claim = decode_as(Claim, path.read_bytes())
        doc = load_json(path)
        if "total" in doc:
            assert claim.total == Money(
                value=doc["total"]["value"], currency=doc["total"]["currency"]
            )
        assert len(claim.item) == len(doc.get("item", []))
        for item, raw in zip(claim.item, doc.get("item", []), strict=True):
            assert item.sequence == raw["sequence"]
            if "servicedPeriod" in raw:
                assert item.serviced == Period(**raw["servicedPeriod"])
            if "net" in raw:
                assert item.net is not None and item.net.value == raw["net"]["value"]


def test_explanation_of_benefit_eb3500() -> None:
    eob = decode_as(ExplanationOfBenefit, example("ExplanationOfBenefit-EB3500"))
    assert eob.outcome == "complete"
    assert eob.claim is not None and eob.claim.reference == "Claim/100150"
    assert eob.claim_response is not None and eob.claim_response.reference == "ClaimResponse/R3500"
    assert [(t.category.code_in() if t.category else None, t.amount) for t in eob.total] == [
        ("submitted", Money(value=Decimal("135.57"), currency="USD")),
        ("benefit", Money(value=Decimal("96.00"), currency="USD")),
    ]
    assert eob.payment is None  # no R4 example EOB has a payment; Synthea's all do
    first, second = eob.item
    assert first.net == Money(value=Decimal("135.57"), currency="USD")
    assert [
        (a.category.code_in() if a.category else None, a.amount, a.value)
        for a in first.adjudication
    ] == [
        ("eligible", Money(value=Decimal("120.00"), currency="USD"), None),
        ("eligpercent", None, Decimal("0.80")),
        ("benefit", Money(value=Decimal("96.00"), currency="USD"), None),
    ]
    assert second.sequence == 2 and second.net == Money(value=Decimal("200.00"), currency="USD")


def test_claim_response_r3500() -> None:
    resp = decode_as(ClaimResponse, example("ClaimResponse-R3500"))
    assert resp.outcome == "complete"
    assert resp.request is not None
    assert resp.request.reference == "http://www.BenefitsInc.com/fhir/oralhealthclaim/15476332402"
    assert resp.payment is not None
    assert resp.payment.amount == Money(value=Decimal("100.47"), currency="USD")
    assert resp.payment.date == "2014-08-31"
    assert resp.payment.type is not None and resp.payment.type.code_in() == "complete"
    assert resp.item[0].item_sequence == 1
    assert [a.amount for a in resp.item[0].adjudication if a.amount] == [
        Money(value=Decimal("135.57"), currency="USD"),
        Money(value=Decimal("10.0"), currency="USD"),
        Money(value=Decimal("90.47"), currency="USD"),
    ]
    assert [a.value for a in resp.item[0].adjudication] == [None, None, Decimal("80.0"), None]
    assert [t.amount for t in resp.total] == [
        Money(value=Decimal("135.57"), currency="USD"),
        Money(value=Decimal("90.47"), currency="USD"),
    ]


def test_payment_reconciliation_er2500() -> None:
    rec = decode_as(PaymentReconciliation, example("PaymentReconciliation-ER2500"))
    assert rec.payment_amount == Money(value=Decimal("7000.00"), currency="USD")
    assert (rec.created, rec.payment_date) == ("2014-08-16", "2014-08-01")
    assert rec.payment_identifier is not None and rec.payment_identifier.value == "10-12345"
    assert [d.amount.value for d in rec.detail if d.amount] == [
        Decimal("3500.00"),
        Decimal("4000.00"),
        Decimal("-1500.00"),
    ]
    assert rec.detail[0].request is not None and rec.detail[0].request.identifier is not None
    assert rec.detail[0].request.identifier.value == "AB12345"
    assert rec.detail[0].payee is not None and rec.detail[0].payee.reference == "Organization/1"
    assert rec.detail[1].request is not None
    assert rec.detail[1].request.reference == (
        "http://www.BenefitsInc.com/fhir/oralhealthclaim/225476332699"
    )


def test_payment_notice_77654() -> None:
    notice = decode_as(PaymentNotice, example("PaymentNotice-77654"))
    assert notice.amount == Money(value=Decimal("12500.00"), currency="USD")
    assert notice.payment is not None
    assert notice.payment.reference == "PaymentReconciliation/ER2500"
    assert notice.payment_date == "2014-08-15"
    assert notice.request is not None
    assert notice.request.reference == "http://benefitsinc.com/fhir/claim/12345"


def test_charge_item_example() -> None:
    item = decode_as(ChargeItem, example("ChargeItem-example"))
    assert item.status == "billable"
    assert item.code is not None and item.code.code_in() == "01510"
    assert item.subject is not None and item.subject.reference == "Patient/example"
    assert item.context is not None and item.context.reference == "Encounter/example"
    assert item.occurrence == Period(
        start="2017-01-25T08:00:00+01:00", end="2017-01-25T12:35:00+01:00"
    )
    assert item.occurrence_date_time is None
    assert item.quantity is not None and item.quantity.value == Decimal("1")
    assert item.factor_override == Decimal("0.8")
    assert item.price_override == Money(value=Decimal("40"), currency="EUR")
    assert item.performing_organization is not None
    assert item.performing_organization.identifier is not None
    assert item.performing_organization.identifier.value == "CARD_INTERMEDIATE_CARE"
    assert [a.reference for a in item.account] == ["Account/example"]
    assert item.enterer is not None and item.enterer.reference == "Practitioner/example"


def test_invoice_example() -> None:
    inv = decode_as(Invoice, example("Invoice-example"))
    assert inv.status == "issued"
    assert inv.total_net == Money(value=Decimal("40"), currency="EUR")
    assert inv.total_gross == Money(value=Decimal("48"), currency="EUR")
    assert inv.account is not None and inv.account.reference == "Account/example"
    assert inv.date == "2017-01-25T08:00:00+01:00"


def test_account_example() -> None:
    acct = decode_as(Account, example("Account-example"))
    assert acct.status == "active"
    assert acct.identifier[0].value == "654321"
    assert [s.reference for s in acct.subject] == ["Patient/example"]
    assert acct.service_period == Period(start="2016-01-01", end="2016-06-30")
    assert acct.coverage[0].coverage is not None
    assert acct.coverage[0].coverage.reference == "Coverage/7546D"
    ewg = decode_as(Account, example("Account-ewg"))
    doc = load_json(CORPUS / "examples" / "Account-ewg.json")
    assert len(ewg.guarantor) == len(doc.get("guarantor", []))
    assert [g.party.reference for g in ewg.guarantor if g.party] == [
        g["party"].get("reference") for g in doc.get("guarantor", [])
    ]


def test_coverage_encounter_patient() -> None:
    cov = decode_as(Coverage, example("Coverage-9876B1"))
    assert cov.status == "active"
    assert cov.beneficiary is not None and cov.beneficiary.reference == "Patient/4"
    assert [p.reference for p in cov.payor] == ["Organization/2"]
    assert [(c.type.code_in() if c.type else None, c.value) for c in cov.class_[:3]] == [
        ("group", "CB135"),
        ("subgroup", "123"),
        ("plan", "B37FC"),
    ]
    enc = decode_as(Encounter, example("Encounter-example"))
    assert enc.status == "in-progress"
    assert enc.class_ is not None and enc.class_.code == "IMP"
    assert enc.subject is not None and enc.subject.reference == "Patient/example"
    pat = decode_as(Patient, example("Patient-example"))
    assert pat.birth_date == "1974-12-25" and pat.gender == "male"
    assert pat.name[0].family == "Chalmers" and pat.name[0].given[:1] == ("Peter",)
    assert pat.identifier[0].type is not None
    assert pat.identifier[0].type.code_in() == "MR"
