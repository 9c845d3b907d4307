"""837 edits: each one fails where it should, located, without PHI; clean claims rebatch."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tests.flows.claims.claim_files import institutional, professional

from isthmus.formats.x12 import build_999, check_envelope, parse_837, read
from isthmus.formats.x12.acknowledgement import parse_999
from isthmus.formats.x12.claim_batch import build_837
from isthmus.formats.x12.claim_edits import npi_valid, scrub

AT = datetime(2024, 1, 2, 8, 0, tzinfo=UTC)


def failures(text: str) -> list[tuple[str, str, int, int, int]]:
    (claim,) = scrub(text)
    return [(f.code, f.segment_id, f.position, f.element, f.component) for f in claim.failures]


def test_clean_files_pass() -> None:
    assert [c.clean for c in scrub(professional())] == [True]
    assert [c.clean for c in scrub(institutional())] == [True, True]


@pytest.mark.parametrize(
    ("npi", "ok"),
    [
        ("1234567893", True),
        ("1912301953", True),
        ("1234567890", False),
        ("123456789", False),
        ("12345678A3", False),
    ],
)
def test_npi_luhn_with_80840_prefix(npi: str, ok: bool) -> None:
    assert npi_valid(npi) is ok


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("CLM*26463774*100.00", "CLM*26463774*101.00", ("charge-total", "CLM", 25, 2, 0)),
        ("XX*1912301953", "XX*1912301954", ("npi-check-digit", "NM1", 8, 9, 0)),
        ("11:B:1*Y", "11:B:5*Y", ("code-set", "CLM", 25, 5, 3)),
        ("11:B:1*Y", "1:B:1*Y", ("code-set", "CLM", 25, 5, 1)),
        ("11:B:1*Y", "11:A:1*Y", ("code-set", "CLM", 25, 5, 2)),
        ("11:B:1*Y", "11:B:7*Y", ("required", "REF", 25, 1, 0)),
        ("SV1*HC:87070", "SV1*ZZ:87070", ("code-set", "SV1", 32, 1, 1)),
        ("HI*BK:0340", "HI*ZZ:0340", ("required", "HI", 25, 0, 0)),
        ("DTP*472*D8*20061003~LX*2", "DTP*472*D8*20061399~LX*2", ("code-set", "DTP", 30, 3, 0)),
        ("NM1*PR*2*KEY INSURANCE COMPANY*****PI*999996666~", "", ("required", "NM1", 24, 0, 0)),
        ("SE*40*0021", "SE*41*0021", ("envelope", "SE", 0, 1, 0)),
    ],
)
def test_each_edit_fails_located(old: str, new: str, expected: tuple[str, ...]) -> None:
    text = professional()
    assert old in text
    got = failures(text.replace(old, new))
    assert expected in got, got


def test_required_billing_npi_and_lines() -> None:
    got = failures(professional().replace("XX*1912301953", "24*587654321"))
    assert ("required", "NM1", 8, 8, 0) in got
    text = professional()
    cut = text[: text.index("LX*1")] + text[text.index("SE*") :]
    assert ("required", "LX", 25, 0, 0) in failures(cut)


def test_institutional_needs_statement_dates_and_cl1() -> None:
    text = institutional().replace("DTP*434*RD8*20050315-20050315~", "")
    first = scrub(text)[0]
    assert [(f.code, f.segment_id) for f in first.failures] == [
        ("envelope", "SE"),
        ("required", "DTP"),
    ]
    assert scrub(institutional().replace("SV2*0305", "SV2*305"))[0].failures[0].segment_id == "SV2"


def test_duplicate_same_content_not_changed_content() -> None:
    (first,) = scrub(professional())
    sent = {first.patient_control_number: first.digest}
    assert [f.code for f in scrub(professional(), sent)[0].failures] == ["duplicate"]
    changed = (
        professional()
        .replace("SV1*HC:86663*10.00", "SV1*HC:86663*10.00")
        .replace("DTP*472*D8*20061010~LX*4", "DTP*472*D8*20061011~LX*4")
    )
    assert scrub(changed, sent)[0].clean
    twice = scrub(
        institutional().replace("CLM*756049Q*50.00***13:A:1", "CLM*756048Q*50.00***13:A:1")
    )
    assert [c.clean for c in twice] == [True, True]  # same number, different content


def test_failures_carry_no_phi() -> None:
    text = professional().replace("XX*1912301953", "XX*1").replace("11:B:1", "1:B:9")
    (claim,) = scrub(text)
    assert len(claim.failures) >= 3
    for f in claim.failures:
        for phi in ("SMITH", "TED", "JS00111223333", "0340", "26463774"):
            assert phi not in str(f)


def test_clean_claims_rebatch_with_new_control_numbers() -> None:
    claims = [c for c in scrub(professional()) + scrub(institutional()) if c.clean]
    out = build_837(
        claims,
        sender="HOSP",
        receiver="CLEARING",
        interchange_control=1001,
        group_control=501,
        transaction_control=1,
        reference="B1",
        at=AT,
    )
    assert out.interchange_control == "000001001"
    assert [
        (p.patient_control_number, p.group_control, p.transaction_control) for p in out.placements
    ] == [("26463774", "501", "0001"), ("756048Q", "502", "0002"), ("756049Q", "502", "0002")]
    ic = read(out.text)
    assert ic.control_number == "000001001" and check_envelope(ic).findings == []
    again = scrub(out.text)
    assert all(c.clean for c in again)
    assert [c.digest for c in again] == [c.digest for c in claims]  # content unchanged
    parsed = parse_837(out.text)
    assert [c.patient_control_number for c in parsed.claims] == ["26463774", "756048Q", "756049Q"]
    # one billing provider level for the two institutional claims
    assert out.text.count("NM1*85*2*JONES HOSPITAL") == 1
    ack = parse_999(build_999(ic, parsed.findings, at=AT))
    assert [(g.control, [s.control for s in g.sets]) for g in ack.groups] == [
        ("501", ["0001"]),
        ("502", ["0002"]),
    ]


def test_dirty_claim_refused_by_batch() -> None:
    bad = scrub(professional().replace("11:B:1", "11:B:9"))
    with pytest.raises(ValueError, match="passed their edits"):
        build_837(
            bad,
            sender="H",
            receiver="C",
            interchange_control=1,
            group_control=1,
            transaction_control=1,
            reference="R",
            at=AT,
        )
