"""The `labor_budget/<department>` alert rule: fires once when a department reaches its
threshold, resolves once when it drops below (observe/alerts.py, flows/labor.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from isthmus.app import Hub
from isthmus.cli.main import run
from isthmus.config import AlertSettings, load_settings
from isthmus.flows.labor_budget import budget_usage
from isthmus.observe.alerts import AlertState, Inputs, evaluate, step
from tests.chart import DEMO_CHART

JAN = datetime(2026, 1, 20, tzinfo=UTC).timestamp()


def _inputs(usage: dict[str, tuple[float, float]]) -> Inputs:
    return Inputs({}, 0, 0, {}, False, usage)


def test_the_rule_is_edge_triggered() -> None:
    conf = AlertSettings()
    held = evaluate(_inputs({"ED": (0.95, 0.9), "LAB": (0.2, 0.9)}), conf)
    assert list(held) == ["labor_budget/ED"]
    assert held["labor_budget/ED"].labels == {"department": "ED"}
    state, new = step(AlertState(), held, 1.0)
    assert [(n.status, n.key) for n in new] == [("firing", "labor_budget/ED")]
    state, new = step(state, evaluate(_inputs({"ED": (0.97, 0.9)}), conf), 2.0)
    assert new == []
    state, new = step(state, evaluate(_inputs({"ED": (0.5, 0.9)}), conf), 3.0)
    assert [(n.status, n.key) for n in new] == [("resolved", "labor_budget/ED")]


def test_usage_from_the_ledger(tmp_path: Path) -> None:
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(
        DEMO_CHART + '[labor]\nbudget_alert = "0.5"\n[labor.budgets]\nED = "1000.00"\nLAB = "0"\n'
    )
    tc = tmp_path / "t.csv"
    tc.write_text(
        "shift_id,employee_id,department,work_date,regular_hours\nS1,E1,ED,2026-01-05,12\n"
    )  # 540.00 of 1000.00
    d = ["--data-dir", str(tmp_path / "hub"), "--config", str(cfg)]
    assert run(["ingest", str(tc), "--apply", *d]) == 0
    hub = Hub.open(load_settings(cfg, data_dir=tmp_path / "hub"))  # the mode `run` used
    try:
        s = hub.settings
        usage = budget_usage(hub.store, s.labor, s.mappings, JAN)
        assert usage == {"ED": (0.54, 0.5)}
        assert list(evaluate(_inputs(usage), AlertSettings())) == ["labor_budget/ED"]
        feb = datetime(2026, 2, 2, tzinfo=UTC).timestamp()
        assert budget_usage(hub.store, s.labor, s.mappings, feb) == {"ED": (0.0, 0.5)}
    finally:
        hub.close()
