"""Usage CSV through `isthmus ingest` and FT1 supply lines through the processor (issue 8)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from isthmus.app import Hub
from isthmus.cli.main import run
from isthmus.config import load_settings
from isthmus.flows.files import USAGE, detect
from isthmus.flows.supply_state import Lineage
from isthmus.ledger.supply import OrderLine
from isthmus.model import Charge, Money, PatientRef
from isthmus.model.envelope import Envelope, Source
from tests.chart import DEMO_CHART

CONFIG = """
[mappings.department_cost_center]
OR = "CC-OR"
[supply.par_levels."STENT-01|OR"]
par = 10
reorder_point = 4
cost_center = "CC-OR"
unit_price = "12.50"
[supply.charge_items]
"SUP-STENT" = "STENT-01"
"""


def _site(tmp_path: Path) -> tuple[list[str], str]:
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(DEMO_CHART + CONFIG)
    data = tmp_path / "data"
    settings = load_settings(cfg, data_dir=data)
    dept = "OR"  # the site's own row, over the demo chart's
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
        with hub.store.transaction() as tx:
            flow.receive(
                tx,
                po="PO1",
                line="1",
                quantity=Decimal(6),
                received_on=date(2026, 3, 1),
                lineage=Lineage("GR1", "c1"),
            )
    finally:
        hub.close()
    return ["--data-dir", str(data), "--config", str(cfg)], dept


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> object:
    capsys.readouterr()
    assert run([*argv, "--json"]) == code
    return json.loads(capsys.readouterr().out)


def test_usage_csv_ingested_takes_stock_and_posts_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, dept = _site(tmp_path)
    csv = (
        f"usage_id,item,location,quantity,used_on,department,lot,patient_name\n"
        f"U1,STENT-01,OR,1,2026-03-02,{dept},L1,Jane Doe\n"
        f"U2,STENT-01,OR,1,2026-03-02,{dept},L2,Jane Doe\n"
    ).encode()
    assert detect(csv) == USAGE
    f = tmp_path / "usage.csv"
    f.write_bytes(csv)
    rows = _json(capsys, ["ingest", str(f), "--apply", *base])
    assert isinstance(rows, dict | list)
    again = tmp_path / "usage-again.csv"
    again.write_bytes(csv.replace(b"patient_name", b"note"))  # same usages, another file
    _json(capsys, ["ingest", str(again), "--apply", *base])
    d = _json(capsys, ["supply", "report", "--as-of", "2026-03-05", *base])
    assert isinstance(d, dict)
    assert d["stock_out_risk"][0]["on_hand"] == "4"
    assert [r["quantity"] for r in d["requisitions"]] == ["6"]
    entries = _json(capsys, ["ledger", "journal", "--limit", "1000", *base])
    text = json.dumps(entries)
    assert text.count("usage U1") == 1 and text.count("usage U2") == 1
    assert "Jane" not in text


def test_bad_usage_file_is_refused_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, dept = _site(tmp_path)
    f = tmp_path / "bad.csv"
    f.write_bytes(
        f"usage_id,item,location,quantity,used_on,department\n"
        f"U1,STENT-01,OR,1,2026-03-02,{dept}\nU2,STENT-01,OR,-1,2026-03-02,"
        f"{dept}\n".encode()
    )
    capsys.readouterr()
    run(["ingest", str(f), "--apply", "--json", *base])
    out = capsys.readouterr().out
    assert "row 3" in out and "quantity" in out
    d = _json(capsys, ["supply", "report", "--as-of", "2026-03-05", *base])
    assert isinstance(d, dict) and d["stock_out_risk"][0]["on_hand"] == "6"  # nothing taken


def test_ft1_supply_line_takes_stock(tmp_path: Path) -> None:
    base, _ = _site(tmp_path)
    settings = load_settings(Path(base[3]), data_dir=Path(base[1]))
    code = next(iter(settings.mappings.charge_codes))
    at = datetime(2026, 3, 2, tzinfo=UTC)
    charge = Charge(
        patient=PatientRef("M1", "H"),
        transaction_id="T9",
        transaction_type="CG",
        quantity=2,
        amount=Money(Decimal("900.00"), "USD"),
        charge_code=code,
        department="OR",
        facility="",
        service_date=date(2026, 3, 2),
        account_number="A100",
    )
    env = Envelope(
        event_id="e9",
        type="Charge",
        occurred_at=at,
        recorded_at=at,
        source=Source("mllp", "m9", "1"),
        correlation_id="mllp/m9",
        causation_id="m9",
        key="H|M1",
        payload=charge,
    )
    hub = Hub.open(settings)
    try:
        flow = hub.processor.supply
        assert flow is not None
        flow.policy.charge_items[code] = "STENT-01"  # the charge code is a supply item
        with hub.store.transaction() as tx:
            hub.processor.handle(tx, env, 1_800_000_000.0)
            hub.processor.handle(tx, env, 1_800_000_000.0)  # a resend takes nothing more
        assert flow.snapshot().book.quantity("STENT-01", "OR") == Decimal(4)
        lines = [ln for ln in hub.store.journal_lines() if ln.account == "6200"]
        assert [(ln.debit, ln.dims.cost_center) for ln in lines] == [(Decimal("25.00"), "CC-OR")]
    finally:
        hub.close()
