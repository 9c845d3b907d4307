"""Every Synthea transaction Bundle decodes; counts and money agree with json.loads."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from tests.formats.fhir.fhir_corpus import SYNTHEA, load_json, require_corpus

from isthmus.formats.fhir import (
    FINANCE_TYPES,
    Claim,
    ExplanationOfBenefit,
    check_resource,
    decode_bundle,
    decode_resource,
)

pytestmark = pytest.mark.usefixtures("corpus")


@pytest.fixture
def corpus() -> None:
    require_corpus()


@pytest.mark.parametrize("path", SYNTHEA, ids=[p.stem.split("_")[0] for p in SYNTHEA])
def test_bundle_decodes(path: Path) -> None:
    data = path.read_bytes()
    bundle = decode_bundle(data)
    doc = load_json(path)
    assert bundle.type == doc["type"] == "transaction"
    assert bundle.errors == []
    assert len(bundle.entry) == len(doc["entry"])

    expected = Counter(e["resource"]["resourceType"] for e in doc["entry"])
    assert Counter(e.resource_type for e in bundle.entry) == expected
    decoded = Counter(type(e.resource).__name__ for e in bundle.entry if e.resource is not None)
    assert decoded == {k: v for k, v in expected.items() if k in FINANCE_TYPES}
    for ours, theirs in zip(bundle.entry, doc["entry"], strict=True):
        assert ours.full_url == theirs["fullUrl"]
        assert ours.request is not None
        assert (ours.request.method, ours.request.url) == (
            theirs["request"]["method"],
            theirs["request"]["url"],
        )
        assert ours.raw is not None and load_json_bytes(ours.raw) == theirs["resource"]

    eobs = [
        e["resource"]
        for e in doc["entry"]
        if e["resource"]["resourceType"] == "ExplanationOfBenefit"
    ]
    ours_eob = bundle.resources(ExplanationOfBenefit)
    assert sum(
        (
            e.payment.amount.value
            for e in ours_eob
            if e.payment and e.payment.amount and e.payment.amount.value is not None
        ),
        Decimal(0),
    ) == sum((e["payment"]["amount"]["value"] for e in eobs if "payment" in e), Decimal(0))
    assert sum(
        (t.amount.value for e in ours_eob for t in e.total if t.amount and t.amount.value),
        Decimal(0),
    ) == sum((t["amount"]["value"] for e in eobs for t in e.get("total", [])), Decimal(0))
    claims = [e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == "Claim"]
    assert [c.total.value if c.total else None for c in bundle.resources(Claim)] == [
        c["total"]["value"] if "total" in c else None for c in claims
    ]
    assert {c.total.currency for c in bundle.resources(Claim) if c.total} == {"USD"}


def load_json_bytes(raw: bytes) -> object:
    return json.loads(raw, parse_float=Decimal, parse_int=Decimal)


def test_synthea_checks_report_only_known_issues() -> None:
    """Synthea's Claims name no insurer (R4 0..1: a warning), and some EOB amounts are
    float artefacts such as 453.95200000000006 USD: those are errors the hub must not post."""
    issues: Counter[tuple[str, str, str]] = Counter()
    for path in SYNTHEA:
        for e in decode_bundle(path.read_bytes()).entry:
            if e.resource is not None:
                for err in check_resource(e.resource):
                    where = err.expression[0]
                    issues[
                        (
                            err.severity,
                            err.code,
                            where.split("[")[0].split(".")[-1] if "[" in where else where,
                        )
                    ] += 1
    assert set(issues) <= {
        ("warning", "required", "Claim.insurer"),
        ("error", "value", "item"),
        ("error", "value", "ExplanationOfBenefit.payment.amount.value"),
    }
    assert issues[("warning", "required", "Claim.insurer")] == sum(
        1
        for p in SYNTHEA
        for e in load_json(p)["entry"]
        if e["resource"]["resourceType"] == "Claim"
    )


def test_synthea_finance_resources_decode_alone() -> None:
    """The entries, taken out of their Bundle, decode the same on their own."""
    path = SYNTHEA[0]
    for e in decode_bundle(path.read_bytes()).entry:
        if e.resource is not None:
            assert e.raw is not None
            assert decode_resource(e.raw) == (e.resource_type, e.resource)
