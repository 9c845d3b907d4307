"""formats.fhir.strict: FHIR R4 date expressions, repeated members, and the element tables
checked against the R4B models of fhir.resources (every date element is known, none of the
names checked is anything but a date)."""

from __future__ import annotations

import collections
import re
from pathlib import Path

import fhir.resources
import pytest
from tests.api.test_fhir_api import CORPUS

from isthmus.formats.fhir import date_elements
from isthmus.formats.fhir.date_elements import (
    DATE,
    DATE_ELEMENTS,
    DATE_TIME,
    INSTANT,
    valid_date,
)
from isthmus.formats.fhir.strict import strict_errors

MODELS = Path(fhir.resources.__file__).parent / "R4B"
_FIELD = re.compile(
    r"^    \w+: ([^\n=]+)= Field\(\s*(?:default=None|\.\.\.|None),\s*"
    r'alias="(\w+)"',
    re.M,
)
DATES = {"Date", "DateTime", "Instant"}


def _types() -> dict[str, set[str]]:
    """Element name -> the fhirtypes of every element of that name in the R4B models."""
    types: dict[str, set[str]] = collections.defaultdict(set)
    for f in MODELS.glob("*.py"):
        for m in _FIELD.finditer(f.read_text()):
            found = re.search(r"fhirtypes\.(\w+)Type", m.group(1))
            if found:
                types[m.group(2)].add(found.group(1))
    return types


TYPES = _types()


def test_the_models_were_read() -> None:
    assert len(TYPES) > 2000 and TYPES["birthDate"] == {"Date"}


def test_every_element_that_is_always_a_date_is_checked_with_its_type() -> None:
    always = {k: v for k, v in TYPES.items() if v and v <= DATES}
    assert set(DATE_ELEMENTS) == set(always)
    for name, kinds in always.items():
        want = {frozenset({"Date"}): DATE, frozenset({"Instant"}): INSTANT}.get(
            frozenset(kinds), DATE_TIME
        )
        assert DATE_ELEMENTS[name] is want, name


@pytest.mark.parametrize(
    ("table", "kind"),
    [
        (date_elements.PERIOD_ELEMENTS, "Period"),
        (date_elements.TIMING_ELEMENTS, "Timing"),
        (date_elements.SIGNATURE_ELEMENTS, "Signature"),
        (date_elements.META_ELEMENTS, "Meta"),
    ],
)
def test_context_elements_are_of_their_type_or_never_an_object_of_another(
    table: frozenset[str], kind: str
) -> None:
    only = {k for k, v in TYPES.items() if v == {kind}}
    assert only <= table, sorted(only - table)
    objects_too = {"Duration", "Quantity", "CodeableConcept"}  # no start/end/event/when
    for name in table:
        assert kind in TYPES[name], name
        assert TYPES[name] - {kind} <= objects_too | {"Decimal", "PositiveInt"}, name


@pytest.mark.parametrize("value", ["1942", "1942-08", "1942-08-17", "2000-02-29", "0001"])
def test_dates(value: str) -> None:
    assert valid_date(value, DATE) and valid_date(value, DATE_TIME)


@pytest.mark.parametrize(
    "value",
    [
        "1942-08-17X",
        "1942-8-17",
        "19420817",
        "1942-02-30",
        "1900-02-29",
        "0000",
        "1942-13",
        " 1942",
        "1942-08-17 ",
        "1942-08-17T10:00:00Z",
        "١٩٤٢",
        "",
        "1942-08-17\n",
    ],
)
def test_not_dates(value: str) -> None:
    assert not valid_date(value, DATE)


@pytest.mark.parametrize(
    "value",
    ["2026-11-02T10:00:00Z", "2026-11-02T10:00:00.123+05:30", "2026-11-02T23:59:60+14:00", "2026"],
)
def test_date_times(value: str) -> None:
    assert valid_date(value, DATE_TIME)


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-02T10:00:00",
        "2026-11-02T10:00Z",
        "2026-11-02T24:00:00Z",
        "2026-11-02T10:00:00+15:00",
        "2026-11-02t10:00:00Z",
        "2026-11-02T10:00:00.Z",
    ],
)
def test_not_date_times(value: str) -> None:
    assert not valid_date(value, DATE_TIME)


def test_instants_need_a_full_time() -> None:
    assert valid_date("2026-11-02T10:00:00Z", INSTANT)
    assert not valid_date("2026-11-02", INSTANT)


def test_issues_name_the_element_never_the_value() -> None:
    raw = (
        b'{"resourceType": "Patient", "birthDate": "SMITHSON", "contained": [{'
        b'"resourceType": "Appointment", "start": "2026-11-02"}], "name": [{"period": '
        b'{"end": "JANE"}}], "_birthDate": {"extension": [{"url": "u", "valueDate": '
        b'"Q"}]}}'
    )
    errors = strict_errors(raw)
    assert sorted(e.expression[0] for e in errors) == [
        "Patient._birthDate.extension[0].valueDate",
        "Patient.birthDate",
        "Patient.contained[0].start",
        "Patient.name[0].period.end",
    ]
    text = " ".join(str(e) for e in errors)
    assert "SMITHSON" not in text and "JANE" not in text


def test_repeated_members_are_named_once_each() -> None:
    raw = b'{"resourceType": "Claim", "created": "2026", "created": "2027", "x y": 1, "x y": 2}'
    errors = strict_errors(raw)
    assert [(e.code, e.expression) for e in errors] == [
        ("structure", ("Claim.created",)),
        ("structure", ("Claim",)),
    ]
    assert "x y" not in str(errors[1])  # a member name that is not an element: not shown


@pytest.mark.parametrize(
    "raw", [b'{"resourceType": "Patient", "x": NaN}', b"\xff{", b'{"resourceType": "Patient"']
)
def test_what_is_not_json_is_a_structure_issue(raw: bytes) -> None:
    [e] = strict_errors(raw)
    assert e.code == "structure"


def test_depth() -> None:
    raw = b'{"resourceType": "Patient", "a": ' + b"[" * 40 + b"]" * 40 + b"}"
    [e] = strict_errors(raw, max_depth=32)
    assert e.code == "too-costly" and "max_json_depth" in e.diagnostics
    assert strict_errors(raw, max_depth=64) == []
    [e] = strict_errors(b"[" * 100_000 + b"]" * 100_000)
    assert e.code == "too-costly"


def test_the_public_corpus_is_strict() -> None:
    files = sorted(CORPUS.rglob("*.json"))
    if not files:
        pytest.skip(f"no FHIR corpus at {CORPUS}")
    assert [
        (f.name, strict_errors(f.read_bytes())) for f in files if strict_errors(f.read_bytes())
    ] == []
