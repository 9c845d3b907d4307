"""Timecard files through `isthmus ingest` to balanced labor accruals: redelivery posts
once, unapproved overtime and an expired credential become work items and post nothing,
the budget report's figures, and the payroll reversal (flows/labor.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from isthmus.cli.main import run
from tests.chart import DEMO_CHART

HEADER = (
    "shift_id,employee_id,employee_name,department,work_date,regular_hours,"
    "overtime_hours,differential_hours,on_call_hours,overtime_approval,"
    "credential_expires_on\n"
)
CONFIG = """
[labor]
budget_alert = "0.90"
[labor.employees]
E300 = "LAB"
[labor.budgets]
ED = "1000.00"
LAB = "2000.00"
"""


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> Any:
    capsys.readouterr()
    got = run(argv)
    out = capsys.readouterr().out
    assert got == code, out
    return json.loads(out)


@pytest.fixture
def d(tmp_path: Path) -> list[str]:
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(DEMO_CHART + CONFIG)
    return ["--data-dir", str(tmp_path / "hub"), "--config", str(cfg), "--json"]


def _balances(capsys: pytest.CaptureFixture[str], d: list[str]) -> dict[str, str]:
    tb = _json(capsys, ["ledger", "trial-balance", *d])
    assert tb["balanced"] is True
    return {r["account"]: r["balance"] for r in tb["rows"]}


def _file(tmp_path: Path, name: str, rows: list[str]) -> Path:
    f = tmp_path / name
    f.write_text(HEADER + "".join(r + "\n" for r in rows))
    return f


WEEK = [
    "S1,E100,Jane Roe,ED,2026-01-05,8,,,,,2027-01-01",
    "S2,E100,Jane Roe,ED,2026-01-06,8,,2,,,2027-01-01",
    "S3,E300,Sam Poe,,2026-01-06,8,,,4,,",
]


def test_a_timecard_accrues_once_and_balanced(
    tmp_path: Path, d: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    f = _file(tmp_path, "week.csv", WEEK)
    out = _json(capsys, ["ingest", str(f), "--apply", *d])
    [item] = out["items"]
    assert (item["format"], item["status"], item["events"]) == ("timecard", "accepted", 3)
    assert out["applied"] == 3
    rows = _balances(capsys, d)
    # 24 h regular x 45.00 = 1080.00; 2 h differential x 4.00 = 8.00; 4 h on-call x 8.00
    assert (rows["5100"], rows["5120"], rows["5130"]) == ("1080.00", "8.00", "32.00")
    assert rows["2300"] == "-1120.00"
    again = _json(capsys, ["ingest", str(f), "--apply", *d])
    assert again["items"][0]["duplicate"] is True and again["applied"] == 0
    # the same shifts re-exported in another file (other bytes) accrue nothing new
    f2 = _file(tmp_path, "week-again.csv", list(reversed(WEEK)))
    third = _json(capsys, ["ingest", str(f2), "--apply", *d])
    assert third["items"][0]["duplicate"] is False  # a new file, its shifts known
    assert _balances(capsys, d) == rows
    journal = _json(capsys, ["ledger", "journal", *d])
    text = json.dumps(journal)
    assert "Roe" not in text and "Poe" not in text and "E100" not in text
    # the ERP export takes the accruals, summarized and balanced
    _json(capsys, ["ledger", "export", *d])


def test_unapproved_overtime_and_expired_credential_are_held(
    tmp_path: Path, d: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    f = _file(
        tmp_path,
        "held.csv",
        [
            "S10,E100,Jane Roe,ED,2026-01-05,8,3,,,,",  # overtime, no approval
            "S11,E200,John Doe,ED,2026-01-06,8,,,,,2026-01-01",  # credential expired 1 Jan
            "S12,E100,Jane Roe,ED,2026-01-07,8,1,,,OT-1,",
        ],
    )  # approved in the timecard
    _json(capsys, ["ingest", str(f), "--apply", *d])
    rows = _balances(capsys, d)
    assert (rows["5100"], rows["5110"]) == ("720.00", "67.50")  # S10 + S12 regular, S12 OT
    items = _json(capsys, ["workitems", "list", "--status", "open", *d])
    got = sorted((w["queue"], w["kind"]) for w in items)
    assert got == [("compliance", "expired_credential"), ("workforce", "unapproved_overtime")]
    assert not any("Roe" in w["detail"] or "Doe" in w["detail"] for w in items)


def test_budget_variance_report(
    tmp_path: Path, d: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # ED: 2 x 8 h x 45.00 + 2 h differential x 4.00 = 728.00; LAB: 8 x 45 + 4 x 8 = 392.00
    _json(capsys, ["ingest", str(_file(tmp_path, "week.csv", WEEK)), "--apply", *d])
    rep = _json(capsys, ["labor", "budget", "--period", "2026-01", *d])
    got = [
        (r["department"], r["budget"], r["actual"], r["variance"], r["used"], r["alert"])
        for r in rep["departments"]
    ]
    assert got == [
        ("ED", "1000.00", "728.00", "272.00", "0.7280", False),
        ("LAB", "2000.00", "392.00", "1608.00", "0.1960", False),
    ]
    # 4 more hours of ED regular time: 908.00 of 1000.00 crosses 90%: exit 4
    more = _file(tmp_path, "more.csv", ["S4,E100,Jane Roe,ED,2026-01-08,4,,,,,"])
    _json(capsys, ["ingest", str(more), "--apply", *d])
    rep = _json(capsys, ["labor", "budget", "--period", "2026-01", *d], code=4)
    ed = rep["departments"][0]
    assert (ed["actual"], ed["variance"], ed["used"], ed["alert"]) == (
        "908.00",
        "92.00",
        "0.9080",
        True,
    )
    assert run(["labor", "budget", "--period", "2026-1", *d]) == 2


def test_payroll_reverses_the_pay_period_once(
    tmp_path: Path, d: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _json(capsys, ["ingest", str(_file(tmp_path, "week.csv", WEEK)), "--apply", *d])
    out = _json(
        capsys,
        [
            "labor",
            "payroll-posted",
            "--pay-period-end",
            "2026-01-17",
            "--posted-on",
            "2026-01-20",
            *d,
        ],
    )
    assert (out["reversed"], out["amount"]) == (3, "1120.00")
    rows = _balances(capsys, d)
    assert rows["2300"] == "0.00" and rows["5100"] == "0.00"
    again = _json(
        capsys,
        [
            "labor",
            "payroll-posted",
            "--pay-period-end",
            "2026-01-17",
            "--posted-on",
            "2026-01-20",
            *d,
        ],
    )
    assert again["reversed"] == 0
    # the budget report keeps the accrued cost: payroll's own journal is the ERP's
    rep = _json(capsys, ["labor", "budget", "--period", "2026-01", *d])
    assert rep["departments"][0]["actual"] == "728.00"


def test_a_bad_timecard_posts_nothing(
    tmp_path: Path, d: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    f = _file(
        tmp_path, "bad.csv", ["S1,E100,x,ED,2026-01-05,8,,,,,", "S2,E100,x,ED,2026-01-06,30,,,,,"]
    )
    out = _json(capsys, ["ingest", str(f), "--apply", *d], code=1)
    [item] = out["items"]
    assert item["status"] == "rejected" and "regular_hours" in item["error"]
    assert "5100" not in _balances(capsys, d)


def test_labor_in_the_service_line_margin(
    tmp_path: Path, d: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # ED -> Emergency: 728.00; LAB -> Laboratory: 392.00 ([labor.service_lines] defaults)
    _json(capsys, ["ingest", str(_file(tmp_path, "week.csv", WEEK)), "--apply", *d])
    rows = _json(capsys, ["supply", "margin", *d])
    got = {(r["service_line"], r["period"]): (r["labor"], r["margin"]) for r in rows}
    assert got == {
        ("Emergency", "2026-01"): ("728.00", "-728.00"),
        ("Laboratory", "2026-01"): ("392.00", "-392.00"),
    }
