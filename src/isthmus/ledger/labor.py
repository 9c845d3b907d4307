"""Labor accruals and the labor budget check: pure functions over hours, rates and entries.

A worked shift accrues its cost before payroll runs: DR salaries and wages expense (one
account per pay code: regular, overtime, shift differential, on-call) on the cost center
of the department worked, CR accrued payroll. Every accrual of a pay period is dated the
last day of that period, so an ERP summary batch (`ledger.batch`, summarized per day x
company x cost center x account) is exactly one line per pay period x cost center x pay
code. When payroll posts, each accrual of the period is cancelled by its reversal
(`journal.reverse`); the payroll journal itself is the ERP's.

Lines carry the cost center and company only: an employee is never named in a journal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from isthmus.ledger.currency import quantize
from isthmus.ledger.journal import Dimensions, JournalEntry, cr, dr, require_valid

CHANNEL = "workforce"
ACCRUAL_PREFIX = "labor:accrual:"


@dataclass(frozen=True)
class Rate:
    """What one hour of a pay code costs, and the expense account it is charged to."""

    rate: Decimal
    account: str


def pay_period_end(work_date: date, *, anchor: date, days: int) -> date:
    """The last day of the pay period holding `work_date` (periods of `days` from
    `anchor`, before or after it)."""
    offset = (work_date - anchor).days // days
    return anchor + timedelta(days=(offset + 1) * days - 1)


def shift_cost(
    hours: Mapping[str, Decimal], rates: Mapping[str, Rate], currency: str = "USD"
) -> dict[str, Decimal]:
    """Cost per pay code (hours x rate, to the cent), pay codes with no hours left out.
    KeyError names a pay code with hours and no rate."""
    out: dict[str, Decimal] = {}
    for code, h in hours.items():
        if h:
            out[code] = quantize(h * rates[code].rate, currency)
    return out


def accrual_entry(
    *,
    entry_key: str,
    costs: Mapping[str, Decimal],
    rates: Mapping[str, Rate],
    accrued_account: str,
    company: str,
    cost_center: str,
    posted_on: date,
    period: str,
    memo: str,
    correlation_id: str,
    causation_id: str,
    service_line: str = "",
    currency: str = "USD",
) -> JournalEntry:
    """DR wages expense per pay code on the cost center (and service line), CR accrued
    payroll: balanced, or `InvalidEntry` / `UnbalancedEntry`."""
    dims = Dimensions(company=company, cost_center=cost_center, service_line=service_line)
    lines = [
        dr(rates[code].account, amount, currency, dims) for code, amount in sorted(costs.items())
    ]
    lines.append(cr(accrued_account, sum(costs.values(), Decimal(0)), currency, dims))
    return require_valid(
        JournalEntry(
            entry_key=entry_key,
            posted_on=posted_on,
            period=period,
            channel=CHANNEL,
            memo=memo,
            lines=tuple(lines),
            correlation_id=correlation_id,
            causation_id=causation_id,
        )
    )


def is_accrual(entry: JournalEntry) -> bool:
    """True for a labor accrual entry itself, not for the reversal that cancels it at payroll."""
    return entry.entry_key.startswith(ACCRUAL_PREFIX) and entry.reverses is None


def labor_cost(
    entries: Iterable[JournalEntry], expense_accounts: Iterable[str], period: str
) -> dict[str, Decimal]:
    """Accrued labor cost per cost center in one accounting period (YYYY-MM): the net of
    the wages expense lines of the accruals. Payroll reversals are left out: once payroll
    posts, its own journal in the ERP carries the cost the accrual stood for."""
    accounts = set(expense_accounts)
    out: dict[str, Decimal] = {}
    for e in entries:
        if e.period != period or not is_accrual(e):
            continue
        for line in e.lines:
            if line.account in accounts:
                cc = line.dims.cost_center
                out[cc] = out.get(cc, Decimal(0)) + line.debit - line.credit
    return out


def labor_by_service_line(
    entries: Iterable[JournalEntry],
    expense_accounts: Iterable[str],
) -> dict[tuple[str, str], Decimal]:
    """Accrued labor cost per (service line, period), for the service-line margin report
    (`recon.supply.service_line_margin`); reversals left out as in `labor_cost`."""
    accounts = set(expense_accounts)
    out: dict[tuple[str, str], Decimal] = {}
    for e in entries:
        if not is_accrual(e):
            continue
        for line in e.lines:
            if line.account in accounts:
                key = (line.dims.service_line or "(none)", e.period)
                out[key] = out.get(key, Decimal(0)) + line.debit - line.credit
    return out


@dataclass(frozen=True)
class BudgetLine:
    """One department against its labor budget for a period. `variance` is budget minus
    actual (negative: over budget); `used` the fraction of the budget spent."""

    department: str
    cost_center: str
    budget: Decimal
    actual: Decimal
    variance: Decimal
    used: Decimal
    alert: bool


def budget_variance(
    actual_by_cost_center: Mapping[str, Decimal],
    budgets: Mapping[str, Decimal],
    cost_centers: Mapping[str, str],
    threshold: Decimal,
) -> list[BudgetLine]:
    """Each budgeted department (by name) against the accrued cost of its cost center; a
    department flags `alert` once it has used `threshold` (a fraction) of its budget."""
    rows = []
    for dept in sorted(budgets):
        budget, cc = budgets[dept], cost_centers.get(dept, "")
        actual = actual_by_cost_center.get(cc, Decimal(0)) if cc else Decimal(0)
        used = (actual / budget).quantize(Decimal("0.0001")) if budget else Decimal(0)
        rows.append(
            BudgetLine(
                dept,
                cc,
                budget,
                actual,
                budget - actual,
                used,
                bool(budget) and actual >= budget * threshold,
            )
        )
    return rows
