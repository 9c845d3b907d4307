"""`isthmus analytics export`: the incremental feed of the analytics warehouse (issue 21).

Reads the hub through the store port and writes what changed since the last watermark to
the embedded DuckDB warehouse (`<data_dir>/analytics/warehouse.duckdb`) and to Parquet
files partitioned by period (`--out`, default `<data_dir>/analytics/parquet`); see
docs/analytics.md. Needs the `analytics` extra (pyarrow, duckdb): without it the command
says what to install and exits 2, like a configuration error.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from isthmus.analytics import export
from isthmus.analytics.warehouse import WAREHOUSE
from isthmus.app import Hub
from isthmus.cli.commands import Result

COMMANDS = ("analytics",)


def add_parsers(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add the `analytics export` command to the parser."""
    a = add("analytics", "finance analytics: export the warehouse feed (DuckDB, Parquet)")
    a.add_argument("action", choices=["export"])
    a.add_argument(
        "--out",
        type=Path,
        default=None,
        help="Parquet directory (default <data_dir>/analytics/parquet)",
    )
    a.add_argument(
        "--warehouse",
        type=Path,
        default=None,
        help="DuckDB file (default <data_dir>/analytics/warehouse.duckdb)",
    )
    a.add_argument(
        "--page", type=int, default=export.PAGE, help="entries and messages read per commit"
    )


def paths(hub: Hub, out: Path | None = None, warehouse: Path | None = None) -> tuple[Path, Path]:
    """The warehouse file and the Parquet directory of an export: the ones given, else the
    defaults under the data directory."""
    data = hub.settings.data_dir
    return (warehouse or data / WAREHOUSE, out or data / export.PARQUET)


def run_export(
    hub: Hub, out: Path | None = None, warehouse: Path | None = None, page: int = export.PAGE
) -> export.Report:
    """Run one incremental export of the store into the warehouse and the Parquet feed."""
    db, parquet = paths(hub, out, warehouse)
    return export.run(
        hub.store,
        warehouse=db,
        parquet=parquet,
        secret=hub.processor.secret,
        roles=export.roles_from(hub.settings),
        page=max(1, page),
    )


def dispatch(hub: Hub, args: argparse.Namespace) -> Result:
    """`isthmus analytics export`: the export's report; a missing extra or a warehouse of
    another version is a configuration error (exit 2)."""
    report = run_export(hub, args.out, args.warehouse, args.page)
    return report.as_dict(), _render, 0


def _render(d: dict[str, Any]) -> str:
    rows = ", ".join(f"{k} {v}" for k, v in d["rows"].items()) or "nothing new"
    marks = ", ".join(f"{k} {v}" for k, v in d["watermarks"].items())
    return (
        f"exported {d['total']} row(s) in {d['pages']} commit(s): {rows}; "
        f"{d['files']} file(s); watermarks {marks or 'none'}"
    )
