"""Payroll posted -> the labor accruals of its pay period reversed, once each.

Split from `flows.labor` (issue 17, the 400-line rule): the accruals `flows.labor` posts
per shift stand until payroll posts the real wages; then each accrual of the pay period is
reversed by a new entry naming it (`REVERSAL_PREFIX` + its key, never an edit), so a
replayed `PayrollPosted` or a second `isthmus labor payroll-posted` reverses nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from isthmus.ledger import labor
from isthmus.ledger.journal import JournalEntry, reverse
from isthmus.ledger.periods import FiscalCalendar
from isthmus.store.ports import Store, Tx

REVERSAL_PREFIX = "labor:reversal:"


def pay_period_accruals(store: Store, pay_period_end: date) -> list[JournalEntry]:
    """The labor accruals of the pay period ending `pay_period_end` (committed ones)."""
    return [e for e in store.entries() if labor.is_accrual(e) and e.posted_on == pay_period_end]


def reverse_accruals(
    tx: Tx,
    accruals: Sequence[JournalEntry],
    *,
    payroll_id: str,
    posted_on: date,
    calendar: FiscalCalendar,
) -> tuple[int, Decimal]:
    """Reverse each accrual once (the reversal's key names it); (entries reversed, amount).
    ClosedPeriod when `posted_on` is in a closed period under the reject policy."""
    where = calendar.assign(posted_on)
    n, total = 0, Decimal(0)
    for e in accruals:
        rev = reverse(
            e,
            entry_key=f"{REVERSAL_PREFIX}{e.entry_key}",
            posted_on=where.posted_on,
            period=where.period,
            causation_id=f"workforce:payroll:{payroll_id}",
        )
        if tx.insert_entry(rev):
            n += 1
            total += sum((x.credit for x in e.lines), Decimal(0))
    return n, total


def reverse_pay_period(
    store: Store,
    *,
    pay_period_end: date,
    payroll_id: str,
    posted_on: date,
    calendar: FiscalCalendar,
) -> tuple[int, Decimal]:
    """Payroll for the pay period ending `pay_period_end` has posted (`isthmus labor
    payroll-posted`): reverse each of its accruals, once."""
    accruals = pay_period_accruals(store, pay_period_end)
    with store.transaction() as tx:
        return reverse_accruals(
            tx, accruals, payroll_id=payroll_id, posted_on=posted_on, calendar=calendar
        )
