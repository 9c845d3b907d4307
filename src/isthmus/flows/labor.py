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
by replaying the event or by the command (`flows.labor_payroll`). What the accruals come
to, per department against its budget and per service line, is `flows.labor_budget`.

Issue 17: the flow reads the facts an event needs (the employee's credential and
department rows, the cost center, the pay period's accruals, whether overtime waits),
decides without the store (`LaborFlow.decide`, a `flows.decision.Decision`) and
`flows.decision.apply` writes it at the worker's `now`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from isthmus.config import LaborSettings, Mappings
from isthmus.flows.decision import Decision, Resolve, WorkItem, apply
from isthmus.flows.errors import PermanentError
from isthmus.flows.labor_payroll import Reversals, reversals
from isthmus.flows.outcome import APPLIED, DUPLICATE, POSTED, REJECTED, REVERSED, Held, Outcome
from isthmus.ledger import labor
from isthmus.ledger.errors import ClosedPeriod, LedgerRefusal
from isthmus.ledger.journal import JournalEntry
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
from isthmus.store.ports import Tx

QUEUES = {
    "unapproved_overtime": "workforce",
    "expired_credential": "compliance",
    "credential_expiring": "compliance",
    "unmapped_employee": "finance-master-data",
    "unmapped_department": "finance-master-data",
    "closed_period": "finance-close",
    "unpostable_labor": "finance-master-data",
}
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


@dataclass(frozen=True, slots=True)
class Facts:
    """What the store knows that a workforce decision needs (issue 17)."""

    credential: str = ""  # the employee's `CREDENTIALS` row: "<expired on>|<credential>"
    department: str = ""  # the department the hours go to ("" unknown)
    cost_center: str = ""  # that department's cost center ("" unmapped)
    accruals: tuple[JournalEntry, ...] = ()  # PayrollPosted: its pay period's, committed
    waiting: bool = False  # OvertimeRejected: the shift's overtime item is open


@dataclass(frozen=True, slots=True)
class SetRow:
    """Keep what the feed tells as a mapping row (`CREDENTIALS`, `DEPARTMENTS`)."""

    table: str
    key: str
    value: str

    def write(self, tx: Tx, now: float) -> bool:
        tx.set_mapping_override(self.table, self.key, self.value)
        return True


def combine(parts: Sequence[Decision]) -> Decision:
    """The decisions of one shift's parts (its hours, its overtime) as one: held when any
    part is held, else what the last part came to; nothing to do, applied."""
    if not parts:
        return Decision(APPLIED)
    held = next((d.outcome for d in parts if isinstance(d.outcome, Held)), None)
    return Decision(
        held or parts[-1].outcome,
        open=tuple(w for d in parts for w in d.open),
        writes=tuple(w for d in parts for w in d.writes),
        entries=tuple(e for d in parts for e in d.entries),
        resolve=tuple(r for d in parts for r in d.resolve),
    )


@dataclass(frozen=True)
class LaborFlow:
    """Reads the facts an event needs (`facts`), decides without the store (`decide`),
    and `flows.decision.apply` writes the decision at the worker's `now`."""

    settings: LaborSettings
    mappings: Mappings
    calendar: FiscalCalendar
    accruals: Accruals | None = None  # for PayrollPosted: `pay_period_accruals` on the store

    def handle(self, tx: Tx, env: Envelope, now: float) -> Outcome:
        out = apply(tx, self.decide(env, self.facts(tx, env)), now)
        # a payroll whose reversals were all posted before is applied, as it always was
        return APPLIED if out is DUPLICATE and type(env.payload) is PayrollPosted else out

    # -- the reads ---------------------------------------------------------------------
    def facts(self, tx: Tx, env: Envelope) -> Facts:
        ev = env.payload
        if isinstance(ev, CredentialExpired):
            return Facts()
        if isinstance(ev, CredentialExpiring):
            return Facts(tx.mapping_override(CREDENTIALS, ev.employee_id) or "")
        if isinstance(ev, ShiftWorked):
            credential = (
                ""
                if ev.credential_expires_on
                else tx.mapping_override(CREDENTIALS, ev.employee_id) or ""
            )
            return replace(
                self._where(tx, ev.employee_id, ev.department, ev.work_date), credential=credential
            )
        if isinstance(ev, OvertimeApproved):
            return self._where(tx, ev.employee_id, ev.department, ev.work_date)
        if isinstance(ev, PayrollPosted):
            if self.accruals is None:
                raise PermanentError("PayrollPosted needs the journal (LaborFlow.accruals)")
            return Facts(accruals=tuple(self.accruals(ev.pay_period_end)))
        if isinstance(ev, OvertimeRejected):
            item = overtime_item(ev.shift_id)
            return Facts(waiting=item in tx.pending_events((item,)))
        return Facts()

    def _where(self, tx: Tx, employee: str, department: str, work_date: date) -> Facts:
        """The department the hours go to (the shift's own, else the feed's transfer row,
        else the home department) and its cost center (an override, else the chart)."""
        dept = (
            department
            or department_of(tx.mapping_override(DEPARTMENTS, employee), work_date)
            or self.settings.employees.get(employee, "")
        )
        if not dept:
            return Facts()
        cc = tx.mapping_override(
            "department_cost_center", dept
        ) or self.mappings.department_cost_center.get(dept, "")
        return Facts(department=dept, cost_center=cc)

    # -- the decisions (no store) ------------------------------------------------------
    def decide(self, env: Envelope, facts: Facts) -> Decision:
        ev = env.payload
        if isinstance(ev, ShiftWorked):
            return self._shift(env, ev, facts)
        if isinstance(ev, OvertimeApproved):
            return self._accrual(
                env,
                facts,
                employee=ev.employee_id,
                work_date=ev.work_date,
                hours={"overtime": ev.hours},
                entry_key=f"{labor.ACCRUAL_PREFIX}overtime:{ev.shift_id}",
                memo=f"Approved overtime, shift {ev.shift_id}",
                item_id=overtime_item(ev.shift_id),
            )
        if isinstance(ev, PayrollPosted):
            try:  # every accrual of the pay period reversed, once (the claim: `Reversals`)
                revs = reversals(
                    facts.accruals,
                    payroll_id=ev.payroll_id,
                    posted_on=ev.posted_on,
                    calendar=self.calendar,
                )
            except ClosedPeriod as exc:
                return self._hold(env, "closed_period", str(exc))
            return Decision(REVERSED, claim=Reversals(revs)) if revs else Decision(APPLIED)
        if isinstance(ev, OvertimeRejected):
            done = f"overtime rejected ({ev.request_id})"
            return Decision(
                REJECTED if facts.waiting else APPLIED,
                resolve=(Resolve(overtime_item(ev.shift_id), done),),
            )
        if isinstance(ev, CredentialExpired):
            d = self._hold(
                env,
                "expired_credential",
                f"credential {ev.credential} of employee {ev.employee_id} "
                f"expired on {ev.expires_on}: shifts after it are held",
            )
            return d._replace(
                writes=(SetRow(CREDENTIALS, ev.employee_id, f"{ev.expires_on}|{ev.credential}"),)
            )
        if isinstance(ev, CredentialExpiring):
            d = self._hold(
                env,
                "credential_expiring",
                f"credential {ev.credential} of employee {ev.employee_id} "
                f"expires on {ev.expires_on}",
            )
            known = facts.credential.split("|")
            expired = _date(known[0])
            if (
                len(known) == 2
                and known[1] == ev.credential
                and expired is not None
                and ev.expires_on > expired
            ):  # the expired credential was renewed
                return d._replace(writes=(SetRow(CREDENTIALS, ev.employee_id, ""),))
            return d
        if isinstance(ev, EmployeeTransferred):
            return Decision(
                APPLIED,
                writes=(
                    SetRow(
                        DEPARTMENTS,
                        ev.employee_id,
                        f"{ev.to_department}|{ev.effective_on}|{ev.from_department}",
                    ),
                ),
            )
        # ShiftChanged, OvertimeRequested: no money moves until the shift is worked.
        return Decision(APPLIED)

    def _hold(self, env: Envelope, kind: str, detail: str, item_id: str = "") -> Decision:
        queue = QUEUES[kind]
        return Decision(
            Held(queue, detail),
            open=(
                WorkItem(
                    kind,
                    queue,
                    env.key,
                    item_id or env.event_id,
                    env.correlation_id,
                    detail,
                    encode_envelope(env),
                ),
            ),
        )

    def _shift(self, env: Envelope, ev: ShiftWorked, facts: Facts) -> Decision:
        expires = ev.credential_expires_on or _date(facts.credential.partition("|")[0])
        if expires is not None and ev.work_date > expires:
            return self._hold(
                env,
                "expired_credential",
                f"shift {ev.shift_id} on {ev.work_date} worked by employee "
                f"{ev.employee_id} after their credential expired on "
                f"{expires}: not posted",
            )
        hours = {
            "regular": ev.regular_hours,
            "differential": ev.differential_hours,
            "on_call": ev.on_call_hours,
        }
        parts: list[Decision] = []
        if any(hours.values()):
            parts.append(
                self._accrual(
                    env,
                    facts,
                    employee=ev.employee_id,
                    work_date=ev.work_date,
                    hours=hours,
                    entry_key=f"{labor.ACCRUAL_PREFIX}{env.event_id}",
                    memo=f"Labor accrual, shift {ev.shift_id}",
                )
            )
        if ev.overtime_hours and ev.overtime_approval:
            parts.append(
                self._accrual(
                    env,
                    facts,
                    employee=ev.employee_id,
                    work_date=ev.work_date,
                    hours={"overtime": ev.overtime_hours},
                    entry_key=f"{labor.ACCRUAL_PREFIX}overtime:{ev.shift_id}",
                    memo=f"Approved overtime, shift {ev.shift_id}",
                )
            )
        elif ev.overtime_hours:
            parts.append(
                self._hold(
                    env,
                    "unapproved_overtime",
                    f"shift {ev.shift_id} on {ev.work_date}: {ev.overtime_hours} overtime hours "
                    f"of employee {ev.employee_id} have no approval: not posted",
                    overtime_item(ev.shift_id),
                )
            )
        return combine(parts)

    def _accrual(
        self,
        env: Envelope,
        facts: Facts,
        *,
        employee: str,
        work_date: date,
        hours: dict[str, Decimal],
        entry_key: str,
        memo: str,
        item_id: str = "",
    ) -> Decision:
        s = self.settings
        if not facts.department:
            return self._hold(
                env, "unmapped_employee", f"employee {employee} has no department", item_id
            )
        if not facts.cost_center:
            return self._hold(
                env,
                "unmapped_department",
                f"department {facts.department!r} has no cost center",
                item_id,
            )
        rates = _rates(s)
        try:
            where = self.calendar.assign(
                labor.pay_period_end(work_date, anchor=s.pay_period_anchor, days=s.pay_period_days)
            )
            entry = labor.accrual_entry(
                entry_key=entry_key,
                costs=labor.shift_cost(hours, rates),
                rates=rates,
                accrued_account=s.accrued_account,
                company=s.company,
                cost_center=facts.cost_center,
                posted_on=where.posted_on,
                period=where.period,
                memo=memo,
                correlation_id=env.correlation_id,
                causation_id=env.event_id,
                service_line=s.service_lines.get(facts.department, ""),
            )
        except ClosedPeriod as exc:
            return self._hold(env, "closed_period", str(exc), item_id)
        except (LedgerRefusal, KeyError) as exc:
            return self._hold(env, "unpostable_labor", f"labor accrual refused: {exc}", item_id)
        return Decision(
            POSTED, entries=(entry,), resolve=(Resolve(item_id or env.event_id, "posted"),)
        )
