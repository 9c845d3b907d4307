"""835 payments and processor deposits against what the bank shows: matched, and aging.

Three kinds of record (`store.ports.DepositRecord`, written by `flows.settlement`): 835
payments (BPR02 and TRN02, side "eft"), processor deposits (side "processor") and bank
credits (side "bank"). A bank credit matches an 835 payment or a processor deposit with
the same reference and amount. Here, as of a day:

* matched pairs, each with how many days the bank took after the payment date;
* what is unmatched, per side, aged from its own date (payment, deposit or bank date) into
  the buckets 0-30, 31-60, 61-90 and 90+ days, with counts and totals per currency. An
  unmatched 835 payment is money a payer says it sent that the bank has not shown; an
  unmatched bank credit is money nobody has explained yet;
* a hint when an unmatched bank credit has the reference of an unmatched payment or
  deposit but another amount (a partial or bundled deposit: for a person to look at);
* `over_limit`: the unmatched records older than the limit (`[settlement]
  match_limit_days`). `isthmus recon deposits` exits 4 when there is one.

Pure: records in, a report as plain data out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Final

from isthmus.store.ports import DepositRecord

BUCKETS: Final = (("0-30", 0, 30), ("31-60", 31, 60), ("61-90", 61, 90), ("90+", 91, None))
SIDES: Final = {
    "eft": "835 payments not in the bank",
    "processor": "processor deposits not in the bank",
    "bank": "bank deposits matching nothing",
}


def bucket_of(age_days: int) -> str:
    """The aging bucket (0-30, 31-60, 61-90, 90+ days) of an age in days; a negative age
    (dated after the as-of day) counts as new."""
    for name, low, high in BUCKETS:
        if age_days >= low and (high is None or age_days <= high):
            return name
    return BUCKETS[0][0]  # dated after the as-of day: counts as new


def _row(r: DepositRecord, as_of: date) -> dict[str, Any]:
    age = max(0, (as_of - r.on_date).days)
    return {
        "event_id": r.event_id,
        "side": r.side,
        "reference": r.reference,
        "amount": str(r.amount),
        "currency": r.currency,
        "date": r.on_date.isoformat(),
        "party": r.party,
        "age_days": age,
        "bucket": bucket_of(age),
        "correlation_id": r.correlation_id,
    }


def aging(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per bucket: count and total per currency (every bucket present, in order)."""
    out: dict[str, dict[str, Any]] = {b: {"count": 0, "total": {}} for b, _, _ in BUCKETS}
    for r in rows:
        cell = out[r["bucket"]]
        cell["count"] += 1
        total = Decimal(cell["total"].get(r["currency"], "0")) + Decimal(r["amount"])
        cell["total"][r["currency"]] = str(total)
    return out


def deposit_report(
    records: Sequence[DepositRecord], *, as_of: date, limit_days: int
) -> dict[str, Any]:
    """The matching status of every record as of `as_of` (see the module docstring)."""
    by_id = {r.event_id: r for r in records}
    matched = []
    for r in records:
        other = by_id.get(r.matched_with)
        if r.side == "bank" or other is None:
            continue
        matched.append(
            {
                "reference": r.reference,
                "side": r.side,
                "amount": str(r.amount),
                "currency": r.currency,
                "party": r.party,
                "paid_on": r.on_date.isoformat(),
                "bank_on": other.on_date.isoformat(),
                "days_to_bank": (other.on_date - r.on_date).days,
                "entry_key": r.entry_key,
                "event_id": r.event_id,
                "bank_event_id": other.event_id,
            }
        )
    open_rows = [_row(r, as_of) for r in records if not r.matched_with and r.on_date <= as_of]
    unmatched: dict[str, Any] = {}
    for side, title in SIDES.items():
        rows = sorted(
            (x for x in open_rows if x["side"] == side),
            key=lambda x: (-x["age_days"], x["reference"]),
        )
        unmatched[side] = {"title": title, "items": rows, "aging": aging(rows)}
    waiting = {(x["reference"], x["currency"]): x for x in open_rows if x["side"] != "bank"}
    hints = []
    for b in unmatched["bank"]["items"]:
        w = waiting.get((b["reference"], b["currency"]))
        if w is not None:
            hints.append(
                f"bank deposit {b['reference']} of {b['amount']} {b['currency']} on "
                f"{b['date']}: the {w['side']} with this reference is "
                f"{w['amount']} (differs by "
                f"{Decimal(b['amount']) - Decimal(w['amount'])})"
            )
    over = [x for x in open_rows if x["age_days"] > limit_days]
    return {
        "as_of": as_of.isoformat(),
        "limit_days": limit_days,
        "matched": matched,
        "unmatched": unmatched,
        "hints": hints,
        "over_limit": len(over),
        "oldest_unmatched_days": max((x["age_days"] for x in open_rows), default=0),
    }
