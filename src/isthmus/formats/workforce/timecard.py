"""Timecard exports (CSV or JSON) from an HCM or scheduling system: bytes -> ShiftWorked.

One row (CSV) or object (JSON: `{"timecards": [...]}`) per worked shift. CSV columns are
found by name (`formats.settlement.table`: case, spaces and dashes ignored, any order):
shift_id, employee_id, work_date required; department, regular_hours, overtime_hours,
differential_hours, on_call_hours, overtime_approval, credential_expires_on optional.
Columns beyond these (an employee's name, say) are never read. Every problem is a
`Finding` (row, column), returned as data: a file with any finding posts nothing.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import msgspec

from isthmus.formats.cards import has_card
from isthmus.formats.settlement.table import CARD_RULE, Finding, header_of, norm, parse_day
from isthmus.formats.workforce.events import WebhookError, check
from isthmus.model import ShiftWorked

REQUIRED: Final = ("shift_id", "employee_id", "work_date")
HOURS: Final = ("regular_hours", "overtime_hours", "differential_hours", "on_call_hours")
OPTIONAL: Final = ("department", *HOURS, "overtime_approval", "credential_expires_on")


@dataclass(frozen=True)
class TimecardFile:
    """A timecard export read: its worked shifts and its findings (nothing posts when there is
    any)."""

    shifts: tuple[ShiftWorked, ...]
    findings: tuple[Finding, ...]


def detect(data: bytes) -> bool:
    """A timecard CSV (its header names the required columns) or JSON (`"timecards"`)."""
    head = data[:256].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"{"):
        return b'"timecards"' in data[:4096]
    header = set(header_of(data))
    return all(norm(c) in header for c in REQUIRED)


def _shift(row: dict[str, str], n: int) -> ShiftWorked | Finding:
    for c in REQUIRED:
        if not row.get(c, "").strip():
            return Finding(n, c, "is empty")
    day = parse_day(row["work_date"].strip())
    if day is None:
        return Finding(n, "work_date", "is not a date (YYYY-MM-DD)", row["work_date"])
    expires = None
    if row.get("credential_expires_on", "").strip():
        expires = parse_day(row["credential_expires_on"].strip())
        if expires is None:
            return Finding(
                n,
                "credential_expires_on",
                "is not a date (YYYY-MM-DD)",
                row["credential_expires_on"],
            )
    hours: dict[str, Decimal] = {}
    for c in HOURS:
        text = row.get(c, "").strip() or "0"
        try:
            hours[c] = Decimal(text)
        except InvalidOperation:
            return Finding(n, c, "is not a number of hours", text)
    ev = ShiftWorked(
        shift_id=row["shift_id"].strip(),
        employee_id=row["employee_id"].strip(),
        department=row.get("department", "").strip(),
        work_date=day,
        overtime_approval=row.get("overtime_approval", "").strip(),
        credential_expires_on=expires,
        **hours,
    )
    try:
        check(ev)
    except WebhookError as exc:
        return Finding(n, exc.field, str(exc))
    return ev


def _rows_csv(data: bytes) -> list[dict[str, str]]:
    text = data.decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = [r for r in reader if any(x.strip() for x in r)]
    if not rows:
        return []
    names = [norm(h) for h in rows[0]]
    wanted = {norm(c): c for c in (*REQUIRED, *OPTIONAL)}
    return [{wanted[k]: v for k, v in zip(names, r, strict=False) if k in wanted} for r in rows[1:]]


def _rows_json(data: bytes) -> list[dict[str, str]] | Finding:
    try:
        doc: Any = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        return Finding(0, "", f"not JSON: {exc}")
    items = doc.get("timecards") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return Finding(0, "timecards", "must be a list of timecards")
    out: list[dict[str, str]] = []
    for item in items:
        if not isinstance(item, dict):
            return Finding(len(out) + 2, "", "a timecard must be an object")
        out.append({c: "" if item.get(c) is None else str(item[c]) for c in (*REQUIRED, *OPTIONAL)})
    return out


def parse_timecards(data: bytes) -> TimecardFile:
    """Every shift of a timecard file and every finding (row 2 is the first timecard)."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    rows = _rows_json(data) if head.startswith(b"{") else _rows_csv(data)
    if isinstance(rows, Finding):
        return TimecardFile((), (rows,))
    shifts: list[ShiftWorked] = []
    findings: list[Finding] = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, start=2):
        carded = sorted(c for c, v in row.items() if has_card(v))  # formats.cards
        if carded:
            findings += [Finding(n, c, CARD_RULE) for c in carded]
            continue
        got = _shift(row, n)
        if isinstance(got, Finding):
            findings.append(got)
        elif got.shift_id in seen:
            findings.append(
                Finding(n, "shift_id", f"repeats row {seen[got.shift_id]}", got.shift_id)
            )
        else:
            seen[got.shift_id] = n
            shifts.append(got)
    if not rows:
        findings.append(Finding(0, "", "no timecards"))
    return TimecardFile(tuple(shifts), tuple(findings))
