"""`isthmus recon deposits [--as-of DATE] [--limit-days N]`: 835 payments and processor
deposits against the bank, matched and aging (`recon.deposits`).

Read only. Exit 0 when nothing unmatched is older than the limit (`[settlement]
match_limit_days`, or `--limit-days`), 4 when something is, 2 for a bad date.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from typing import Any

from isthmus.app import Hub
from isthmus.cli.commands import Result, UsageError, _table
from isthmus.config import Settings
from isthmus.recon.deposits import BUCKETS, deposit_report


def recon_deposits(settings: Settings, args: argparse.Namespace) -> Result:
    """`isthmus recon deposits`: match 835 payments and processor deposits to the bank,
    aging what is unmatched as of a day; exit 4 when an item is older than the limit."""
    try:
        as_of = date.fromisoformat(args.as_of) if args.as_of else datetime.now(UTC).date()
    except ValueError as exc:
        raise UsageError(f"--as-of must be YYYY-MM-DD, got {args.as_of!r}") from exc
    limit = settings.settlement.match_limit_days if args.limit_days is None else args.limit_days
    if limit < 0:
        raise UsageError("--limit-days must be 0 or more")
    hub = Hub.open(settings)
    try:
        d = deposit_report(hub.store.deposit_records(), as_of=as_of, limit_days=limit)
    finally:
        hub.close()
    return d, render, 4 if d["over_limit"] else 0


def _totals(cell: dict[str, Any]) -> str:
    return " ".join(f"{v} {k}" for k, v in sorted(cell["total"].items())) or "-"


def render(d: dict[str, Any]) -> str:
    """The deposit report as text: the matched deposits, then each side's unmatched items
    with their age bucket."""
    out = [f"deposits as of {d['as_of']} (limit {d['limit_days']} days)", ""]
    m = [
        [
            x["reference"],
            x["side"],
            x["party"],
            x["amount"],
            x["currency"],
            x["paid_on"],
            x["bank_on"],
            x["days_to_bank"],
        ]
        for x in d["matched"]
    ]
    out += [
        f"matched: {len(m)}",
        _table(m, ["reference", "side", "from", "amount", "cur", "paid", "in bank", "days"])
        if m
        else "  none",
        "",
    ]
    names = [b for b, _, _ in BUCKETS]
    for side in d["unmatched"].values():
        items = side["items"]
        out.append(f"{side['title']}: {len(items)}")
        if items:
            out.append(
                _table(
                    [
                        [
                            x["reference"],
                            x["party"],
                            x["amount"],
                            x["currency"],
                            x["date"],
                            x["age_days"],
                            x["bucket"],
                        ]
                        for x in items
                    ],
                    ["reference", "from", "amount", "cur", "date", "age", "bucket"],
                )
            )
            out.append(
                _table(
                    [[b, side["aging"][b]["count"], _totals(side["aging"][b])] for b in names],
                    ["age (days)", "count", "total"],
                )
            )
        out.append("")
    out += [f"hint: {h}" for h in d["hints"]]
    out.append(
        f"OVER LIMIT: {d['over_limit']} unmatched item(s) older than {d['limit_days']} days"
        if d["over_limit"]
        else "nothing unmatched is older than the limit"
    )
    return "\n".join(out)
