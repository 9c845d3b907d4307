"""A generated month (issue 21): ten simulated hospital days from Oct 20 to Nov 14, taken
through `isthmus ingest --apply` in three rounds, each round followed by an incremental
export. Every export adds only its round's rows; in the end DuckDB and the Parquet files
read back hold the trial balance and the Supply page's service-line margin, period by
period, and the files are partitioned by both months."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.demo.ehr_day import hospital_day
from isthmus.flows.labor_budget import service_line_cost
from isthmus.recon.supply import service_line_margin
from tests.analytics.helpers import TB_SQL, cli, export, parquet, query, tb_of, trial_balance
from tests.chart import demo_config

DAYS = [date(2026, 10, 20) + timedelta(days=3 * i) for i in range(10)]


def _ingest(capsys: pytest.CaptureFixture[str], data: Path, conf: Path, day: date) -> None:
    msgs = hospital_day(
        messages=120,
        seed=day.toordinal(),
        day=day,
        malformed=1,
        unmapped=1,
        unsupported=1,
        control_prefix=f"M{day:%m%d}",
    )
    path = data.parent / f"day-{day.isoformat()}.hl7"
    path.write_bytes(b"".join(m.raw for m in msgs))
    cli(
        capsys,
        "ingest",
        str(path),
        "--apply",
        "--data-dir",
        str(data),
        "--config",
        str(conf),
        code=1,
    )  # the malformed one makes the file's exit code 1


def _journal_lines(data: Path, conf: Path) -> int:
    hub = Hub.open(load_settings(conf, data_dir=data))
    try:
        return sum(len(e.lines) for e in hub.store.entries(limit=1 << 30))
    finally:
        hub.close()


def test_a_generated_month_exports_incrementally_and_adds_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, conf = tmp_path / "data", demo_config(tmp_path)
    exported = 0
    for chunk in (DAYS[:3], DAYS[3:7], DAYS[7:]):
        for day in chunk:
            _ingest(capsys, data, conf, day)
        got = export(capsys, data, conf)
        lines = _journal_lines(data, conf)
        assert got["rows"]["fact_journal_line"] == lines - exported > 0
        exported = lines
    db, out = data / "analytics" / "warehouse.duckdb", data / "analytics" / "parquet"
    assert query(db, "SELECT count(*) FROM fact_journal_line")[0][0] == exported
    tb = trial_balance(capsys, data, conf)
    assert tb_of(query(db, TB_SQL.format(src="fact_journal_line"))) == tb
    assert tb_of(query(db, TB_SQL.format(src=parquet(out, "fact_journal_line")))) == tb
    parts = {p.name for p in (out / "fact_journal_line").iterdir()}
    assert {"period=2026-10", "period=2026-11"} <= parts
    by_period = dict(
        query(
            db, f"SELECT period, count(*) FROM {parquet(out, 'fact_journal_line')} GROUP BY period"
        )
    )
    assert by_period == dict(
        query(db, "SELECT period, count(*) FROM fact_journal_line GROUP BY period")
    )

    from isthmus.analytics.executive import read  # noqa: PLC0415 - needs the extra

    hub = Hub.open(load_settings(conf, data_dir=data))
    try:
        d = read(db, hub.store, DAYS[-1])
        revenue = {m.revenue_account for m in hub.settings.mappings.charge_codes.values()}
        shown = service_line_margin(
            hub.store.entries(),
            revenue_accounts=revenue,
            supply_expense_account="6200",
            labor_cost=service_line_cost(hub.store, hub.settings.labor),
        )
    finally:
        hub.close()
    want = {(m["service_line"], m["period"]): Decimal(m["margin"]) for m in shown}
    got_margin = {
        (m["service_line"], m["period"]): Decimal(m["gross_margin"])
        for m in d["margin"]
        if m["service_line"] != "(unallocated)"
    }
    assert got_margin == want
    assert {p for _sl, p in want} >= {"2026-10", "2026-11"}
