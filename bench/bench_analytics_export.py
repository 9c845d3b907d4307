"""Analytics export rate (issue 21): `isthmus analytics export` against a plain peer.

Same run, same machine, same data: a demo hub (`isthmus demo`, `--messages N`) is
exported by `analytics.export.run` (journal + inbox facts, Parquet files and the DuckDB
warehouse, watermark commit), then the peer does what a quick script would: `SELECT` the
journal lines joined to their entries from the store's SQLite file, into pandas, and
`to_parquet` (pyarrow). Rows/s is journal lines (plus, for the hub, every fact row) over
wall time. pandas is in the `test` extra only.

    .venv/test/bin/python bench/bench_analytics_export.py --messages 4000
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa

from isthmus.analytics import export
from isthmus.analytics.warehouse import modules
from isthmus.app import Hub
from isthmus.cli.main import run
from isthmus.config import load_settings

PEER_SQL = ("SELECT l.entry_key, l.line_no, e.posted_on, e.period, e.channel, l.account, "
            "l.debit, l.credit, l.currency, l.company, l.cost_center, l.service_line, "
            "l.account_token FROM journal_lines l JOIN journal_entries e USING (entry_key)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=4000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "data"
        conf = root / "chart.toml"
        conf.write_text('[mappings]\ninclude = "demo"\n')
        assert run(["demo", "--data-dir", str(data), "--messages", str(args.messages),
                    "--json"]) == 0
        settings = load_settings(conf, data_dir=data)
        hub = Hub.open(settings)
        modules()  # both sides start with their libraries imported (pandas is, above)
        pa.array([Decimal("1.00")], type=pa.decimal128(20, 4))
        try:
            t = time.perf_counter()
            rep = export.run(hub.store, warehouse=root / "wh.duckdb", parquet=root / "pq",
                             secret=hub.processor.secret, roles=export.roles_from(settings))
            hub_s = time.perf_counter() - t
        finally:
            hub.close()
        t = time.perf_counter()
        with sqlite3.connect(data / "store.db") as con:
            frame = pd.read_sql_query(PEER_SQL, con)
        frame.to_parquet(root / "peer.parquet")
        peer_s = time.perf_counter() - t
    lines = rep.rows.get("fact_journal_line", 0)
    print(f"messages {args.messages}: journal lines {lines}, all fact rows {rep.total}")
    print(f"isthmus analytics export: {hub_s:.2f} s, {lines / hub_s:,.0f} journal lines/s, "
          f"{rep.total / hub_s:,.0f} fact rows/s (Parquet + DuckDB, watermark commit)")
    print(f"SELECT -> pandas -> to_parquet: {peer_s:.2f} s, {len(frame) / peer_s:,.0f} "
          f"journal lines/s (Parquet only, no watermark)")


if __name__ == "__main__":
    main()
