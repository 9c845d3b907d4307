"""`isthmus labor budget|payroll-posted`: labor cost against department budgets, and the
reversal of a pay period's accruals once payroll has posted (flows/labor.py).

`budget [--period YYYY-MM] [--json]` reads: each department of [labor.budgets], its
accrued labor cost for the period (this month by default), the variance (budget minus
actual) and the share used; exit 4 when a department has used `budget_alert` of its
budget or more (the alert), 0 otherwise, 2 for a bad period.
`payroll-posted --pay-period-end DATE [--payroll-id ID] [--posted-on DATE]` reverses every
accrual of that pay period, once (a second run reverses nothing); it needs a token with
finance-approver or admin once the hub is initialized.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, date, datetime

from isthmus.app import Hub
from isthmus.cli.commands import Result, UsageError, _table
from isthmus.flows.labor_budget import budget_report
from isthmus.flows.labor_payroll import reverse_pay_period
from isthmus.ledger.periods import is_period

COMMANDS = ("labor",)


def add_parsers(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add the `labor` command (budget, payroll-posted) to the parser."""
    p = add("labor", "labor cost: budget variance per department, payroll reversal of accruals")
    p.add_argument("action", choices=["budget", "payroll-posted"])
    p.add_argument("--period", help="budget: accounting period YYYY-MM (this month)")
    p.add_argument("--pay-period-end", help="payroll-posted: last day of the pay period")
    p.add_argument("--payroll-id", default="", help="payroll-posted: the ERP payroll run")
    p.add_argument("--posted-on", help="payroll-posted: date of the reversal (today)")


def _day(text: str | None, flag: str) -> date:
    if not text:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"{flag} must be YYYY-MM-DD, got {text!r}") from exc


def dispatch(hub: Hub, args: argparse.Namespace) -> Result:
    """`isthmus labor budget` (labor cost against department budgets, exit 4 on an alert) or
    `payroll-posted` (reverse the accruals of a posted pay period)."""
    s = hub.settings
    if args.action == "budget":
        period = args.period or datetime.now(UTC).strftime("%Y-%m")
        if not is_period(period):
            raise UsageError(f"--period must be YYYY-MM, got {period!r}")
        rows = budget_report(hub.store, s.labor, s.mappings, period)
        data = {
            "period": period,
            "threshold": str(s.labor.budget_alert),
            "departments": [
                {k: str(v) if not isinstance(v, bool | str) else v for k, v in asdict(r).items()}
                for r in rows
            ],
        }
        return data, _render, 4 if any(r.alert for r in rows) else 0
    if not args.pay_period_end:
        raise UsageError("payroll-posted needs --pay-period-end YYYY-MM-DD")
    end = _day(args.pay_period_end, "--pay-period-end")
    n, total = reverse_pay_period(
        hub.store,
        pay_period_end=end,
        payroll_id=args.payroll_id or f"pp-{end}",
        posted_on=_day(args.posted_on, "--posted-on"),
        calendar=hub.processor.calendar,
    )
    return (
        {"pay_period_end": str(end), "reversed": n, "amount": str(total)},
        lambda d: (
            f"pay period ending {d['pay_period_end']}: {d['reversed']} "
            f"accrual(s) reversed, {d['amount']}"
        ),
        0,
    )


def _render(d: dict[str, object]) -> str:
    rows = d["departments"]
    assert isinstance(rows, list)
    lines = [f"labor budget {d['period']} (alert at {d['threshold']} of budget)"]
    if not rows:
        return lines[0] + "\n  no department budgets ([labor.budgets])"
    lines.append(
        _table(
            [
                [
                    r["department"],
                    r["cost_center"],
                    r["budget"],
                    r["actual"],
                    r["variance"],
                    r["used"],
                    "ALERT" if r["alert"] else "",
                ]
                for r in rows
            ],
            ["department", "cost center", "budget", "actual", "variance", "used", ""],
        )
    )
    return "\n".join(lines)
