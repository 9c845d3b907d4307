"""Full validation on demand (fhir.resources R4B): examples pass, broken ones are located."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.formats.fhir.fhir_corpus import EXAMPLES, SYNTHEA, example, ids, require_corpus

from isthmus.formats.fhir import decode_bundle, validate_full


@pytest.mark.parametrize("path", EXAMPLES, ids=ids(EXAMPLES))
def test_examples_are_valid(path: Path) -> None:
    rtype = path.name.split("-")[0]
    assert validate_full(rtype, path.read_bytes()) == []


def test_synthea_finance_entries_are_valid() -> None:
    require_corpus()
    bundle = decode_bundle(SYNTHEA[0].read_bytes())
    checked = 0
    for e in bundle.entry:
        if e.resource is not None and e.raw is not None and e.resource_type:
            assert validate_full(e.resource_type, e.raw) == []
            checked += 1
    assert checked > 40


def test_broken_claim_is_located() -> None:
    doc = json.loads(example("Claim-100150"))
    doc["item"][0]["net"]["value"] = "a lot"
    del doc["patient"]
    doc["bogus"] = True
    errors = validate_full("Claim", json.dumps(doc))
    assert {(e.code, e.expression) for e in errors} == {
        ("value", ("Claim.item[0].net.value",)),
        ("required", ("Claim.patient",)),
        ("structure", ("Claim.bogus",)),
    }
    assert all("a lot" not in e.diagnostics for e in errors)  # inputs may be PHI


def test_wrong_type_and_unknown_types() -> None:
    [err] = validate_full("Invoice", example("Claim-100150"))
    assert (err.code, err.expression) == ("invalid", ("Invoice.resourceType",))
    [err] = validate_full("Nonsense", b"{}")
    assert err.code == "not-supported"
    [err] = validate_full("Money", b'{"value": 1}')  # a data type, not a resource
    assert err.code == "not-supported"
    [err] = validate_full("../etc", b"{}")
    assert err.code == "not-supported"
    [err] = validate_full("Claim", b'{"resourceType": "Claim",')
    assert err.code == "structure" and err.expression == ()
