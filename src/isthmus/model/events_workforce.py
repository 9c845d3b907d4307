"""Workforce events, from the HCM / scheduling feed: shifts, overtime, credentials, payroll.

Employees are named by their HCM employee id only: never a name (the feed's names are
dropped at the boundary), so nothing here can put a person's name into a journal or log.
Imported through `isthmus.model.events`, which re-exports every type.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import msgspec


class ShiftWorked(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A worked shift from a timecard: hours per pay code (regular, overtime, shift
    differential, on-call). `overtime_approval` names the approval the feed carries, if
    any; `credential_expires_on` is the employee's licence expiry the feed states, if any."""

    shift_id: str
    employee_id: str
    department: str = ""  # empty: the employee's home department (ERP master)
    work_date: date
    regular_hours: Decimal = Decimal(0)
    overtime_hours: Decimal = Decimal(0)
    differential_hours: Decimal = Decimal(0)
    on_call_hours: Decimal = Decimal(0)
    overtime_approval: str = ""
    credential_expires_on: date | None = None


class ShiftChanged(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A scheduled shift moved or reassigned (no money until it is worked)."""

    shift_id: str
    employee_id: str
    department: str = ""
    work_date: date
    change: str = ""  # rescheduled | reassigned | cancelled


class OvertimeRequested(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """Overtime asked for a shift (worked on `work_date`); it posts only once approved."""

    request_id: str
    shift_id: str
    employee_id: str
    department: str = ""  # empty: the employee's home department (ERP master)
    work_date: date
    hours: Decimal


class OvertimeApproved(OvertimeRequested, frozen=True, tag=True, kw_only=True):
    """The overtime of a shift approved: its held overtime hours may post."""

    approver: str = ""


class OvertimeRejected(OvertimeRequested, frozen=True, tag=True, kw_only=True):
    """The overtime of a shift refused: its held overtime hours never post."""

    approver: str = ""


class CredentialExpiring(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """An employee's licence or certification expires soon (`expires_on`)."""

    employee_id: str
    credential: str
    expires_on: date


class CredentialExpired(CredentialExpiring, frozen=True, tag=True, kw_only=True):
    """An employee's licence or certification has expired on `expires_on`."""


class EmployeeTransferred(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """An employee moved from one department to another on `effective_on`."""

    employee_id: str
    from_department: str
    to_department: str
    effective_on: date


class PayrollPosted(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """The ERP's payroll run for the pay period ending `pay_period_end` has posted: the
    period's labor accruals are reversed (on `posted_on`)."""

    payroll_id: str
    pay_period_end: date
    posted_on: date


WORKFORCE_EVENTS = (
    ShiftWorked,
    ShiftChanged,
    OvertimeRequested,
    OvertimeApproved,
    OvertimeRejected,
    CredentialExpiring,
    CredentialExpired,
    EmployeeTransferred,
    PayrollPosted,
)
