"""Reading the fields every HL7 v2 finance event needs (pure): times, the patient, the
facility, the visit.

HL7 v2.5.1 data types (ch. 2A): TS/DTM times, DT dates, CX patient identifiers (PID-3), PL
locations (PV1-3). The patient identity is the PID-3 repetition whose identifier type
(CX-5) is "MR", else the first: MRN = CX-1, assigning authority = CX-4.1; an empty
authority falls back to the sending facility (MSH-4.1). Facility: PV1-3.4 (PL-4, HD), else
MSH-4.1. Visit: PV1-19 visit number, else PID-18 account number.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from isthmus.formats.hl7v2.errors import REQUIRED_FIELD_MISSING, ErrorLocation, HL7ParseError
from isthmus.formats.hl7v2.message import Message
from isthmus.formats.hl7v2.segment import Segment
from isthmus.model import PatientRef


def missing(seg: str, field: int, what: str, component: int = 0) -> HL7ParseError:
    """The parse error for a required field (or component) that is empty, with its location
    (HL7 v2.5.1 chapter 2, ERR-2)."""
    return HL7ParseError(
        REQUIRED_FIELD_MISSING, f"{what} is required", ErrorLocation(seg, 1, field, component)
    )


def parse_ts(text: str) -> datetime | None:
    """HL7 TS/DTM: YYYY[MM[DD[HH[MM[SS[.S{1,4}]]]]]][+/-ZZZZ]; None when empty or invalid."""
    text = text.strip()
    if not text:
        return None
    tz = UTC
    for sign in ("+", "-"):
        pos = text.find(sign, 4)
        if pos > 0:
            off = text[pos + 1 :]
            text = text[:pos]
            if len(off) == 4 and off.isdigit():
                delta = timedelta(hours=int(off[:2]), minutes=int(off[2:]))
                tz = timezone(delta if sign == "+" else -delta)
            break
    main = text.split(".", 1)[0]
    if len(main) < 4 or not main.isdigit():
        return None
    parts = [int(main[i : i + 2]) for i in range(4, min(len(main), 14), 2)]
    month, day, hour, minute, second = (parts + [1, 1, 0, 0, 0][len(parts) :])[:5]
    try:
        return datetime(int(main[:4]), month, day, hour, minute, second, tzinfo=tz)
    except ValueError:
        return None


def parse_date(text: str) -> date | None:
    """The date part of an HL7 DT/DTM (YYYYMMDD...); None when missing or invalid."""
    text = text.strip()
    if len(text) < 8 or not text[:8].isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def patient_of(msg: Message, seg: Segment | None = None, field: int = 3) -> PatientRef:
    """The patient of a CX list, PID-3 by default (or `field` of another segment, such as
    MRG-1): the repetition typed MR (CX-5), else the first; MRN CX-1, authority CX-4.1, else
    MSH-4.1."""
    pid = seg or msg.segment("PID")
    name = pid.name if pid is not None else "PID"
    if pid is None:
        raise HL7ParseError(REQUIRED_FIELD_MISSING, "PID segment is required", ErrorLocation("PID"))
    reps = pid.repetitions(field)
    chosen = 1
    for i in range(1, len(reps) + 1):
        if pid.value(field, 5, repetition=i) == "MR":
            chosen = i
            break
    mrn = pid.value(field, 1, repetition=chosen).strip()
    if not mrn:
        raise missing(name, field, "patient identifier (CX-1)", 1)
    authority = pid.value(field, 4, repetition=chosen).strip() or msg.get("MSH-4.1").strip()
    return PatientRef(mrn=mrn, authority=authority or "UNKNOWN")


def facility_of(msg: Message) -> str:
    """The facility of a message: PV1-3.4 (PL-4, the location's facility), else MSH-4.1."""
    pv1 = msg.segment("PV1")
    return (pv1.value(3, 4).strip() if pv1 is not None else "") or msg.sending_facility.strip()


def visit_of(msg: Message, pv1: Segment | None = None, pid: Segment | None = None) -> str:
    """PV1-19 visit number (CX-1), else PID-18 patient account number."""
    pv1 = pv1 or msg.segment("PV1")
    pid = pid or msg.segment("PID")
    return (pv1.value(19, 1).strip() if pv1 is not None else "") or (
        pid.value(18, 1).strip() if pid is not None else ""
    )


def event_time(msg: Message) -> datetime | None:
    """EVN-6 event occurred, else EVN-2 recorded date/time."""
    return parse_ts(msg.get("EVN-6.1")) or parse_ts(msg.get("EVN-2.1"))
