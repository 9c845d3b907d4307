"""Accrued labor cost read back: per service line, and per department against its budget.

Split from `flows.labor` (issue 17, the 400-line rule): what the labor accruals come to,
for `isthmus labor budget`, the `labor_budget` alert rule (`observe/alerts.py`) and the
labor column of `isthmus supply margin`. Reads only; nothing here posts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from isthmus.config import LaborSettings, Mappings
from isthmus.ledger import labor
from isthmus.store.ports import Store


def service_line_cost(store: Store, settings: LaborSettings) -> dict[tuple[str, str], Decimal]:
    """Accrued labor cost per (service line, period): the labor column of `isthmus supply
    margin`."""
    return labor.labor_by_service_line(
        store.entries(), [p.account for p in settings.pay_codes.values()]
    )


def budget_report(
    store: Store, settings: LaborSettings, mappings: Mappings, period: str
) -> list[labor.BudgetLine]:
    """Each budgeted department's accrued labor cost for `period` (YYYY-MM) against its
    budget ([labor.budgets]); `alert` once `budget_alert` of the budget is used."""
    accounts = [p.account for p in settings.pay_codes.values()]
    actual = labor.labor_cost(store.entries(), accounts, period)
    with store.transaction() as tx:
        ccs = {
            d: tx.mapping_override("department_cost_center", d)
            or mappings.department_cost_center.get(d, "")
            for d in settings.budgets
        }
    return labor.budget_variance(actual, settings.budgets, ccs, settings.budget_alert)


def budget_usage(
    store: Store, settings: LaborSettings, mappings: Mappings, now: float
) -> dict[str, tuple[float, float]]:
    """For the alert rule `labor_budget` (observe/alerts.py): each budgeted department's
    share of its budget used this month (UTC), with the alert threshold. Empty, and
    nothing read, when no budget is configured."""
    if not settings.budgets:
        return {}
    period = datetime.fromtimestamp(now, UTC).strftime("%Y-%m")
    threshold = float(settings.budget_alert)
    return {
        r.department: (float(r.used), threshold)
        for r in budget_report(store, settings, mappings, period)
        if r.budget
    }
