"""Mapping drift (recon/drift.py): a department mapped to a cost center, or a charge code to
an account, that the ERP lacks becomes one `erp-mapping` work item per drift, on demand
(`isthmus erp drift`) and on `serve`'s schedule; pulling again adds nothing; the item is
resolved when the ERP has it again. Against the REST ERP stub (a real HTTP ERP)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from tests.chart import DEMO_CHART
from tests.connectors.erp.rest_stub import TOKEN, StubServer
from tests.support import await_until

from isthmus.app import Hub
from isthmus.cli.main import run
from isthmus.config import Settings, load_settings
from isthmus.connectors.erp_ports import MasterData
from isthmus.demo.chart import demo_mappings
from isthmus.recon.drift import DRIFT_KIND, DRIFT_QUEUE, Drift, find_drift
from isthmus.runtime import start


def _config(tmp_path: Path, base: str, extra: str = "") -> Path:
    token = tmp_path / "erp.token"
    token.write_text(TOKEN)
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(
        DEMO_CHART + f'[erp]\nkind = "rest"\nurl = "{base}"\ntoken_file = "{token}"\n{extra}'
    )
    return cfg


def _drift_items(settings: Settings) -> list[tuple[str, str, str]]:
    hub = Hub.open(settings)
    try:
        return [
            (w.key, w.queue, w.status)
            for w in hub.store.work_items(limit=1000)
            if w.kind == DRIFT_KIND
        ]
    finally:
        hub.close()


def test_find_drift_names_what_maps_to_the_missing_code() -> None:
    settings = Settings(data_dir=Path("/nonexistent"), mappings=demo_mappings())
    full = MasterData(
        {"1200": "A/R"}
        | {m.revenue_account: "rev" for m in settings.mappings.charge_codes.values()},
        {cc: "cc" for cc in settings.mappings.department_cost_center.values()},
        {},
    )
    assert find_drift(settings, full) == []
    cc = settings.mappings.department_cost_center["LAB"]
    partial = MasterData(
        {k: v for k, v in full.accounts.items() if k != "1200"},
        {k: v for k, v in full.cost_centers.items() if k != cc},
        {},
    )
    drift = find_drift(settings, partial)
    assert Drift("account", "1200", "posting.ar_account") in drift
    [lab] = [d for d in drift if d.kind == "cost_center"]
    assert lab.code == cc and "department LAB" in lab.mapped_from


def test_erp_drift_opens_one_item_per_drift_and_closes_it(
    tmp_path: Path, stub: StubServer, base: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path, base)
    data = tmp_path / "data"
    args = ["--data-dir", str(data), "--config", str(cfg)]
    books = stub.stub.tenant(base.rsplit("/", 1)[1])
    lab = books.cost_centers.pop("CC-4200")
    for _ in range(2):  # the second pull finds the same drift: no second item
        assert run(["erp", "drift", *args, "--json"]) == 4
        out = json.loads(capsys.readouterr().out)
        assert [(d["kind"], d["code"]) for d in out["drift"]] == [("cost_center", "CC-4200")]
    settings = load_settings(cfg, data_dir=data)
    assert _drift_items(settings) == [("cost_center:CC-4200", DRIFT_QUEUE, "open")]
    assert run(["erp", "drift", *args]) == 4
    text = capsys.readouterr().out
    assert "CC-4200" in text and "department LAB" in text and "DRIFT" in text
    assert run(["erp", "master-data", *args]) == 4
    capsys.readouterr()

    books.cost_centers["CC-4200"] = lab  # fixed in the ERP
    assert run(["erp", "drift", *args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["drift"] == [] and out["work_items_closed"] == ["cost_center:CC-4200"]
    assert _drift_items(settings) == [("cost_center:CC-4200", DRIFT_QUEUE, "resolved")]

    books.cost_centers.pop("CC-4200")  # and gone again: a new item
    assert run(["erp", "drift", *args, "--json"]) == 4
    capsys.readouterr()
    assert [s for *_x, s in _drift_items(settings)] == ["resolved", "open"]


def test_serve_pulls_master_data_on_its_schedule(
    tmp_path: Path, stub: StubServer, base: str
) -> None:
    cfg = _config(tmp_path, base, "master_data_every_s = 0.2\n")
    settings = load_settings(cfg, data_dir=tmp_path / "data")
    books = stub.stub.tenant(base.rsplit("/", 1)[1])
    del books.accounts["4100"]

    async def serve_a_while() -> None:
        hub = Hub.open(settings)
        running = await start(hub, role="worker", export_every_s=3600)
        try:
            await await_until(
                lambda: hub.store.work_items("open"),
                what="a drift work item from serve's master-data pull",
            )
            await asyncio.sleep(1.0)  # several more pulls
        finally:
            await running.stop()
            hub.close()

    asyncio.run(serve_a_while())
    assert _drift_items(settings) == [("account:4100", DRIFT_QUEUE, "open")]
