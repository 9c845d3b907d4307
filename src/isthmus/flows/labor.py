"""Workforce events -> labor accruals, work items and the labor budget check.

Mapping: employee -> department (the shift's own, else the feed's last transfer, else the
home department in [labor.employees], the ERP's master, read-only here) -> cost center ([mappings]
department_cost_center, with operator overrides) ; pay code -> rate and wages account
([labor.pay_codes]). Postings are `ledger.labor` accruals, one per shift, dated the end of
its pay period; the overtime of a shift is an accrual of its own, keyed by the shift, and
posts only with an approval (in the timecard, or an `OvertimeApproved`): until then it is a
work item in queue `workforce`. A shift worked after the employee's credential expired (the
expiry the timecard states, else the last `CredentialExpired` of the employee, cleared by a
`CredentialExpiring` of the same credential with a later date: a renewal) posts nothing:
it is a work item in queue `compliance`, as is each `CredentialExpired` and
`CredentialExpiring` event. An `EmployeeTransferred` moves the employee's shifts without a
department of their own to the new department from its effective day. Nothing posts
silently, nothing posts twice: entry keys come from the feed's keys and `insert_entry` is
idempotent on them.

When payroll posts (a `PayrollPosted` event, or `isthmus labor payroll-posted`), every
accrual of the pay period is reversed (a new entry naming it, never an edit), once. The
event reverses the accruals committed when it is applied; one that comes later is reversed
by replaying the event or by the command.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from isthmus.config import LaborSettings, Mappings
from isthmus.flows.errors import PermanentError
from isthmus.ledger import labor
from isthmus.ledger.errors import ClosedPeriod, LedgerRefusal
from isthmus.ledger.journal import JournalEntry, reverse
from isthmus.ledger.periods import FiscalCalendar
from isthmus.model import (
    CredentialExpired,
    CredentialExpiring,
    EmployeeTransferred,
    OvertimeApproved,
    OvertimeRejected,
    PayrollPosted,
    ShiftWorked,
)
from isthmus.model.envelope import Envelope, encode_envelope
from isthmus.store.ports import Store, Tx

QUEUES = {
    "unapproved_overtime": "workforce",
    "expired_credential": "compliance",
    "credential_expiring": "compliance",
    "unmapped_employee": "finance-master-data",
    "unmapped_department": "finance-master-data",
    "closed_period": "finance-close",
    "unpostable_labor": "finance-master-data",
}
REVERSAL_PREFIX = "labor:reversal:"
# What the feed tells, kept as mapping rows (Tx.set_mapping_override), per employee id:
CREDENTIALS = "employee_credential_expired"  # "<expired on>|<credential>", "" once renewed
DEPARTMENTS = "employee_department"  # "<to>|<effective on>|<from>" (a transfer)


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def department_of(override: str | None, work_date: date) -> str:
    """The department an employee worked in on `work_date` from their `DEPARTMENTS` row:
    a transfer's new department from its effective day, the old one before; a plain
    value (an operator's resolution) always; "" without a row."""
    if not override:
        return ""
    to, _, rest = override.partition("|")
    if not rest:
        return to
    on, _, before = rest.partition("|")
    effective = _date(on)
    return to if effective is None or work_date >= effective else before


def overtime_item(shift_id: str) -> str:
    """The work item id (event id) under which the unapproved overtime of a shift waits."""
    return f"workforce:overtime:{shift_id}"


def _rates(settings: LaborSettings) -> dict[str, labor.Rate]:
    return {code: labor.Rate(p.rate, p.account) for code, p in settings.pay_codes.items()}


Accruals = Callable[[date], Sequence[JournalEntry]]  # pay period end -> its accruals


@dataclass(frozen=True)
class LaborFlow:
    settings: LaborSettings
    mappings: Mappings
    calendar: FiscalCalendar
    accruals: Accruals | None = None  # for PayrollPosted: `pay_period_accruals` on the store

    def handle(self, tx: Tx, env: Envelope) -> str:
        ev = env.payload
        if isinstance(ev, ShiftWorked):
            return self._shift(tx, env, ev)
        if isinstance(ev, OvertimeApproved):
            return self._post(tx, env, employee=ev.employee_id, department=ev.department,
                              work_date=ev.work_date, hours={"overtime": ev.hours},
                              entry_key=f"{labor.ACCRUAL_PREFIX}overtime:{ev.shift_id}",
                              memo=f"Approved overtime, shift {ev.shift_id}",
                              item_id=overtime_item(ev.shift_id))
        if isinstance(ev, PayrollPosted):
            if self.accruals is None:
                raise PermanentError("PayrollPosted needs the journal (LaborFlow.accruals)")
            try:
                n, _ = reverse_accruals(tx, self.accruals(ev.pay_period_end),
                                        payroll_id=ev.payroll_id, posted_on=ev.posted_on,
                                        calendar=self.calendar)
            except ClosedPeriod as exc:
                return self._hold(tx, env, "closed_period", str(exc))
            return "reversed" if n else "applied"
        if isinstance(ev, OvertimeRejected):
            n = tx.close_work_items(overtime_item(ev.shift_id),
                                    f"overtime rejected ({ev.request_id})", time.time())
            return "rejected" if n else "applied"
        if isinstance(ev, CredentialExpired):
            out = self._hold(tx, env, "expired_credential",
                             f"credential {ev.credential} of employee {ev.employee_id} "
                             f"expired on {ev.expires_on}: shifts after it are held")
            tx.set_mapping_override(CREDENTIALS, ev.employee_id,
                                    f"{ev.expires_on}|{ev.credential}")
            return out
        if isinstance(ev, CredentialExpiring):
            known = (tx.mapping_override(CREDENTIALS, ev.employee_id) or "").split("|")
            expired = _date(known[0])
            if len(known) == 2 and known[1] == ev.credential and expired is not None \
                    and ev.expires_on > expired:  # the expired credential was renewed
                tx.set_mapping_override(CREDENTIALS, ev.employee_id, "")
            return self._hold(tx, env, "credential_expiring",
                              f"credential {ev.credential} of employee {ev.employee_id} "
                              f"expires on {ev.expires_on}")
        if isinstance(ev, EmployeeTransferred):
            tx.set_mapping_override(DEPARTMENTS, ev.employee_id, f"{ev.to_department}|"
                                    f"{ev.effective_on}|{ev.from_department}")
        # ShiftChanged, OvertimeRequested: no money moves until the shift is worked.
        return "applied"

    def _hold(self, tx: Tx, env: Envelope, kind: str, detail: str,
              item_id: str = "") -> str:
        tx.add_work_item(kind=kind, queue=QUEUES[kind], key=env.key,
                         event_id=item_id or env.event_id, correlation_id=env.correlation_id,
                         detail=detail, envelope=encode_envelope(env), now=time.time())
        return "held"

    def _shift(self, tx: Tx, env: Envelope, ev: ShiftWorked) -> str:
        expires = ev.credential_expires_on or _date(
            (tx.mapping_override(CREDENTIALS, ev.employee_id) or "").partition("|")[0])
        if expires is not None and ev.work_date > expires:
            return self._hold(tx, env, "expired_credential",
                              f"shift {ev.shift_id} on {ev.work_date} worked by employee "
                              f"{ev.employee_id} after their credential expired on "
                              f"{expires}: not posted")
        hours = {"regular": ev.regular_hours, "differential": ev.differential_hours,
                 "on_call": ev.on_call_hours}
        out = "applied"
        if any(hours.values()):
            out = self._post(tx, env, employee=ev.employee_id, department=ev.department,
                             work_date=ev.work_date, hours=hours,
                             entry_key=f"{labor.ACCRUAL_PREFIX}{env.event_id}",
                             memo=f"Labor accrual, shift {ev.shift_id}")
        if ev.overtime_hours and ev.overtime_approval:
            ot = self._post(tx, env, employee=ev.employee_id, department=ev.department,
                            work_date=ev.work_date, hours={"overtime": ev.overtime_hours},
                            entry_key=f"{labor.ACCRUAL_PREFIX}overtime:{ev.shift_id}",
                            memo=f"Approved overtime, shift {ev.shift_id}")
            out = "held" if "held" in (out, ot) else ot
        elif ev.overtime_hours:
            self._hold(tx, env, "unapproved_overtime",
                       f"shift {ev.shift_id} on {ev.work_date}: {ev.overtime_hours} overtime "
                       f"hours of employee {ev.employee_id} have no approval: not posted",
                       overtime_item(ev.shift_id))
            out = "held"
        return out

    def _post(self, tx: Tx, env: Envelope, *, employee: str, department: str,
              work_date: date, hours: dict[str, Decimal], entry_key: str, memo: str,
              item_id: str = "") -> str:
        s = self.settings
        dept = department or department_of(tx.mapping_override(DEPARTMENTS, employee),
                                           work_date) or s.employees.get(employee, "")
        if not dept:
            return self._hold(tx, env, "unmapped_employee",
                              f"employee {employee} has no department", item_id)
        cc = tx.mapping_override("department_cost_center", dept) or \
            self.mappings.department_cost_center.get(dept)
        if not cc:
            return self._hold(tx, env, "unmapped_department",
                              f"department {dept!r} has no cost center", item_id)
        rates = _rates(s)
        try:
            where = self.calendar.assign(labor.pay_period_end(
                work_date, anchor=s.pay_period_anchor, days=s.pay_period_days))
            entry = labor.accrual_entry(
                entry_key=entry_key, costs=labor.shift_cost(hours, rates), rates=rates,
                accrued_account=s.accrued_account, company=s.company, cost_center=cc,
                posted_on=where.posted_on, period=where.period, memo=memo,
                correlation_id=env.correlation_id, causation_id=env.event_id,
                service_line=s.service_lines.get(dept, ""))
        except ClosedPeriod as exc:
            return self._hold(tx, env, "closed_period", str(exc), item_id)
        except (LedgerRefusal, KeyError) as exc:
            return self._hold(tx, env, "unpostable_labor", f"labor accrual refused: {exc}",
                              item_id)
        posted = tx.insert_entry(entry)
        tx.close_work_items(item_id or env.event_id, "posted", time.time())
        return "posted" if posted else "duplicate"


def pay_period_accruals(store: Store, pay_period_end: date) -> list[JournalEntry]:
    """The labor accruals of the pay period ending `pay_period_end` (committed ones)."""
    return [e for e in store.entries() if labor.is_accrual(e) and e.posted_on == pay_period_end]


def reverse_accruals(tx: Tx, accruals: Sequence[JournalEntry], *, payroll_id: str,
                     posted_on: date, calendar: FiscalCalendar) -> tuple[int, Decimal]:
    """Reverse each accrual once (the reversal's key names it); (entries reversed, amount).
    ClosedPeriod when `posted_on` is in a closed period under the reject policy."""
    where = calendar.assign(posted_on)
    n, total = 0, Decimal(0)
    for e in accruals:
        rev = reverse(e, entry_key=f"{REVERSAL_PREFIX}{e.entry_key}",
                      posted_on=where.posted_on, period=where.period,
                      causation_id=f"workforce:payroll:{payroll_id}")
        if tx.insert_entry(rev):
            n += 1
            total += sum((x.credit for x in e.lines), Decimal(0))
    return n, total


def reverse_pay_period(store: Store, *, pay_period_end: date, payroll_id: str,
                       posted_on: date, calendar: FiscalCalendar) -> tuple[int, Decimal]:
    """Payroll for the pay period ending `pay_period_end` has posted (`isthmus labor
    payroll-posted`): reverse each of its accruals, once."""
    accruals = pay_period_accruals(store, pay_period_end)
    with store.transaction() as tx:
        return reverse_accruals(tx, accruals, payroll_id=payroll_id, posted_on=posted_on,
                                calendar=calendar)


def service_line_cost(store: Store, settings: LaborSettings) -> dict[tuple[str, str], Decimal]:
    """Accrued labor cost per (service line, period): the labor column of `isthmus supply
    margin`."""
    return labor.labor_by_service_line(store.entries(),
                                       [p.account for p in settings.pay_codes.values()])


def budget_report(store: Store, settings: LaborSettings, mappings: Mappings,
                  period: str) -> list[labor.BudgetLine]:
    """Each budgeted department's accrued labor cost for `period` (YYYY-MM) against its
    budget ([labor.budgets]); `alert` once `budget_alert` of the budget is used."""
    accounts = [p.account for p in settings.pay_codes.values()]
    actual = labor.labor_cost(store.entries(), accounts, period)
    with store.transaction() as tx:
        ccs = {d: tx.mapping_override("department_cost_center", d) or
               mappings.department_cost_center.get(d, "") for d in settings.budgets}
    return labor.budget_variance(actual, settings.budgets, ccs, settings.budget_alert)


def budget_usage(store: Store, settings: LaborSettings, mappings: Mappings,
                 now: float) -> dict[str, tuple[float, float]]:
    """For the alert rule `labor_budget` (observe/alerts.py): each budgeted department's
    share of its budget used this month (UTC), with the alert threshold. Empty, and
    nothing read, when no budget is configured."""
    if not settings.budgets:
        return {}
    period = datetime.fromtimestamp(now, UTC).strftime("%Y-%m")
    threshold = float(settings.budget_alert)
    return {r.department: (float(r.used), threshold)
            for r in budget_report(store, settings, mappings, period) if r.budget}
