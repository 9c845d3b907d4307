"""Shared helpers of the analytics tests: a demo hub, its exports, DuckDB reads."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from isthmus.cli.main import run

duckdb = pytest.importorskip("duckdb")


def cli(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> Any:
    capsys.readouterr()
    rc = run([*argv, "--json"])
    out, err = capsys.readouterr()
    assert rc == code, (rc, out, err)
    return json.loads(out) if out.strip() else {"stderr": err}


def export(
    capsys: pytest.CaptureFixture[str], data: Path, conf: Path, *extra: str
) -> dict[str, Any]:
    got = cli(capsys, "analytics", "export", "--data-dir", str(data), "--config", str(conf), *extra)
    assert isinstance(got, dict)
    return got


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return [tuple(r) for r in con.execute(sql).fetchall()]
    finally:
        con.close()


def trial_balance(
    capsys: pytest.CaptureFixture[str], data: Path, conf: Path
) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    tb = cli(capsys, "ledger", "trial-balance", "--data-dir", str(data), "--config", str(conf))
    assert tb["balanced"] is True
    return {
        (r["account"], r["currency"]): (Decimal(r["debit"]), Decimal(r["credit"]))
        for r in tb["rows"]
    }


TB_SQL = "SELECT account, currency, sum(debit), sum(credit) FROM {src} GROUP BY account, currency"


def tb_of(rows: list[tuple[Any, ...]]) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    return {(a, c): (Decimal(d), Decimal(k)) for a, c, d, k in rows}


def parquet(out: Path, table: str) -> str:
    return (
        f"read_parquet('{out}/{table}/*/*.parquet', hive_partitioning = true, union_by_name = true)"
    )
