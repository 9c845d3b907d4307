"""Reconcile the hub ledger with the ERP: balances per (account, cost center) and period,
and control totals per batch.

Hub side: every journal line of the period (the hub's trial balance, split by cost center).
ERP side: posted amounts read back from the ERP (`ErpPort.balances`, Tryton: posted moves
only). The variance is hub minus ERP per key; entries not yet delivered (unsealed, or in a
batch still in the outbox) explain a variance, and are reported as `in_transit`, but a
non-zero variance is still a variance: `isthmus recon erp` exits 4 until it is zero.

Per batch: the hub's control totals (lines, debit, credit) beside the moves the ERP holds
for it (by source reference), so a missing or partial batch is named.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec

from isthmus.ledger.batch import JournalBatch
from isthmus.ledger.batch_codec import POSTING_FORMATS
from isthmus.ledger.supply import MIRROR_CHANNELS
from isthmus.ports.erp import BalanceKey, ErpPort, move_specs
from isthmus.store.ports import Store

_batch = msgspec.json.Decoder(JournalBatch)


def hub_balances(
    store: Store, period: str | None
) -> tuple[dict[BalanceKey, Decimal], dict[BalanceKey, Decimal]]:
    """(all journal lines, those not yet sealed into a batch) per (account, cost center).

    Mirror entries (what the ERP posts itself, `ledger.supply.MIRROR_CHANNELS`) are never
    sealed, and are not in transit either: the ERP's own document is their other side."""
    total: dict[BalanceKey, Decimal] = {}
    unsealed: dict[BalanceKey, Decimal] = {}
    entries = store.entries(limit=100_000_000)
    sealed = store.entry_batches([e.entry_key for e in entries])
    for e in entries:
        if period is not None and e.period != period:
            continue
        for x in e.lines:
            key = (x.account, x.dims.cost_center)
            total[key] = total.get(key, Decimal(0)) + x.debit - x.credit
            if e.entry_key not in sealed and e.channel not in MIRROR_CHANNELS:
                unsealed[key] = unsealed.get(key, Decimal(0)) + x.debit - x.credit
    return total, unsealed


def batch_controls(
    store: Store,
    posted: set[str],
    period: str | None,
    batches: Sequence[JournalBatch] | None = None,
) -> list[dict[str, Any]]:
    """Per sealed batch: hub control totals, moves expected and moves found in the ERP."""
    status = {}
    for item in store.outbox_items():
        if item.fmt in POSTING_FORMATS:  # one row per batch (the csv twin of old rows aside)
            status[item.batch_id] = item.status
    out = []
    if batches is None:
        batches = [
            _batch.decode(b)
            for bid, *_ in store.batches()
            if (b := store.batch_body(bid)) is not None
        ]
    for batch in batches:
        if period is not None and all(x.period != period for x in batch.lines):
            continue
        refs = {s.reference for s in move_specs(batch)}
        found = len(refs & posted)
        out.append(
            {
                "batch_id": batch.batch_id,
                "policy": batch.policy,
                "lines": len(batch.lines),
                "debit": str(sum((c.debit_total for c in batch.control), Decimal(0))),
                "credit": str(sum((c.credit_total for c in batch.control), Decimal(0))),
                "outbox": status.get(batch.batch_id, "none"),
                "moves": len(refs),
                "moves_in_erp": found,
                "state": "posted" if found == len(refs) else "partial" if found else "missing",
            }
        )
    return out


def reconcile(store: Store, erp: ErpPort, period: str | None = None) -> dict[str, Any]:
    """Compare hub and ERP balances per account and cost center (for one period or all), with
    what is still in transit (unsealed entries, batches not yet posted) and each batch's
    control state."""
    hub, unsealed = hub_balances(store, period)
    erp_side = erp.balances(period)
    batches = [
        _batch.decode(b) for bid, *_ in store.batches() if (b := store.batch_body(bid)) is not None
    ]
    controls = batch_controls(store, erp.find_posted(), period, batches)
    undelivered = {c["batch_id"] for c in controls if c["state"] != "posted"}
    transit = dict(unsealed)
    for batch in batches:
        if batch.batch_id in undelivered:
            for x in batch.lines:
                if period is None or x.period == period:
                    key = (x.account, x.dims.cost_center)
                    transit[key] = transit.get(key, Decimal(0)) + x.debit - x.credit
    rows = []
    for key in sorted(set(hub) | set(erp_side)):
        h, e = hub.get(key, Decimal(0)), erp_side.get(key, Decimal(0))
        if h == 0 and e == 0:
            continue
        rows.append(
            {
                "account": key[0],
                "cost_center": key[1],
                "hub": str(h),
                "erp": str(e),
                "variance": str(h - e),
                "in_transit": str(transit.get(key, Decimal(0))),
            }
        )
    variance = sum((abs(Decimal(r["variance"])) for r in rows), Decimal(0))
    return {
        "period": period or "all",
        "rows": rows,
        "batches": controls,
        "absolute_variance": str(variance),
        "zero_variance": variance == 0,
    }
