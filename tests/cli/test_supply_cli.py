"""`isthmus supply report|margin|approve|reject` over a data directory (issue 8)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from isthmus.app import Hub
from isthmus.cli.main import run
from isthmus.config import load_settings
from isthmus.flows.supply_state import Lineage
from isthmus.ledger.supply import OrderLine
from isthmus.model.envelope import Envelope
from tests.chart import DEMO_CHART
from tests.flows.supply.test_supply_flow import env, usage

CONFIG = """
[supply]
price_tolerance = "0.02"
unmatched_limit_days = 10
[supply.budgets]
CC-OR = "20.00"
[supply.par_levels."STENT-01|OR"]
par = 10
reorder_point = 4
cost_center = "CC-OR"
unit_price = "12.50"
"""


def _site(tmp_path: Path) -> tuple[Path, Path]:
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(DEMO_CHART + CONFIG)
    data = tmp_path / "data"
    settings = load_settings(cfg, data_dir=data)
    hub = Hub.open(settings)
    try:
        flow = hub.processor.supply
        assert flow is not None
        with hub.store.transaction() as tx:
            flow.open_order(
                tx,
                OrderLine(
                    po="PO1",
                    line="1",
                    item="STENT-01",
                    location="OR",
                    quantity=Decimal(6),
                    unit_price=Decimal("12.50"),
                    currency="USD",
                    company="C100",
                    cost_center="CC-OR",
                ),
            )
        dept = next(iter(settings.mappings.department_cost_center))
        ev = usage(1, qty=2, dept=dept)
        e: Envelope = env(ev)
        with hub.store.transaction() as tx:
            flow.receive(
                tx,
                po="PO1",
                line="1",
                quantity=Decimal(6),
                received_on=date(2026, 3, 1),
                lineage=Lineage("GR1", "c1"),
            )
            assert flow.consume(tx, e, ev) == "posted"
            assert (
                flow.invoice(
                    tx,
                    po="PO1",
                    line="1",
                    quantity=Decimal(6),
                    unit_price=Decimal("14.00"),
                    currency="USD",
                    invoiced_on=date(2026, 3, 3),
                    lineage=Lineage("INV-9", "c2"),
                )
                == "held"
            )
    finally:
        hub.close()
    return cfg, data


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> object:
    capsys.readouterr()
    assert run([*argv, "--json"]) == code
    return json.loads(capsys.readouterr().out)


def test_report_ages_unmatched_and_shows_stock_out_risk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, data = _site(tmp_path)
    base = ["--data-dir", str(data), "--config", str(cfg)]
    d = _json(capsys, ["supply", "report", "--as-of", "2026-03-05", *base])
    assert isinstance(d, dict)
    assert [x["invoice"] for x in d["unmatched"]["items"]] == ["INV-9"]
    assert d["unmatched"]["aging"]["0-30"] == {"count": 1, "total": "84.00"}
    assert d["stock_out_risk"][0]["on_hand"] == "4" and d["open_grni_total"] == "75.00"
    [req] = d["requisitions"]
    assert req["status"] == "approval" and req["quantity"] == "6"
    late = _json(capsys, ["supply", "report", "--as-of", "2026-04-30", *base], code=4)
    assert isinstance(late, dict) and late["unmatched"]["over_limit"] == ["INV-9"]
    capsys.readouterr()
    assert run(["supply", "report", *base]) == 4
    assert "AT RISK" not in capsys.readouterr().out  # a requisition is on order
    assert run(["supply", "report", "--as-of", "yesterday", *base]) == 2


def _held(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[list[str], str, list[Any]]:
    """A site with a requisition held for its budget: the CLI's base arguments, its id,
    and the open work items."""
    cfg, data = _site(tmp_path)
    base = ["--data-dir", str(data), "--config", str(cfg)]
    d = _json(capsys, ["supply", "report", "--as-of", "2026-03-05", *base])
    assert isinstance(d, dict)
    items = _json(capsys, ["workitems", "list", "--status", "open", *base])
    assert isinstance(items, list)
    return base, str(d["requisitions"][0]["req_id"]), items


def test_approve_and_margin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, req_id, items = _held(tmp_path, capsys)
    assert [w["kind"] for w in items if w["queue"] == "procurement"] == [
        "budget_approval",
        "invoice_mismatch",
    ]
    assert run(["supply", "approve", req_id, *base]) == 0
    assert run(["supply", "approve", req_id, *base]) == 3
    items = _json(capsys, ["workitems", "list", "--status", "open", *base])
    assert isinstance(items, list)
    assert [w["kind"] for w in items if w["queue"] == "procurement"] == ["invoice_mismatch"]
    d = _json(capsys, ["supply", "report", "--as-of", "2026-03-05", *base])
    assert isinstance(d, dict) and d["requisitions"][0]["status"] == "pending"
    rows = _json(capsys, ["supply", "margin", *base])
    assert isinstance(rows, list)
    assert [(r["period"], r["supply"], r["margin"]) for r in rows] == [
        ("2026-03", "25.00", "-25.00")
    ]


def test_reject_releases_nothing_to_the_erp_and_closes_its_work_item(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, req_id, items = _held(tmp_path, capsys)
    [held] = [w for w in items if w["kind"] == "budget_approval"]
    assert run(["workitems", "resolve", str(held["id"]), *base]) == 2  # not resolved there
    assert f"supply approve|reject {req_id}" in capsys.readouterr().err
    assert run(["supply", "reject", req_id, *base]) == 2  # a reason is required
    assert run(["supply", "reject", req_id, "--reason", "not this quarter", *base]) == 0
    assert run(["supply", "reject", req_id, "--reason", "again", *base]) == 3
    assert run(["supply", "approve", req_id, *base]) == 3
    capsys.readouterr()
    d = _json(capsys, ["supply", "report", "--as-of", "2026-03-05", *base])
    assert isinstance(d, dict) and d["requisitions"][0]["status"] == "rejected"
    items = _json(capsys, ["workitems", "list", "--status", "open", *base])
    assert isinstance(items, list)
    assert "budget_approval" not in [w["kind"] for w in items]


def test_sync_without_a_tryton_erp_is_a_configuration_error(tmp_path: Path) -> None:
    cfg, data = _site(tmp_path)
    assert run(["supply", "sync", "--data-dir", str(data), "--config", str(cfg)]) == 2


def test_sync_with_tryton_unreachable_exits_1_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, data = _site(tmp_path)
    cfg.write_text(
        DEMO_CHART + CONFIG + '\n[erp]\nkind = "tryton"\nurl = "http://127.0.0.1:9"\n'
        'database = "none"\n'
    )
    d = _json(capsys, ["supply", "sync", "--data-dir", str(data), "--config", str(cfg)], 1)
    assert isinstance(d, dict) and d["sent"] == [] and "unreachable" in d["stopped"]
