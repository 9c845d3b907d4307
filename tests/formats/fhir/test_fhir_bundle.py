"""Transaction processing rules (R4 3.1.0.11.2): order, identities, reference rewriting."""

from __future__ import annotations

import json
from decimal import Decimal
from itertools import count
from typing import Any

from tests.formats.fhir.fhir_corpus import SYNTHEA, load_json, require_corpus

from isthmus.formats.fhir import (
    BundleEntry,
    Claim,
    ExplanationOfBenefit,
    conditional_queries,
    decode_bundle,
    plan_transaction,
    resolve_raw,
    resolve_references,
)

P = "urn:uuid:11111111-1111-4111-8111-111111111111"
E = "urn:uuid:22222222-2222-4222-8222-222222222222"


def entry(
    method: str,
    url: str,
    resource: dict[str, Any] | None = None,
    full_url: str | None = None,
    **request: str,
) -> dict[str, Any]:
    out: dict[str, Any] = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        out["resource"] = resource
    if full_url is not None:
        out["fullUrl"] = full_url
    return out


def bundle_bytes(*entries: dict[str, Any], kind: str = "transaction") -> bytes:
    return json.dumps({"resourceType": "Bundle", "type": kind, "entry": list(entries)}).encode()


def ids() -> Any:
    numbers = count(1)
    return lambda e: f"n{next(numbers)}"


CLAIM = {
    "resourceType": "Claim",
    "status": "active",
    "use": "claim",
    "created": "2024-01-01",
    "patient": {"reference": P},
    "provider": {"reference": "Organization/o1"},
    "item": [
        {
            "sequence": 1,
            "encounter": [{"reference": E}],
            "net": {"value": 120.00, "currency": "USD"},
        }
    ],
}


def test_order_and_ids() -> None:
    data = bundle_bytes(
        entry("GET", "Patient/abc"),
        entry("POST", "Claim", CLAIM, "urn:uuid:33333333-3333-4333-8333-333333333333"),
        entry("PUT", "Patient/p9", {"resourceType": "Patient", "id": "p9"}, P),
        entry("DELETE", "Account/a1"),
        entry("POST", "Encounter", {"resourceType": "Encounter", "status": "finished"}, E),
    ).replace(b'"value": 120.0,', b'"value": 120.00,')  # as a sender writes it
    plan = plan_transaction(decode_bundle(data), new_id=ids())
    assert plan.errors == []
    assert [(s.method, s.entry.index, s.target) for s in plan.steps] == [
        ("DELETE", 3, "Account/a1"),
        ("POST", 1, "Claim/n1"),
        ("POST", 4, "Encounter/n2"),
        ("PUT", 2, "Patient/p9"),
        ("GET", 0, "Patient/abc"),
    ]
    assert plan.references == {
        "urn:uuid:33333333-3333-4333-8333-333333333333": "Claim/n1",
        P: "Patient/p9",
        E: "Encounter/n2",
    }
    claim = plan.steps[1].entry.resource
    assert isinstance(claim, Claim)
    resolved = resolve_references(claim, plan.references)
    assert resolved.patient is not None and resolved.patient.reference == "Patient/p9"
    assert resolved.item[0].encounter[0].reference == "Encounter/n2"
    assert resolved.provider is claim.provider  # untouched parts are shared, not copied
    assert claim.patient is not None and claim.patient.reference == P  # the original stays
    raw = plan.steps[1].entry.raw
    assert raw is not None
    rewritten = json.loads(resolve_raw(raw, plan.references), parse_float=Decimal)
    assert rewritten["patient"] == {"reference": "Patient/p9"}
    assert rewritten["item"][0]["encounter"] == [{"reference": "Encounter/n2"}]
    assert b"120.00" in resolve_raw(raw, plan.references)  # decimals keep their text


def test_conditional_create_and_reference() -> None:
    claim = {**CLAIM, "provider": {"reference": "Organization?identifier=http://npi|123"}}
    data = bundle_bytes(
        entry("POST", "Patient", {"resourceType": "Patient"}, P, ifNoneExist="identifier=mrn|7"),
        entry("POST", "Encounter", {"resourceType": "Encounter"}, E),
        entry("POST", "Claim", claim, "urn:uuid:33333333-3333-4333-8333-333333333333"),
    )
    bundle = decode_bundle(data)
    assert conditional_queries(bundle) == [
        "Patient?identifier=mrn|7",
        "Organization?identifier=http://npi|123",
    ]
    plan = plan_transaction(
        bundle,
        new_id=ids(),
        resolved={
            "Patient?identifier=mrn|7": "Patient/existing",
            "Organization?identifier=http://npi|123": "Organization/o77",
        },
    )
    assert plan.errors == []
    assert plan.steps[0].noop and plan.steps[0].target == "Patient/existing"
    resolved = resolve_references(bundle.resources(Claim)[0], plan.references)
    assert resolved.patient is not None and resolved.patient.reference == "Patient/existing"
    assert resolved.provider is not None and resolved.provider.reference == "Organization/o77"
    missing = plan_transaction(bundle, new_id=ids(), resolved={})
    assert [e.code for e in missing.errors] == ["not-found"]
    assert missing.errors[0].expression == ("Bundle.entry[2].resource.provider.reference",)


def test_transaction_errors() -> None:
    data = bundle_bytes(
        entry("POST", "Claim", {"resourceType": "Claim", "patient": {"reference": E}}, P),
        entry("POST", "Patient", {"resourceType": "Patient"}, P),
        entry("POST", "Encounter", {"resourceType": "Claim"}),
        entry("PUT", "Patient/p1", {"resourceType": "Patient", "id": "p2"}),
        entry("PUT", "Patient"),
        entry("DELETE", "Patient/x"),
        entry("DELETE", "Patient/x"),
        {"resource": {"resourceType": "Patient"}},
    )
    plan = plan_transaction(decode_bundle(data), new_id=ids())
    assert sorted((e.code, e.expression[0]) for e in plan.errors) == [
        ("duplicate", "Bundle.entry[1].fullUrl"),
        ("invalid", "Bundle.entry[2].request.url"),
        ("invalid", "Bundle.entry[3].request.url"),
        ("not-found", "Bundle.entry[0].resource.patient.reference"),
        ("processing", "Bundle.entry[6].request"),
        ("required", "Bundle.entry[4].resource"),
        ("required", "Bundle.entry[7].request"),
    ]


def test_batch_keeps_order_and_does_not_link() -> None:
    data = bundle_bytes(
        entry("GET", "Patient/1"),
        entry("POST", "Patient", {"resourceType": "Patient"}, P),
        entry("DELETE", "Patient/2"),
        kind="batch",
    )
    plan = plan_transaction(decode_bundle(data), new_id=ids())
    assert [s.method for s in plan.steps] == ["GET", "POST", "DELETE"]
    assert plan.references == {} and plan.errors == []
    collection = plan_transaction(decode_bundle(bundle_bytes(kind="collection")))
    assert [e.expression for e in collection.errors] == [("Bundle.type",)]


def test_synthea_transaction_resolves_every_reference() -> None:
    require_corpus()
    path = SYNTHEA[0]
    bundle = decode_bundle(path.read_bytes())
    keep_uuid = lambda e: (e.full_url or "").removeprefix("urn:uuid:")  # noqa: E731
    plan = plan_transaction(bundle, new_id=keep_uuid)
    assert plan.errors == []
    assert len(plan.references) == len(bundle.entry)
    assert [s.method for s in plan.steps] == ["POST"] * len(bundle.entry)
    doc = load_json(path)
    for step in plan.steps:
        e: BundleEntry = step.entry
        assert e.raw is not None
        text = resolve_raw(e.raw, plan.references).decode()
        assert '"reference":"urn:uuid:' not in text
        original = doc["entry"][e.index]["resource"]
        assert json.loads(text, parse_float=Decimal, parse_int=Decimal).keys() == original.keys()
    for eob in bundle.resources(ExplanationOfBenefit):
        out = resolve_references(eob, plan.references)
        assert out.patient is not None and out.patient.reference is not None
        assert out.patient.reference.startswith("Patient/")
        assert out.claim is not None and out.claim.reference is not None
        assert out.claim.reference.startswith("Claim/")
