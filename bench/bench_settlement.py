"""Settlement CSV throughput: parsing a processor file, and taking it through the intake.

A generated DemoPay file (``--rows`` transactions, 500 per deposit, 2.9% + 0.30 fees),
parsed three times; the best run is kept, which damps the noise of a shared machine.

Workloads:
  parse        bytes -> SettlementFile: header lookup, every row's dates and Decimal
               money, gross - fee = net, per-deposit consistency
  intake       bytes -> the inbox record: parse, events, envelopes encoded as JSON

Usage: .venv/test/bin/python bench/bench_settlement.py [--rows N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from decimal import Decimal

from isthmus.flows.settlement_intake import csv_intake
from isthmus.formats.settlement import parse_settlement

HEADER = (
    "processor,deposit_id,deposit_date,transaction_id,transaction_date,type,"
    "account_number,gross,fee,net,currency"
)


def settlement_file(rows: int) -> bytes:
    lines = [HEADER]
    for i in range(rows):
        gross = Decimal(1000 + i % 5000) / 100
        fee = (gross * Decimal("0.029") + Decimal("0.30")).quantize(Decimal("0.01"))
        lines.append(
            f"DemoPay,D{i // 500},2026-11-04,T{i},2026-11-03,payment,"
            f"A{i % 9000:06d},{gross},{fee},{gross - fee},USD"
        )
    return ("\n".join(lines) + "\n").encode()


def best(fn: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=50_000)
    n = ap.parse_args().rows
    data = settlement_file(n)
    assert parse_settlement(data).ok
    for name, fn in (
        ("parse", lambda: parse_settlement(data)),
        (
            "intake",
            lambda: csv_intake(data, kind="settlement", peer="bench", now=0.0, tenant="bench"),
        ),
    ):
        s = best(fn)
        print(f"{name:<8} {n} rows in {s:.2f} s: {n / s:,.0f} rows/s")


if __name__ == "__main__":
    main()
