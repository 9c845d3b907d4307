"""Every 270, 271, 276, 277 and 837 of the corpus parses; the result is kept as golden JSON.

The goldens under ``golden/`` were generated once (``ISTHMUS_REGEN_GOLDEN=1``), read
against the files and the guides (005010X279A1, X212, X222A1/X223A2), then checked in;
a change in what the parsers return shows here as a diff, never silently.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from tests.formats.x12.x12_corpus import corpus_files, file_id

from isthmus.formats.x12 import parse_837
from isthmus.formats.x12.claim_status import parse_status
from isthmus.formats.x12.eligibility import parse_270, parse_271

GOLDEN = Path(__file__).parent / "golden"
FILES = [*corpus_files("27[0167]_*/*"), *corpus_files("837_*/*.837*")]


def parsed(path: Path) -> object:
    data = path.read_bytes()
    kind = path.parent.name[:3]
    if kind == "270":
        return parse_270(data)
    if kind == "271":
        return parse_271(data)
    if kind in ("276", "277"):
        return parse_status(data)
    return parse_837(data)


def golden_path(path: Path) -> Path:
    return GOLDEN / f"{path.parent.name}__{path.name}.json"


def test_corpus_has_every_file() -> None:
    counts = {
        k: sum(1 for p in FILES if p.parent.name.startswith(k))
        for k in ("270", "271", "276", "277", "837")
    }
    assert counts == {"270": 2, "271": 3, "276": 4, "277": 4, "837": 33}


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_corpus_file_matches_its_golden(path: Path) -> None:
    got = msgspec.json.format(msgspec.json.encode(parsed(path)), indent=1)
    gold = golden_path(path)
    if os.environ.get("ISTHMUS_REGEN_GOLDEN") == "1":
        gold.write_bytes(got + b"\n")
    assert got + b"\n" == gold.read_bytes()


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_corpus_file_yields_its_business_content(path: Path) -> None:
    result = parsed(path)
    kind = path.parent.name[:3]
    if kind == "270":
        assert result.requests and all(
            r.trace and r.payer.name  # type: ignore[attr-defined]
            for r in result.requests
        )  # type: ignore[attr-defined]
    elif kind == "271":
        assert result.responses  # type: ignore[attr-defined]
    elif kind == "276":
        assert result.transaction == "276" and result.claims  # type: ignore[attr-defined]
        assert all(c.trace for c in result.claims)  # type: ignore[attr-defined]
    elif kind == "277":
        assert result.transaction == "277"  # type: ignore[attr-defined]
        assert all(c.statuses for c in result.claims)  # type: ignore[attr-defined]
        assert result.claims or result.levels  # type: ignore[attr-defined]
    else:
        assert result.claims and not result.findings  # type: ignore[attr-defined]


def test_271_summary_reads_active_plan_and_in_network_copay() -> None:
    (r,) = parsed(
        next(p for p in FILES if p.name == "subscriber-health-benefit-check.271")
    ).responses  # type: ignore[attr-defined]
    s = r.summary()
    assert (s.status, s.plan, s.copay) == ("active", "GOLD 123 PLAN", Decimal("10.00"))


def test_271_rejection_is_unknown_status_with_reason() -> None:
    batch = parsed(next(p for p in FILES if p.name == "subscriber-health-benefit-check-error.271"))
    (r,) = batch.responses  # type: ignore[attr-defined]
    assert r.summary().status == "unknown"
    assert [(x.loop, x.reason, x.follow_up) for x in r.rejections] == [("2000B", "50", "N")]
    assert [f.code for f in batch.findings] == ["3"]  # type: ignore[attr-defined]  # SE02 != ST02


def test_277_claim_statuses_categorized() -> None:
    batch = parsed(
        next(
            p
            for p in FILES
            if p.name == "claim-level-status.277" and p.parent.name.startswith("277")
        )
    )
    got = [
        (c.patient_control_number, c.payer_claim_control_number, c.category(), c.statuses[0].code)
        for c in batch.claims
    ]  # type: ignore[attr-defined]
    assert got == [
        ("SM123456", "05347006051", "pending", "317"),
        ("J0234567", "0529675341", "finalized", "3"),
        ("MA345678", "051681010827", "finalized", "88"),
    ]
    assert batch.claims[2].lines[0].statuses  # type: ignore[attr-defined]


def test_277_level_rejection_kept_on_its_level() -> None:
    batch = parsed(next(p for p in FILES if p.name == "information-receiver-level-status.277"))
    (lv,) = batch.levels  # type: ignore[attr-defined]
    assert (lv.level, lv.statuses[0].category) == ("21", "E0")
    assert batch.claims == ()  # type: ignore[attr-defined]
