"""`isthmus analytics export` on the demo's day (issue 21): totals, increments, kill -9, PHI.

- The export reproduces, in DuckDB and in the Parquet files read back with DuckDB, the
  trial balance `isthmus ledger trial-balance` prints (every account and currency).
- A second export after more traffic (837 claims from the public corpus, a second 835)
  writes only the new rows; every row is there once.
- A SIGKILL between a page's files and its commit, then a rerun: no duplicate, no gap.
- No exported column, in DuckDB or Parquet, carries a PHI value of the demo's messages.
- Without pyarrow/duckdb the command names the extra and exits 2.
Runs on the embedded adapters, and on PostgreSQL when the suite runs in scale-out mode.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from isthmus.app import Hub
from isthmus.cli.main import run
from isthmus.config import load_settings
from isthmus.demo.remit835 import ClaimToPay, remittance_835
from isthmus.formats.hl7v2 import HL7ParseError, parse_message
from tests.analytics.helpers import (
    TB_SQL,
    cli,
    duckdb,
    export,
    parquet,
    query,
    tb_of,
    trial_balance,
)
from tests.chart import demo_config
from tests.flows.test_phi import leaks, phi_of
from tests.governance.test_phi_scan import x12_phi
from tests.support import wait_until

REPO = Path(__file__).resolve().parents[2]
X12 = (REPO / ".." / "shared" / "corpora" / "x12" / "linuxforhealth").resolve()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("analytics")
    data = root / "data"
    assert run(["demo", "--data-dir", str(data), "--messages", "400", "--json"]) == 0
    return data, demo_config(root)


def _lines_in_store(data: Path, conf: Path) -> set[tuple[str, int]]:
    hub = Hub.open(load_settings(conf, data_dir=data))
    try:
        return {
            (e.entry_key, i)
            for e in hub.store.entries(limit=1 << 30)
            for i in range(1, len(e.lines) + 1)
        }
    finally:
        hub.close()


def _exported(db: Path) -> list[tuple[str, int]]:
    return [(k, int(n)) for k, n in query(db, "SELECT entry_key, line_no FROM fact_journal_line")]


def test_export_reproduces_the_trial_balance(
    site: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data, conf = site
    got = export(capsys, data, conf)
    assert got["rows"]["fact_journal_line"] > 800 and got["rows"]["fact_charge"] > 300
    assert got["rows"]["fact_remit"] > 10 and got["rows"]["fact_adjustment"] > 10
    tb = trial_balance(capsys, data, conf)
    db = data / "analytics" / "warehouse.duckdb"
    assert tb_of(query(db, TB_SQL.format(src="fact_journal_line"))) == tb
    out = data / "analytics" / "parquet"
    assert tb_of(query(db, TB_SQL.format(src=parquet(out, "fact_journal_line")))) == tb
    # the other facts, read back from Parquet, against the ledger's accounts
    paid = query(db, f"SELECT sum(paid) FROM {parquet(out, 'fact_remit')}")[0][0]
    co = query(
        db,
        f"SELECT sum(amount) FROM {parquet(out, 'fact_adjustment')} WHERE category = 'contractual'",
    )[0][0]
    cash = query(
        db,
        f"SELECT sum(debit) FROM {parquet(out, 'fact_journal_line')} "
        "WHERE account = '1010' AND channel = 'x12'",
    )[0][0]
    assert paid == cash > 0  # 835 claim payments: debited to cash clearing
    assert co == tb[("4900", "USD")][0] - tb[("4900", "USD")][1] > 0  # allowances
    per_type = {
        t: (a, d, c)
        for t, a, d, c in query(
            db,
            f"SELECT c.transaction_type, sum(c.amount), sum(j.debit), sum(j.credit) FROM "
            f"{parquet(out, 'fact_charge')} c JOIN {parquet(out, 'fact_journal_line')} j "
            "ON j.causation_id = c.event_id AND j.account = '1200' GROUP BY ALL",
        )
    }
    (cg, cg_dr, _), (cd, _, cd_cr) = per_type["CG"], per_type["CD"]
    assert cg == cg_dr > 0 and cd == cd_cr > 0  # FT1 charges debit A/R, credits credit it
    net = query(
        db, "SELECT sum(amount) FROM fact_journal_line WHERE account = '1200' AND channel = 'mllp'"
    )[0][0]
    assert net == cg - cd  # the rest of the feed's A/R lines (merges) move balances only
    assert query(db, "SELECT version FROM schema_version") == [(1,)]
    marks = dict(query(db, "SELECT source, position FROM watermark"))
    assert marks == got["watermarks"] and marks["journal"] > 0 and marks["inbox"] > 0
    periods = {p.name for p in (out / "fact_journal_line").iterdir()}
    assert periods and all(p.startswith("period=") for p in periods)
    roles = dict(query(db, "SELECT account, role FROM dim_account"))
    assert roles["1200"] == "ar" and roles["4900"] == "contractual"
    assert roles["6200"] == "supply_expense" and roles["5100"] == "labor_expense"
    assert query(db, "SELECT count(*) FROM fact_supply_usage")[0][0] > 0
    assert query(db, "SELECT count(*) FROM fact_labor_accrual")[0][0] > 0
    again = export(capsys, data, conf)
    assert again["total"] == 0 and again["watermarks"] == got["watermarks"]


def _more_traffic(capsys: pytest.CaptureFixture[str], data: Path, conf: Path) -> None:
    claims = sorted(X12.glob("837_005010X222A2/*"))[:4]
    assert claims, f"no 837 corpus at {X12}"
    for path in claims:
        rc = run(
            [
                "ingest",
                str(path),
                "--apply",
                "--data-dir",
                str(data),
                "--config",
                str(conf),
                "--json",
            ]
        )
        assert rc in (0, 1)
    capsys.readouterr()
    tokens = query(
        data / "analytics" / "warehouse.duckdb",
        "SELECT DISTINCT account_token FROM fact_remit WHERE paid > 0 LIMIT 1",
    )
    assert tokens
    hub = Hub.open(load_settings(conf, data_dir=data))
    try:
        accounts = sorted(
            {
                parse_message(m.raw).get("PID-18.1")
                for m in hub.store.messages(limit=100_000)
                if m.message_type.startswith("DFT")
            }
            - {""}
        )[:3]
    finally:
        hub.close()
    path = data.parent / "second.835"
    path.write_bytes(
        remittance_835(
            [ClaimToPay(a, Decimal("100.00")) for a in accounts],
            day=date(2026, 11, 9),
            control=835777,
            denied=1,
        )
    )
    cli(capsys, "ingest", str(path), "--apply", "--data-dir", str(data), "--config", str(conf))


def test_second_export_writes_only_the_new_rows(
    site: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data, conf = site
    db = data / "analytics" / "warehouse.duckdb"
    export(capsys, data, conf)
    before = _exported(db)
    out = data / "analytics" / "parquet"
    files = {p: p.stat().st_mtime_ns for p in out.glob("fact_*/period=*/*.parquet")}
    _more_traffic(capsys, data, conf)
    got = export(capsys, data, conf)
    after = _exported(db)
    assert len(after) == len(set(after)), "a row exported twice"
    store_lines = _lines_in_store(data, conf)
    assert set(after) == store_lines, "a gap or a stray row"
    assert got["rows"]["fact_journal_line"] == len(store_lines) - len(before) > 0
    assert got["rows"]["fact_remit"] == 3 and got["rows"]["fact_adjustment"] >= 3
    assert query(db, "SELECT count(*) FROM fact_remit WHERE denied")[0][0] == 2
    assert got["rows"]["fact_claim"] == 4  # the corpus's 837 claims
    states = dict(query(db, "SELECT state, count(*) FROM claim_state GROUP BY state"))
    assert states == {"submitted": 4}  # nothing remitted them
    kept = {p: p.stat().st_mtime_ns for p in files}
    assert kept == files, "the first export's files were rewritten"
    tb = trial_balance(capsys, data, conf)
    assert tb_of(query(db, TB_SQL.format(src=parquet(out, "fact_journal_line")))) == tb


def test_kill9_during_an_export_leaves_no_duplicate_and_no_gap(
    site: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, conf = site
    db, out, marker = tmp_path / "wh.duckdb", tmp_path / "parquet", tmp_path / "marker"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("kill_export.py")),
            str(data),
            str(conf),
            str(db),
            str(out),
            str(marker),
        ],
        env=env,
        cwd=REPO,
    )
    try:
        wait_until(
            lambda: marker.exists() or proc.poll() is not None,
            timeout=120,
            what="the export to reach its third commit",
        )
        assert proc.poll() is None, "the export ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    committed = query(db, "SELECT count(*) FROM fact_journal_line")[0][0]
    assert committed > 0, "two pages committed before the kill"
    mark = dict(query(db, "SELECT source, position FROM watermark"))["journal"]
    orphans = [
        p for p in out.glob("fact_journal_line/*/*.parquet") if int(p.stem.split("-")[2]) > mark
    ]  # <table>-<source>-<from>-<to>
    got = run(
        [
            "analytics",
            "export",
            "--data-dir",
            str(data),
            "--config",
            str(conf),
            "--warehouse",
            str(db),
            "--out",
            str(out),
            "--json",
        ]
    )
    assert got == 0
    assert orphans, "the killed page's files were written, above the committed watermark"
    rows = _exported(db)
    assert len(rows) == len(set(rows)) and set(rows) == _lines_in_store(data, conf)
    tb = trial_balance(capsys, data, conf)
    assert tb_of(query(db, TB_SQL.format(src=parquet(out, "fact_journal_line")))) == tb
    in_files = query(db, f"SELECT entry_key, line_no FROM {parquet(out, 'fact_journal_line')}")
    assert len(in_files) == len(set(in_files)) == len(rows)
    charges = query(
        db, f"SELECT count(*), count(DISTINCT event_id) FROM {parquet(out, 'fact_charge')}"
    )[0]
    assert charges[0] == charges[1] == query(db, "SELECT count(*) FROM fact_charge")[0][0]


def _phi(data: Path, conf: Path) -> set[str]:
    hub = Hub.open(load_settings(conf, data_dir=data))
    try:
        raws = [m.raw for m in hub.store.messages(limit=100_000) if m.raw]
    finally:
        hub.close()
    found = phi_of(raws)
    x12 = {v for raw in raws if raw.lstrip().startswith(b"ISA") for v in x12_phi(raw)}
    assert x12, "the 837s' patients and subscribers are searched for too"
    found |= x12
    for raw in raws:
        try:
            account = parse_message(raw).get("PID-18.1").strip()
        except HL7ParseError:
            continue
        if len(account) >= 4:
            found.add(account)  # the billing account number: never exported either
    return found


def test_no_exported_column_carries_phi(
    site: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data, conf = site
    export(capsys, data, conf)
    phi = _phi(data, conf)
    assert len(phi) > 50, "the scan must not be vacuous"
    con = duckdb.connect(str(data / "analytics" / "warehouse.duckdb"), read_only=True)
    try:
        texts = []
        for (table,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall():
            for row in con.execute(f"SELECT * FROM {table}").fetchall():
                texts.append(" ".join(str(v) for v in row))
        for path in (data / "analytics" / "parquet").rglob("*.parquet"):
            for row in con.execute(f"SELECT * FROM read_parquet('{path}')").fetchall():
                texts.append(" ".join(str(v) for v in row))
    finally:
        con.close()
    assert len(texts) > 1000
    found = {v for t in texts for v in leaks(t, phi)}
    assert not found, f"PHI in the analytics export: {sorted(found)[:5]}"


def test_without_the_extra_the_cli_names_it_and_exits_2(
    site: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data, conf = site
    monkeypatch.setitem(sys.modules, "duckdb", None)
    err = cli(
        capsys, "analytics", "export", "--data-dir", str(data), "--config", str(conf), code=2
    )["stderr"]
    assert "isthmus[analytics]" in err and "duckdb" in err


def test_a_warehouse_of_another_schema_version_is_refused(
    site: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, conf = site
    db = tmp_path / "old.duckdb"
    export(capsys, data, conf, "--warehouse", str(db), "--out", str(tmp_path / "pq"))
    con = duckdb.connect(str(db))
    try:
        con.execute("UPDATE schema_version SET version = 0")
    finally:
        con.close()
    err = cli(
        capsys,
        "analytics",
        "export",
        "--data-dir",
        str(data),
        "--config",
        str(conf),
        "--warehouse",
        str(db),
        code=2,
    )["stderr"]
    assert "analytics schema 0" in err and "export into a new directory" in err
