"""KPIs from the analytics facts (issue 21 item 4) against the inbox scan they replace.

A generated month (`--days` hospital days of `--messages` each from Oct 20, with their
835s and an ERP export every other day: tests/analytics/kpi_month.py, then `isthmus
analytics export`) and, on it:

- before: the inbox scan as first built (tests/observe/kpis_reference.py), what every
  /metrics recompute, alert round and console view cost;
- after, cold: `compute_kpis` with a new feed, from the store alone (what a process does
  once, at its first request, without the `analytics` extra), and from the warehouse plus
  the store's tail;
- after, warm: a request on a long-lived feed refreshed every time (max_age_s 0, the
  metrics cache's and the alert loop's), nothing new, then after one more day ingested.

Wall and process CPU time, best of `--rounds`. The test venv (the warehouse needs the
`analytics` extra):

    .venv/test/bin/python bench/bench_kpis.py --days 30 --messages 400
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from isthmus.analytics.feed import FactFeed, site_feed
from isthmus.app import Hub
from isthmus.cli.main import run
from isthmus.config import load_settings
from isthmus.observe.kpis import ALL, compute_kpis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' reference scan
from tests.analytics.kpi_month import add_day, month_days
from tests.observe.kpis_reference import scan_kpis


def _quiet(argv: list[str]) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return run(argv)


def _best(fn: Callable[[], object], rounds: int) -> tuple[float, float]:
    """(wall, process CPU) seconds of the fastest round."""
    best = (float("inf"), float("inf"))
    for _ in range(rounds):
        t, c = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - t, time.process_time() - c))
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--messages", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data, conf = root / "data", root / "chart.toml"
        conf.write_text('[mappings]\ninclude = "demo"\n')
        days = month_days(date(2026, 10, 20), args.days + 1)
        started = time.perf_counter()
        for day in days[:-1]:
            add_day(data, conf, day, args.messages)
        assert (
            _quiet(
                ["analytics", "export", "--data-dir", str(data), "--config", str(conf), "--json"]
            )
            == 0
        )
        print(f"built in {time.perf_counter() - started:.0f} s")
        hub = Hub.open(load_settings(conf, data_dir=data))
        try:
            store = hub.store
            now = datetime.now(UTC)
            k = scan_kpis(store, now)
            print(
                f"{len(store.inbox_after(0, 1 << 30))} messages, "
                f"{k.posted_charges + k.unposted_charges} charges "
                f"({k.posted_charges} posted), {k.remitted_claims} remitted claims, "
                f"{len(store.work_items(status='open', limit=ALL))} open work items"
            )
            rows = [
                (
                    "before: inbox scan, every request",
                    _best(lambda: scan_kpis(store, now), args.rounds),
                ),
                (
                    "after, cold: store alone (new feed)",
                    _best(lambda: compute_kpis(store, now, feed=FactFeed(store)), args.rounds),
                ),
                (
                    "after, cold: warehouse + store tail",
                    _best(
                        lambda: compute_kpis(store, now, feed=site_feed(store, data)), args.rounds
                    ),
                ),
            ]
            rows.append(
                (
                    "  of which: every work item read (before)",
                    _best(lambda: store.work_items(limit=ALL), args.rounds),
                )
            )
            warm = site_feed(store, data, max_age_s=0.0)
            compute_kpis(store, now, feed=warm)
            rows.append(
                (
                    "after, warm: nothing new",
                    _best(lambda: compute_kpis(store, now, feed=warm), args.rounds),
                )
            )
            rows.append(
                (
                    "  of which: the open work items read (after)",
                    _best(lambda: store.work_items(status="open", limit=ALL), args.rounds),
                )
            )
            add_day(data, conf, days[-1], args.messages)  # another process writes it
            rows.append(
                (
                    f"after, warm: one more day ({args.messages} messages)",
                    _best(lambda: compute_kpis(store, datetime.now(UTC), feed=warm), 1),
                )
            )
        finally:
            hub.close()
        for name, (wall, cpu) in rows:
            print(f"{name:<48} {wall * 1000:8.1f} ms (CPU {cpu * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
