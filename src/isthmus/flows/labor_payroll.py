"""Payroll posted -> the labor accruals of its pay period reversed, once each.

Split from `flows.labor` (issue 17, the 400-line rule): the accruals `flows.labor` posts
per shift stand until payroll posts the real wages; then each accrual of the pay period is
reversed by a new entry naming it (`REVERSAL_PREFIX` + its key, never an edit), so a
replayed `PayrollPosted` or a second `isthmus labor payroll-posted` reverses nothing twice.
The reversals are built without the store (`reversals`); the event's decision claims them
(`Reversals`, `flows.labor`), the command inserts them (`reverse_accruals`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


def reversals(
    accruals: Sequence[JournalEntry], *, payroll_id: str, posted_on: date, calendar: FiscalCalendar
) -> tuple[JournalEntry, ...]:
    """The reversal of each accrual (its key names the accrual), without the store.
    ClosedPeriod when `posted_on` is in a closed period under the reject policy."""
    where = calendar.assign(posted_on)
    return tuple(
        reverse(
            e,
            entry_key=f"{REVERSAL_PREFIX}{e.entry_key}",
            posted_on=where.posted_on,
            period=where.period,
            causation_id=f"workforce:payroll:{payroll_id}",
        )
        for e in accruals
    )


@dataclass(frozen=True, slots=True)
class Reversals:
    """A payroll's reversals as the claim of its `flows.decision.Decision`: each is inserted
    once (idempotent on its key); True when any was new, so a payroll that reverses nothing
    new is a duplicate (`LaborFlow.handle` answers it applied, as it always did)."""

    entries: tuple[JournalEntry, ...]

    def write(self, tx: Tx, now: float) -> bool:
        new = False
        for rev in self.entries:
            new = tx.insert_entry(rev) or new
        return new


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
    n, total = 0, Decimal(0)
    revs = reversals(accruals, payroll_id=payroll_id, posted_on=posted_on, calendar=calendar)
    for e, rev in zip(accruals, revs, strict=True):
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
