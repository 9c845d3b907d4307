"""Analytics export rate (issue 21): `isthmus analytics export` against a plain peer.

Same run, same machine, same data: a demo hub (`isthmus demo`, `--messages N`) is
exported by `analytics.export.run` (journal + inbox facts, Parquet files and the DuckDB
warehouse, watermark commit), then the peer does what a quick script would: `SELECT` the
journal lines joined to their entries from the store's SQLite file, into pandas, and
`to_parquet` (pyarrow). Rows/s is journal lines (plus, for the hub, every fact row) over
wall time, the best of `--rounds` (each round a new warehouse and new files, both sides
alternating, so a busy machine slows both alike); the process CPU time (DuckDB's and
pyarrow's threads included) is printed beside it, steadier than wall time on a shared
machine. pandas is in the `test` extra only.

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

PEER_SQL = (
    "SELECT l.entry_key, l.line_no, e.posted_on, e.period, e.channel, l.account, "
    "l.debit, l.credit, l.currency, l.company, l.cost_center, l.service_line, "
    "l.account_token FROM journal_lines l JOIN journal_entries e USING (entry_key)"
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "data"
        conf = root / "chart.toml"
        conf.write_text('[mappings]\ninclude = "demo"\n')
        assert (
            run(["demo", "--data-dir", str(data), "--messages", str(args.messages), "--json"]) == 0
        )
        settings = load_settings(conf, data_dir=data)
        hub = Hub.open(settings)
        modules()  # both sides start with their libraries imported (pandas is, above)
        pa.array([Decimal("1.00")], type=pa.decimal128(20, 4))
        hub_s = peer_s = hub_cpu = peer_cpu = float("inf")
        try:
            for n in range(max(1, args.rounds)):
                t, c = time.perf_counter(), time.process_time()
                rep = export.run(
                    hub.store,
                    warehouse=root / f"wh{n}.duckdb",
                    parquet=root / f"pq{n}",
                    secret=hub.processor.secret,
                    roles=export.roles_from(settings),
                )
                hub_s = min(hub_s, time.perf_counter() - t)
                hub_cpu = min(hub_cpu, time.process_time() - c)
                t, c = time.perf_counter(), time.process_time()
                with sqlite3.connect(data / "store.db") as con:
                    frame = pd.read_sql_query(PEER_SQL, con)
                frame.to_parquet(root / f"peer{n}.parquet")
                peer_s = min(peer_s, time.perf_counter() - t)
                peer_cpu = min(peer_cpu, time.process_time() - c)
        finally:
            hub.close()
    lines = rep.rows.get("fact_journal_line", 0)
    print(
        f"messages {args.messages}: journal lines {lines}, all fact rows {rep.total}, "
        f"best of {max(1, args.rounds)}"
    )
    print(
        f"isthmus analytics export: {hub_s:.2f} s, {lines / hub_s:,.0f} journal lines/s, "
        f"{rep.total / hub_s:,.0f} fact rows/s (Parquet + DuckDB, watermark commit); "
        f"CPU {hub_cpu:.2f} s"
    )
    print(
        f"SELECT -> pandas -> to_parquet: {peer_s:.2f} s, {len(frame) / peer_s:,.0f} "
        f"journal lines/s (Parquet only, no watermark); CPU {peer_cpu:.2f} s"
    )


if __name__ == "__main__":
    main()
