"""Timecard files (CSV, JSON) and webhook bodies: typed shifts or findings, never a crash."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.flows.files import TIMECARD, detect
from isthmus.formats.workforce import (
    WebhookError,
    decode_webhook,
    parse_timecards,
)
from isthmus.formats.workforce import detect as is_timecard
from isthmus.model import OvertimeApproved, ShiftWorked

HEADER = (
    "Shift ID,Employee ID,Employee Name,Department,Work Date,Regular Hours,"
    "Overtime Hours,Differential Hours,On-Call Hours,Overtime Approval,"
    "Credential Expires On\r\n"
)


def test_a_csv_timecard_reads_by_header_and_drops_names() -> None:
    raw = (
        HEADER + "S1,E100,Jane Roe,ED,2026-01-05,8,2,1.5,,OT-7,2027-01-01\r\n"
        "S2,E200,John Doe,,01/06/2026,12,,,,,\r\n"
    ).encode()
    assert detect(raw) == TIMECARD
    tf = parse_timecards(b"\xef\xbb\xbf" + raw)
    assert tf.findings == ()
    s1, s2 = tf.shifts
    assert s1 == ShiftWorked(
        shift_id="S1",
        employee_id="E100",
        department="ED",
        work_date=date(2026, 1, 5),
        regular_hours=D(8),
        overtime_hours=D(2),
        differential_hours=D("1.5"),
        overtime_approval="OT-7",
        credential_expires_on=date(2027, 1, 1),
    )
    assert (s2.department, s2.work_date, s2.regular_hours) == ("", date(2026, 1, 6), D(12))
    assert "Roe" not in repr(tf) and "Doe" not in repr(tf)


def test_a_json_timecard() -> None:
    raw = json.dumps(
        {
            "timecards": [
                {
                    "shift_id": "S9",
                    "employee_id": "E1",
                    "work_date": "2026-01-05",
                    "regular_hours": 8,
                    "name": "Jane Roe",
                }
            ]
        }
    ).encode()
    assert detect(raw) == TIMECARD
    [s] = parse_timecards(raw).shifts
    assert (s.shift_id, s.regular_hours) == ("S9", D(8))


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("S1,E1,x,ED,2026-13-01,8,,,,,", "work_date"),
        ("S1,E1,x,ED,2026-01-05,eight,,,,,", "regular_hours"),
        ("S1,E1,x,ED,2026-01-05,25,,,,,", "regular_hours"),
        ("S1,E1,x,ED,2026-01-05,-1,,,,,", "regular_hours"),
        ("S1,E1,x,ED,2026-01-05,8.125,,,,,", "regular_hours"),
        ("S1,,x,ED,2026-01-05,8,,,,,", "employee_id"),
        ("S1,E1,x,ED,2026-01-05,,,,,,", "regular_hours"),
        ("S1,E1,x,ED,2026-01-05,8,,,,,someday", "credential_expires_on"),
    ],
)
def test_a_bad_row_is_a_finding_with_its_column(row: str, column: str) -> None:
    tf = parse_timecards((HEADER + row + "\r\n").encode())
    assert tf.shifts == ()
    [f] = tf.findings
    assert (f.row, f.column) == (2, column)


def test_a_repeated_shift_is_a_finding() -> None:
    tf = parse_timecards(
        (HEADER + "S1,E1,x,ED,2026-01-05,8,,,,,\r\nS1,E1,x,ED,2026-01-05,8,,,,,\r\n").encode()
    )
    assert [(f.row, f.column) for f in tf.findings] == [(3, "shift_id")]


def test_other_csvs_are_not_timecards() -> None:
    assert not is_timecard(b"deposit_id,transaction_id,amount\r\n1,2,3\r\n")
    assert not is_timecard(b'{"resourceType": "Bundle"}')


def test_webhook_bodies() -> None:
    [k] = decode_webhook(
        json.dumps(
            {
                "type": "OvertimeApproved",
                "request_id": "R1",
                "shift_id": "S1",
                "employee_id": "E1",
                "work_date": "2026-01-05",
                "hours": "2.5",
                "employee_name": "Jane Roe",
            }
        ).encode()
    )
    assert isinstance(k.event, OvertimeApproved) and k.event.hours == D("2.5")
    assert (k.event_id, k.key) == ("workforce:OvertimeApproved:R1", "employee:E1")
    [s] = decode_webhook(
        json.dumps(
            {
                "events": [
                    {
                        "type": "ShiftWorked",
                        "shift_id": "S1",
                        "employee_id": "E1",
                        "work_date": "2026-01-05",
                        "regular_hours": 8,
                    }
                ]
            }
        ).encode()
    )
    assert s.event_id == "workforce:shift:S1"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b"[]", "body"),
        (b'{"type": "Nope"}', "type"),
        (b'{"events": []}', "events"),
        (b'{"type": "ShiftWorked", "employee_id": "E1", "work_date": "2026-01-05"}', "shift_id"),
        (
            b'{"type": "ShiftWorked", "shift_id": "S", "employee_id": "E1", "work_date": "x"}',
            "work_date",
        ),
        (
            b'{"events": [{"type": "ShiftWorked", "shift_id": "S", "employee_id": "E1", '
            b'"work_date": "2026-01-05", "regular_hours": "30"}]}',
            "events[0].regular_hours",
        ),
    ],
)
def test_bad_webhook_bodies_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(WebhookError) as err:
        decode_webhook(body)
    assert err.value.field == field


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_are_shifts_or_findings(raw: bytes) -> None:
    tf = parse_timecards(HEADER.encode() + raw)
    assert all(isinstance(s, ShiftWorked) for s in tf.shifts)
    for s in tf.shifts:
        assert D(0) <= s.regular_hours <= D(24)


_hours = st.decimals(min_value=0, max_value=24, places=2, allow_nan=False, allow_infinity=False)
_ids = st.text(alphabet="ABCDEFGHJK0123456789-", min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(_ids, _ids, st.dates(date(2020, 1, 1), date(2030, 12, 31)), _hours, _hours),
        min_size=1,
        max_size=8,
        unique_by=lambda t: t[0],
    )
)
def test_valid_rows_round_trip(rows: list[tuple[str, str, date, D, D]]) -> None:
    text = HEADER + "".join(f"{s},{e},Name,ED,{d},{r},{o},,,,\r\n" for s, e, d, r, o in rows)
    tf = parse_timecards(text.encode())
    ok = [t for t in rows if t[3] or t[4]]
    assert len(tf.findings) == len(rows) - len(ok)
    assert [
        (s.shift_id, s.employee_id, s.work_date, s.regular_hours, s.overtime_hours)
        for s in tf.shifts
    ] == ok


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=12)
    | st.sampled_from(["ShiftWorked", "OvertimeApproved", "2026-01-05", "8", "-1", "25"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "events",
                    "shift_id",
                    "employee_id",
                    "work_date",
                    "regular_hours",
                    "hours",
                    "request_id",
                    "expires_on",
                    "credential",
                ]
            ),
            inner,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_json_values)
def test_any_webhook_body_is_events_or_a_named_field(doc: object) -> None:
    body = json.dumps(doc).encode()
    try:
        events = decode_webhook(body)
    except WebhookError as exc:
        assert exc.field
        return
    assert events and all(k.event_id.startswith("workforce:") for k in events)
