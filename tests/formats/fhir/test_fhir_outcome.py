"""Broken input becomes an R4 OperationOutcome that names the element at fault."""

from __future__ import annotations

import json
import pickle
from decimal import Decimal
from typing import Any

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.formats.fhir.fhir_corpus import example

from isthmus.formats.fhir import (
    Claim,
    FhirError,
    Money,
    decode_as,
    decode_bundle,
    decode_resource,
    operation_outcome,
)
from isthmus.formats.fhir.outcome import from_validation_error


def outcome_of(data: bytes) -> dict[str, Any]:
    with pytest.raises(FhirError) as info:
        decode_resource(data)
    return operation_outcome([info.value])


def r4b_valid(outcome: dict[str, Any]) -> None:
    OperationOutcome.model_validate(outcome)


def broken(name: str, edit: Any) -> bytes:
    doc = json.loads(example(name))
    edit(doc)
    return json.dumps(doc).encode()


def test_wrong_type_for_an_amount() -> None:
    data = broken("ChargeItem-example", lambda d: d["priceOverride"].update(value="forty"))
    out = outcome_of(data)
    r4b_valid(out)
    [issue] = out["issue"]
    assert issue["severity"] == "error" and issue["code"] == "value"
    assert issue["expression"] == ["ChargeItem.priceOverride.value"]


def test_wrong_type_deep_in_an_item() -> None:
    data = broken("Claim-100150", lambda d: d["item"][0]["net"].update(value=[1]))
    [issue] = outcome_of(data)["issue"]
    assert issue["expression"] == ["Claim.item[0].net.value"]
    assert "got `array`" in issue["diagnostics"]


def test_renamed_element_keeps_its_fhir_name() -> None:
    data = broken("Encounter-example", lambda d: d.update({"class": "IMP"}))
    [issue] = outcome_of(data)["issue"]
    assert issue["expression"] == ["Encounter.class"]


def test_invalid_json() -> None:
    out = outcome_of(b'{"resourceType": "Claim", "total": {"value": 1,')
    r4b_valid(out)
    assert out["issue"][0]["code"] == "structure"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "structure"),
        (b"[]", "structure"),
        (b'"Claim"', "structure"),
        (b"{}", "required"),
        (b'{"id": "x"}', "required"),
        (b'{"resourceType": "Observation"}', "not-supported"),
        (b'{"resourceType": 7}', "structure"),
        (b"\xff\xfe{}", "structure"),
        (b"[" * 100_000, "structure"),
        (b'{"resourceType": "Claim", "id": "\xff"}', "structure"),
    ],
)
def test_not_a_resource(data: bytes, code: str) -> None:
    out = outcome_of(data)
    r4b_valid(out)
    assert out["issue"][0]["code"] == code


def test_resource_type_not_first_is_still_read() -> None:
    claim = decode_as(
        Claim, b'{"id": "c1", "total": {"value": 5, "currency": "USD"}, "resourceType": "Claim"}'
    )
    assert claim.total == Money(value=Decimal(5), currency="USD")


def test_decode_as_wrong_type() -> None:
    with pytest.raises(FhirError) as info:
        decode_as(Claim, example("Invoice-example"))
    assert info.value.code == "invalid" and info.value.expression == ("resourceType",)


def test_missing_required_is_rooted_at_the_field() -> None:
    err = from_validation_error("Bundle", "Object missing required field `type`")
    assert err == FhirError("required", "Object missing required field `type`", ["Bundle.type"])
    err = from_validation_error("Claim", "Object missing required field `url` - at `$.item[2]`")
    assert err.expression == ("Claim.item[2].url",)


def test_bundle_errors() -> None:
    with pytest.raises(FhirError) as info:
        decode_bundle(b'{"resourceType": "Bundle", "entry": []}')
    assert info.value.code == "required" and info.value.expression == ("Bundle.type",)
    with pytest.raises(FhirError) as info:
        decode_bundle(b'{"resourceType": "Bundle", "type": "bogus"}')
    assert info.value.expression == ("Bundle.type",)
    with pytest.raises(FhirError) as info:
        decode_bundle(example("Claim-100150"))
    assert info.value.code == "invalid"
    entry = {
        "fullUrl": "urn:uuid:1",
        "resource": {"resourceType": "Claim", "total": {"value": "x"}},
        "request": {"method": "POST", "url": "Claim"},
    }
    bundle = decode_bundle(
        json.dumps(
            {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": 5}, entry]}
        ).encode()
    )
    assert [e.expression for e in bundle.errors] == [
        ("Bundle.entry[0].resource",),
        ("Bundle.entry[1].resource.total.value",),
    ]
    r4b_valid(operation_outcome(bundle.errors))


def test_empty_outcome_is_all_ok() -> None:
    out = operation_outcome([])
    r4b_valid(out)
    assert out["issue"] == [
        {"severity": "information", "code": "informational", "diagnostics": "All OK"}
    ]


def test_fhir_error_is_a_value() -> None:
    err = FhirError("value", "bad", ["Claim.total"], "warning")
    assert err == FhirError("value", "bad", ("Claim.total",), "warning")
    assert hash(err) == hash(FhirError("value", "bad", ["Claim.total"], "warning"))
    assert not err.is_error and FhirError("value", "bad").is_error
    assert pickle.loads(pickle.dumps(err)) == err
    assert "Claim.total" in str(err) and "FhirError(" in repr(err)
    assert err.within("Bundle.entry[1].resource").expression == ("Bundle.entry[1].resource.total",)
    with pytest.raises(ValueError, match="IssueType"):
        FhirError("oops", "bad")
    with pytest.raises(ValueError, match="IssueSeverity"):
        FhirError("value", "bad", (), "loud")  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_fhir_error(data: bytes) -> None:
    try:
        decode_resource(data)
    except FhirError as err:
        r4b_valid(operation_outcome([err]))


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(["total", "item", "patient", "created", "status", "insurer", "use"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(FIELDS, JSONISH, max_size=5))
def test_arbitrary_claim_shapes_raise_only_fhir_error(fields: dict[str, Any]) -> None:
    data = json.dumps({"resourceType": "Claim", **fields}).encode()
    try:
        decode_resource(data)
    except FhirError as err:
        assert err.expression and err.expression[0].startswith("Claim")
