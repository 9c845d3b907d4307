"""Workforce events as they travel: the id and partition key of each, from the source's own
keys, and the webhook body read into typed events (pure).

Event ids come from the feed's business keys (a shift id, an overtime request id, an
employee and credential), never from arrival: the same shift sent by the webhook and again
in a timecard file is one event, and its accrual posts once. The partition key is the
employee id, so one employee's events stay in order. A worked shift and a payroll run also
carry a business key (`business_key`, README "Identity and business keys").

The webhook body is one JSON object `{"type": "ShiftWorked", ...fields}` or
`{"events": [...]}`. Unknown fields are ignored and never copied (an HCM sends names:
they are dropped here, at the boundary). A bad body is a `WebhookError` naming the field.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

import msgspec

from isthmus.errors import ParseError
from isthmus.model import (
    CredentialExpired,
    CredentialExpiring,
    EmployeeTransferred,
    KeyedEvent,
    OvertimeApproved,
    OvertimeRejected,
    OvertimeRequested,
    PayrollPosted,
    ShiftChanged,
    ShiftWorked,
)

WorkforceEvent = (
    ShiftWorked
    | ShiftChanged
    | OvertimeRequested
    | OvertimeApproved
    | OvertimeRejected
    | CredentialExpiring
    | CredentialExpired
    | EmployeeTransferred
    | PayrollPosted
)
TYPES: Final[dict[str, type[Any]]] = {
    t.__name__: t
    for t in (
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
}
MAX_HOURS: Final = Decimal(24)


def event_id(ev: WorkforceEvent) -> str:
    """The id of an event, from the source's keys (see the module docstring)."""
    if isinstance(ev, ShiftWorked):
        return f"workforce:shift:{ev.shift_id}"
    if isinstance(ev, ShiftChanged):
        return f"workforce:shift-change:{ev.shift_id}:{ev.work_date}:{ev.change}"
    if isinstance(ev, OvertimeRequested):  # approved and rejected too
        return f"workforce:{type(ev).__name__}:{ev.request_id}"
    if isinstance(ev, CredentialExpiring):  # expired too
        return f"workforce:{type(ev).__name__}:{ev.employee_id}:{ev.credential}:{ev.expires_on}"
    if isinstance(ev, PayrollPosted):
        return f"workforce:payroll:{ev.payroll_id}"
    return f"workforce:transfer:{ev.employee_id}:{ev.effective_on}"


def business_key(ev: WorkforceEvent) -> str:
    """The fact a posting is unique on (`flows.identity`): a worked shift by the scheduling
    system's shift (timecard line) id, a payroll run by its id; "" for the others, whose
    event id is their identity."""
    if isinstance(ev, ShiftWorked):
        return f"shift|{ev.shift_id}"
    if isinstance(ev, PayrollPosted):
        return f"payroll|{ev.payroll_id}"
    return ""


def keyed(ev: WorkforceEvent) -> KeyedEvent:
    """A workforce event with its id, its partition key (the employee, or the payroll period
    for a payroll run) and its business key."""
    if isinstance(ev, PayrollPosted):
        return KeyedEvent(event_id(ev), f"payroll:{ev.pay_period_end}", ev, business_key(ev))
    return KeyedEvent(event_id(ev), f"employee:{ev.employee_id}", ev, business_key(ev))


class WebhookError(ParseError, ValueError):
    """The body is not a workforce event; `field` names the field at fault."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def check(ev: WorkforceEvent, where: str = "") -> None:
    """Business checks msgspec cannot express: ids present, hours 0-24 to the hundredth."""
    for name in ("employee_id", "shift_id", "request_id", "credential", "payroll_id"):
        if name in ev.__struct_fields__ and not str(getattr(ev, name)).strip():
            raise WebhookError(f"{name} is empty", where + name)
    hours = [n for n in ev.__struct_fields__ if n == "hours" or n.endswith("_hours")]
    for name in hours:
        h: Decimal = getattr(ev, name)
        if not h.is_finite() or h < 0 or h > MAX_HOURS or h != round(h, 2):
            raise WebhookError(
                f"{name} must be 0 to 24 hours, to the hundredth, got {h}", where + name
            )
    if isinstance(ev, ShiftWorked) and not any(getattr(ev, n) for n in hours):
        raise WebhookError("a worked shift needs hours", where + "regular_hours")


def _one(obj: object, where: str) -> KeyedEvent:
    if not isinstance(obj, dict):
        raise WebhookError("an event must be a JSON object", where or "body")
    kind = obj.get("type")
    if not isinstance(kind, str) or kind not in TYPES:
        raise WebhookError(f"type must be one of {', '.join(TYPES)}, got {kind!r}", where + "type")
    try:
        ev = msgspec.convert(
            {k: v for k, v in obj.items() if k != "type"}, TYPES[kind], strict=False
        )
    except msgspec.ValidationError as exc:
        text = str(exc)
        field = text.rpartition("at `$.")[2].rstrip("`") if "at `$." in text else ""
        if not field and "required field" in text:
            field = text.rpartition("`")[0].rpartition("`")[2]
        raise WebhookError(text, where + (field or "body")) from exc
    check(ev, where)
    return keyed(ev)


def decode_webhook(body: bytes) -> list[KeyedEvent]:
    """The events of one webhook body; `WebhookError` names the first field at fault."""
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise WebhookError(f"body is not JSON: {exc}", "body") from exc
    if isinstance(doc, dict) and "events" in doc:
        items = doc["events"]
        if not isinstance(items, list) or not items:
            raise WebhookError("events must be a non-empty list", "events")
        return [_one(x, f"events[{i}].") for i, x in enumerate(items)]
    return [_one(doc, "")]
