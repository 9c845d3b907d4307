"""The demo's labor week (demo/labor_week.py): 20 shifts, one unapproved overtime and one
expired credential held, ED over its 90% alert and LAB under, figures by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from isthmus.cli.main import run
from isthmus.demo.labor_week import BUDGETS, timecards
from tests.chart import DEMO_CHART


def test_the_demo_week(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        DEMO_CHART + "[labor.budgets]\n" + "".join(f'{k} = "{v}"\n' for k, v in BUDGETS.items())
    )
    f = tmp_path / "week.csv"
    f.write_bytes(timecards())
    d = ["--data-dir", str(tmp_path / "hub"), "--config", str(cfg), "--json"]
    assert run(["ingest", str(f), "--apply", *d]) == 0
    capsys.readouterr()
    assert run(["labor", "budget", "--period", "2026-11", *d]) == 4
    rep = json.loads(capsys.readouterr().out)
    # ED: 10 shifts x 8 h x 45.00 + 5 x 2 h differential x 4.00 = 3640.00 (3 h OT held)
    # LAB: 9 shifts x 8 h x 45.00 + 2 h approved OT x 67.50 = 3375.00 (1 shift held)
    assert [(r["department"], r["actual"], r["alert"]) for r in rep["departments"]] == [
        ("ED", "3640.00", True),
        ("LAB", "3375.00", False),
    ]
    assert run(["workitems", "list", "--status", "open", *d]) == 0
    items = json.loads(capsys.readouterr().out)
    assert sorted((w["queue"], w["kind"]) for w in items) == [
        ("compliance", "expired_credential"),
        ("workforce", "unapproved_overtime"),
    ]
