"""Supply reports (issue 8): unmatched invoices aging, stock-out risk, service-line margin.

* Unmatched supplier invoice lines (failed three-way match, nothing posted), aged from the
  invoice date into 0-30, 31-60, 61-90 and 90+ days, with counts and totals; `over_limit`
  lists those older than the limit (`isthmus supply report` exits 4 when there is one).
* Stock-out risk: every item x location with a par level whose stock is below par, with
  what is on order (open purchase-order quantity and requisitions); `at_risk` when stock is
  at or below the reorder point and nothing is on order.
* Open GRNI per purchase-order line (received, not yet invoiced).
* Service-line margin per (service line, period): revenue (credits to the revenue
  accounts), payments (cash applied, optional), supply cost (supply expense debits) and,
  once a workforce feed exists, labor cost passed in by the caller (`labor_cost`).

Pure: state and journal entries in, plain data out (decimals as strings for --json).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Final

from isthmus.flows.supply_state import SupplyPolicy, SupplyState
from isthmus.ledger.journal import JournalEntry

BUCKETS: Final = (("0-30", 0, 30), ("31-60", 31, 60), ("61-90", 61, 90), ("90+", 91, None))
ZERO = Decimal(0)


def _bucket(age: int) -> str:
    for name, low, high in BUCKETS:
        if age >= low and (high is None or age <= high):
            return name
    return BUCKETS[0][0]


def unmatched_aging(state: SupplyState, *, as_of: date, limit_days: int) -> dict[str, Any]:
    """Open unmatched supplier invoice lines aged from the invoice date into buckets, with
    counts, totals and those older than the limit."""
    items: list[dict[str, Any]] = []
    counts = {name: 0 for name, _, _ in BUCKETS}
    totals = {name: ZERO for name, _, _ in BUCKETS}
    for u in state.unmatched:
        if u.status != "open":
            continue
        age = max((as_of - u.invoiced_on).days, 0)
        amount = u.quantity * u.unit_price
        bucket = _bucket(age)
        counts[bucket] += 1
        totals[bucket] += amount
        items.append(
            {
                "invoice": u.invoice_id,
                "po": u.po,
                "line": u.line,
                "quantity": str(u.quantity),
                "unit_price": str(u.unit_price),
                "amount": str(amount),
                "invoiced_on": u.invoiced_on.isoformat(),
                "age_days": age,
                "bucket": bucket,
                "findings": list(u.findings),
            }
        )
    return {
        "items": items,
        "aging": {k: {"count": counts[k], "total": str(totals[k])} for k in counts},
        "over_limit": [x["invoice"] for x in items if x["age_days"] > limit_days],
    }


def stock_out_risk(state: SupplyState, policy: SupplyPolicy) -> list[dict[str, Any]]:
    """Every item x location with a par level and stock below par, with what is on order;
    `at_risk` when at or below the reorder point with nothing on order."""
    out = []
    for key, rule in sorted(policy.par_levels.items()):
        item, _, location = key.partition("|")
        on_hand = state.book.quantity(item, location)
        if on_hand >= rule.par:
            continue
        on_order = state.on_order(item, location)
        open_pos = sorted(
            {
                g.order.po
                for g in state.book.grni.values()
                if (g.order.item, g.order.location) == (item, location)
                and g.order.quantity > g.received
            }
        )
        out.append(
            {
                "item": item,
                "location": location,
                "on_hand": str(on_hand),
                "par": str(rule.par),
                "reorder_point": str(rule.reorder_point),
                "on_order": str(on_order),
                "open_pos": open_pos,
                "at_risk": on_hand <= rule.reorder_point and on_order == 0,
            }
        )
    return out


def open_grni(state: SupplyState) -> list[dict[str, Any]]:
    """Purchase-order lines received but not yet (fully) invoiced: goods received not invoiced."""
    return [
        {
            "po": g.order.po,
            "line": g.order.line,
            "item": g.order.item,
            "uninvoiced": str(g.uninvoiced),
            "open_value": str(g.open_value),
        }
        for _, g in sorted(state.book.grni.items())
        if g.open_value or g.uninvoiced
    ]


def service_line_margin(
    entries: Iterable[JournalEntry],
    *,
    revenue_accounts: Iterable[str],
    supply_expense_account: str,
    payment_accounts: Iterable[str] = (),
    labor_cost: Mapping[tuple[str, str], Decimal] | None = None,
) -> list[dict[str, Any]]:
    """Revenue, payments, supply and labor cost and margin per (service line, period).

    `labor_cost` maps (service line, period) to labor cost from the workforce flow; the
    margin is revenue - supply - labor. Payments are shown, not netted (they are cash
    against the same revenue). Amounts of every currency are summed: one-currency sites.
    """
    revenue, payments = set(revenue_accounts), set(payment_accounts)
    rows: dict[tuple[str, str], dict[str, Decimal]] = {}

    def row(sl: str, period: str) -> dict[str, Decimal]:
        return rows.setdefault(
            (sl or "(none)", period),
            {"revenue": ZERO, "payments": ZERO, "supply": ZERO, "labor": ZERO},
        )

    for e in entries:
        for ln in e.lines:
            if ln.account in revenue:
                row(ln.dims.service_line, e.period)["revenue"] += ln.credit - ln.debit
            elif ln.account == supply_expense_account:
                row(ln.dims.service_line, e.period)["supply"] += ln.debit - ln.credit
            elif ln.account in payments:
                row(ln.dims.service_line, e.period)["payments"] += ln.debit - ln.credit
    for (sl, period), cost in (labor_cost or {}).items():
        row(sl, period)["labor"] += cost
    return [
        {
            "service_line": sl,
            "period": period,
            **{k: str(v) for k, v in r.items()},
            "margin": str(r["revenue"] - r["supply"] - r["labor"]),
        }
        for (sl, period), r in sorted(rows.items())
    ]


def supply_report(
    state: SupplyState, policy: SupplyPolicy, *, as_of: date, limit_days: int
) -> dict[str, Any]:
    """The supply report as plain data: unmatched invoice aging, stock-out risk, open GRNI and
    requisitions."""
    return {
        "as_of": as_of.isoformat(),
        "limit_days": limit_days,
        "unmatched": unmatched_aging(state, as_of=as_of, limit_days=limit_days),
        "stock_out_risk": stock_out_risk(state, policy),
        "open_grni": open_grni(state),
        "open_grni_total": str(state.book.open_grni),
        "requisitions": [
            {
                "req_id": r.req_id,
                "item": r.item,
                "location": r.location,
                "quantity": str(r.quantity),
                "cost_center": r.cost_center,
                "amount": str(r.amount),
                "status": r.status,
                "erp_id": r.erp_id,
            }
            for r in state.requisitions
        ],
    }
