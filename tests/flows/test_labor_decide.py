"""The workforce decisions without a store (issue 17): facts in, a `Decision` out.

`LaborFlow.decide` reads nothing: the employee's credential row, the department the hours
go to and its cost center come in as `Facts`; the accruals, holds and rows to keep come out
as data for `flows.decision.apply`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from isthmus.config import LaborSettings
from isthmus.demo.chart import demo_mappings
from isthmus.flows.decision import Decision, Resolve
from isthmus.flows.errors import PermanentError
from isthmus.flows.labor import (
    CREDENTIALS,
    DEPARTMENTS,
    Facts,
    LaborFlow,
    SetRow,
    combine,
    overtime_item,
)
from isthmus.flows.labor_payroll import Reversals
from isthmus.flows.outcome import APPLIED, POSTED, REJECTED, REVERSED, Held
from isthmus.ledger.periods import FiscalCalendar
from isthmus.model import (
    CredentialExpired,
    CredentialExpiring,
    EmployeeTransferred,
    OvertimeRejected,
    PayrollPosted,
    ShiftWorked,
)
from isthmus.model.envelope import Envelope, Source
from isthmus.model.events import Event

AT = datetime(2026, 3, 3, 18, tzinfo=UTC)
FLOW = LaborFlow(LaborSettings(), demo_mappings(), FiscalCalendar())
MAPPED = Facts(department="RAD", cost_center="CC-RAD")
D = Decimal


def env(payload: Event, event_id: str = "w1") -> Envelope:
    return Envelope(
        event_id=event_id,
        type=type(payload).__name__,
        occurred_at=AT,
        recorded_at=AT,
        source=Source("workforce", "t1", "m1"),
        correlation_id="workforce/t1",
        causation_id="m1",
        key="emp|E1",
        payload=payload,
    )


def shift(**kw: object) -> ShiftWorked:
    fields: dict[str, object] = {
        "shift_id": "S1",
        "employee_id": "E1",
        "work_date": date(2026, 3, 3),
        "regular_hours": D(8),
    }
    fields.update(kw)
    return ShiftWorked(**fields)  # type: ignore[arg-type]


def test_a_shift_with_approved_overtime_posts_two_accruals() -> None:
    d = FLOW.decide(env(shift(overtime_hours=D(2), overtime_approval="A-1")), MAPPED)
    assert d.outcome is POSTED and d.open == ()
    assert [e.entry_key for e in d.entries] == ["labor:accrual:w1", "labor:accrual:overtime:S1"]
    wages = {ln.account: ln.debit for e in d.entries for ln in e.lines if ln.debit}
    assert wages == {"5100": D("360.00"), "5110": D("135.00")}  # 8 x 45.00, 2 x 67.50
    assert {ln.dims.cost_center for e in d.entries for ln in e.lines} == {"CC-RAD"}


def test_unapproved_overtime_waits_in_its_own_item_while_the_hours_post() -> None:
    d = FLOW.decide(env(shift(overtime_hours=D(2))), MAPPED)
    assert isinstance(d.outcome, Held) and d.outcome.queue == "workforce"
    assert [e.entry_key for e in d.entries] == ["labor:accrual:w1"]
    [item] = d.open
    assert (item.kind, item.event_id) == ("unapproved_overtime", overtime_item("S1"))
    assert d.resolve == (Resolve("w1", "posted"),)


def test_a_shift_after_the_credential_expired_posts_nothing() -> None:
    d = FLOW.decide(env(shift()), Facts("2026-03-01|RN", "RAD", "CC-RAD"))
    assert [(w.kind, w.queue) for w in d.open] == [("expired_credential", "compliance")]
    assert d.entries == ()


def test_an_employee_without_a_department_is_held_for_master_data() -> None:
    d = FLOW.decide(env(shift()), Facts())
    assert [(w.kind, w.queue) for w in d.open] == [("unmapped_employee", "finance-master-data")]


def test_a_renewal_clears_the_expired_credential_and_is_noted() -> None:
    ev = CredentialExpiring(employee_id="E1", credential="RN", expires_on=date(2028, 3, 1))
    d = FLOW.decide(env(ev), Facts("2026-03-01|RN"))
    assert d.writes == (SetRow(CREDENTIALS, "E1", ""),)
    assert [w.kind for w in d.open] == ["credential_expiring"]
    other = FLOW.decide(env(ev), Facts("2026-03-01|CPR"))  # another credential
    assert other.writes == ()


def test_an_expired_credential_is_kept_and_held_for_compliance() -> None:
    ev = CredentialExpired(employee_id="E1", credential="RN", expires_on=date(2026, 3, 1))
    d = FLOW.decide(env(ev), Facts())
    assert d.writes == (SetRow(CREDENTIALS, "E1", "2026-03-01|RN"),)
    assert [w.kind for w in d.open] == ["expired_credential"]


def test_a_transfer_is_kept_as_the_employees_department_row() -> None:
    ev = EmployeeTransferred(
        employee_id="E1", from_department="RAD", to_department="LAB", effective_on=date(2026, 3, 9)
    )
    assert FLOW.decide(env(ev), Facts()) == Decision(
        APPLIED, writes=(SetRow(DEPARTMENTS, "E1", "LAB|2026-03-09|RAD"),)
    )


PAYROLL = PayrollPosted(
    payroll_id="P1", pay_period_end=date(2026, 3, 14), posted_on=date(2026, 4, 2)
)


def test_payroll_claims_the_reversal_of_each_accrual_of_its_pay_period() -> None:
    accruals = FLOW.decide(env(shift(overtime_hours=D(2), overtime_approval="A-1")), MAPPED)
    d = FLOW.decide(env(PAYROLL, "w9"), Facts(accruals=accruals.entries))
    assert d.outcome is REVERSED and isinstance(d.claim, Reversals)
    assert [e.entry_key for e in d.claim.entries] == [
        "labor:reversal:labor:accrual:w1",
        "labor:reversal:labor:accrual:overtime:S1",
    ]
    assert [e.reverses for e in d.claim.entries] == [e.entry_key for e in accruals.entries]
    assert {(e.posted_on, e.period) for e in d.claim.entries} == {(date(2026, 4, 2), "2026-04")}
    assert {e.causation_id for e in d.claim.entries} == {"workforce:payroll:P1"}
    assert FLOW.decide(env(PAYROLL), Facts()) == Decision(APPLIED)  # nothing accrued


def test_payroll_in_a_closed_period_is_held_for_the_close() -> None:
    closed = LaborFlow(
        LaborSettings(),
        demo_mappings(),
        FiscalCalendar(closed=frozenset({"2026-04"}), policy="reject"),
    )
    d = closed.decide(env(PAYROLL), Facts())
    assert isinstance(d.outcome, Held) and d.claim is None
    assert [(w.kind, w.queue) for w in d.open] == [("closed_period", "finance-close")]


def test_payroll_is_not_decided_without_the_journal() -> None:
    with pytest.raises(PermanentError, match="PayrollPosted"):
        FLOW.facts(None, env(PAYROLL))  # type: ignore[arg-type]  # refused before any read


def test_rejected_overtime_closes_its_item_and_is_rejected_only_when_one_waited() -> None:
    ev = OvertimeRejected(
        request_id="R1", shift_id="S1", employee_id="E1", work_date=date(2026, 3, 3), hours=D(2)
    )
    waited = FLOW.decide(env(ev), Facts(waiting=True))
    assert waited == Decision(
        REJECTED, resolve=(Resolve(overtime_item("S1"), "overtime rejected (R1)"),)
    )
    assert FLOW.decide(env(ev), Facts()) == waited._replace(outcome=APPLIED)


def test_combined_parts_are_held_when_any_is_and_nothing_is_applied() -> None:
    posted = FLOW.decide(env(shift()), MAPPED)
    held = FLOW.decide(env(shift()), Facts())
    assert combine([held, posted]).outcome == held.outcome
    assert combine([posted, held]).entries == posted.entries
    assert combine([]) == Decision(APPLIED)
