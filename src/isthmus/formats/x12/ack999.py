"""Acknowledgements: the 999 implementation acknowledgment and the TA1 interchange ack.

999 follows 005010X231A1: one 999 transaction set per functional group received, with
AK1 (the group: GS01, GS06, GS08), per transaction set loop 2000 AK2 (ST01, ST02, ST03),
loop 2100 IK3 (segment ID, position in the set, loop ID, IK304 code), loop 2110 IK4
(element position as element:component, data element reference, IK403 code, copy of the
bad data), IK5 (IK501 A/E/R and IK502 codes), then AK9 (AK901 A/E/P/R, sets included,
received, accepted, AK905 codes). A set with no findings gets IK5*A, a group with no
findings AK9*A.

Balancing (level BALANCE: 005010X221A1 section 1.10.2.1 for the 835, CLM02 = sum of line
charges for the 837) is an implementation guide rule, so a set that breaks it is reported
too. X231A1 has no code named for balancing; the set is answered as one whose value breaks
an implementation guide rule: IK3 at the segment that does not balance (BPR, CLP or SVC;
CLM for an 837) with IK304 8 (segment has data element errors), IK4 at the amount that is
out (BPR02, CLP04, SVC03, CLM02; element 782) with IK403 I12 (implementation pattern match
failure) and IK404 a copy of that amount, and IK5 E with IK502 I5 (implementation: one or
more segments in error): the set is kept, not rejected. The hub holds its money for a
person to release (flows/interchanges.py); asking the sender to send it again (R) would bring a
second copy of the same payment.

TA1 follows X12.5 (interchange acknowledgment): TA101-TA103 repeat ISA13, ISA09, ISA10
of the interchange acknowledged, TA104 is A (accepted), E (accepted with errors) or R
(rejected), TA105 the note code (``errors.TA105_NOTES``). It is sent for envelope errors,
the findings of level INTERCHANGE and :class:`X12Error`.

Both are pure: the caller passes the control number and the time to stamp.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Final

from isthmus.formats.x12 import errors
from isthmus.formats.x12.envelope import check_envelope
from isthmus.formats.x12.finding import Finding, Level
from isthmus.formats.x12.reader import Delimiters, Interchange, decode

GUIDE_999: Final = "005010X231A1"
_SEGMENT_ERRORS: Final = "5"  # IK502: one or more segments in error
_IMPLEMENTATION_ERRORS: Final = "I5"  # IK502: implementation, one or more segments in error
_ELEMENT_ERRORS: Final = "8"  # IK304: segment has data element errors
_PATTERN_FAILURE: Final = "I12"  # IK403: implementation pattern match failure
# The amount a balancing finding points at: (element position, X12 data element reference).
_OUT_OF_BALANCE: Final[dict[str, tuple[int, str]]] = {
    "BPR": (2, "782"),
    "CLP": (4, "782"),
    "SVC": (3, "782"),
    "CLM": (2, "782"),
}
_WIDTHS: Final = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)


def _fixed(v: str, n: int) -> str:
    return v.ljust(n)[:n]


def _isa(received: Sequence[str], d: Delimiters, control: int, at: datetime, usage: str) -> str:
    r = list(received) + [""] * (17 - len(received))
    isa = [
        "ISA",
        "00",
        "",
        "00",
        "",
        r[7] or "ZZ",
        r[8],
        r[5] or "ZZ",
        r[6],
        at.strftime("%y%m%d"),
        at.strftime("%H%M"),
        d.repetition or "U",
        r[12] if r[12] in ("00401", "00501") else "00501",
        f"{control:09d}",
        "0",
        r[15] if r[15] in ("P", "T", "I") else usage,
        d.component,
    ]
    fields = [_fixed(v, w) for v, w in zip(isa[1:], _WIDTHS, strict=True)]
    return d.element.join(["ISA", *fields])


def _delimiters(received: Delimiters | None) -> Delimiters:
    return received if received is not None else Delimiters()


def _clean(v: str, d: Delimiters) -> str:
    for c in (d.element, d.component, d.repetition, d.segment):
        if c:
            v = v.replace(c, " ")
    return v[:99]


def build_ta1(
    isa_fields: Sequence[str],
    note_code: str,
    *,
    ack_code: str | None = None,
    control_number: int = 1,
    at: datetime | None = None,
    delimiters: Delimiters | None = None,
) -> bytes:
    """A TA1 interchange (ISA, TA1, IEA) acknowledging the ISA whose elements are
    ``isa_fields`` (``isa_fields[1]`` is ISA01, as ``Interchange.isa`` holds them).

    TA104 is ``ack_code`` when given, else A for note code 000 and R otherwise.
    """
    d = _delimiters(delimiters)
    at = at or datetime.now(UTC)
    r = list(isa_fields) + [""] * (17 - len(isa_fields))
    code = ack_code or ("A" if note_code == errors.NO_ERROR else "R")
    ta1 = ["TA1", _fixed(r[13], 9), _fixed(r[9], 6), _fixed(r[10], 4), code, note_code]
    segs = [
        _isa(isa_fields, d, control_number, at, "P"),
        d.element.join(_clean(v, d) for v in ta1),
        d.element.join(["IEA", "0", f"{control_number:09d}"]),
    ]
    return "".join(s + d.segment for s in segs).encode()


def recover_isa(data: bytes | str) -> list[str]:
    """Best-effort ISA elements of data the reader refused, to address a TA1 to it."""
    text = decode(data).lstrip("\ufeff \t\r\n\x00")[:200]
    if len(text) < 4 or text[:3] != "ISA":
        return ["ISA"]
    return text.split(text[3])[:17]


def ta1_note(findings: Iterable[Finding]) -> str:
    """The TA105 code for a set of findings: the first INTERCHANGE one, or 000."""
    return next((x.code for x in findings if x.level is Level.INTERCHANGE), errors.NO_ERROR)


def _balance_as_element(x: Finding, interchange: Interchange) -> Finding:
    """A balancing finding as the element finding the 999 reports (module docstring)."""
    element, ref = _OUT_OF_BALANCE.get(x.segment_id, (0, ""))
    es = interchange.delimiters.element
    parts = interchange.raw[x.segment_index].split(es) if element else []
    return Finding(
        level=Level.ELEMENT,
        code=_PATTERN_FAILURE,
        text=x.text,
        segment_index=x.segment_index,
        segment_id=x.segment_id,
        loop=x.loop,
        element=element,
        element_ref=ref,
        value=parts[element] if element < len(parts) else "",
    )


def build_999(  # noqa: C901 - one branch per 999 finding (005010X231A1)
    interchange: Interchange,
    findings: Iterable[Finding],
    *,
    control_number: int = 1,
    at: datetime | None = None,
) -> bytes:
    """A 999 interchange acknowledging every functional group of ``interchange``.

    ``findings`` are those of :func:`check_envelope` and of the transaction readers;
    level INTERCHANGE (a TA1 matter) is not reported, BALANCE is (module docstring).
    """
    at = at or datetime.now(UTC)
    d = interchange.delimiters
    es, cs = d.element, d.component
    env = check_envelope(interchange)
    wanted = (Level.TRANSACTION, Level.SEGMENT, Level.ELEMENT)
    syntax = [x for x in findings if x.level in wanted]
    syntax += [
        _balance_as_element(x, interchange)
        for x in findings
        if x.level is Level.BALANCE and x.segment_index >= 0
    ]
    group_findings = [x for x in findings if x.level is Level.GROUP]
    isa = interchange.isa
    segs: list[list[str]] = []
    for n, g in enumerate(env.groups, start=1):
        body: list[list[str]] = [["AK1", g.functional_id, g.control, g.version]]
        accepted = 0
        partial = False
        for t in g.transactions:
            ak2 = ["AK2", t.id, t.control]
            if t.convention:
                ak2.append(t.convention)
            body.append(ak2)
            mine = [x for x in syntax if t.start <= x.segment_index < t.stop]
            codes: list[str] = []
            by_segment: dict[int, list[Finding]] = {}
            for x in mine:
                if x.level is Level.TRANSACTION:
                    if x.code not in codes:
                        codes.append(x.code)
                else:
                    by_segment.setdefault(x.segment_index, []).append(x)
            reject = bool(codes)
            for idx in sorted(by_segment):
                items = by_segment[idx]
                seg_codes = [x.code for x in items if x.level is Level.SEGMENT]
                first = items[0]
                sid = first.segment_id or interchange.raw[idx].split(es, 1)[0][:3]
                body.append(
                    [
                        "IK3",
                        sid,
                        str(idx - t.start + 1),
                        first.loop,
                        seg_codes[0] if seg_codes else _ELEMENT_ERRORS,
                    ]
                )
                for x in items:
                    if x.level is Level.ELEMENT and x.element > 0:
                        pos = str(x.element) + (f"{cs}{x.component}" if x.component else "")
                        ik4 = ["IK4", pos, x.element_ref, x.code]
                        if x.value:
                            ik4.append(_clean(x.value, d))
                        body.append(ik4)
                if seg_codes:
                    reject = True
                    if _SEGMENT_ERRORS not in codes:
                        codes.append(_SEGMENT_ERRORS)
            if by_segment and not reject and _IMPLEMENTATION_ERRORS not in codes:
                codes.append(_IMPLEMENTATION_ERRORS)
            status = "R" if reject else ("E" if codes else "A")
            accepted += status != "R"
            partial = partial or status != "A"
            body.append(["IK5", status, *codes[:5]])
        received = len(g.transactions)
        g_codes = [
            x.code
            for x in group_findings
            if g.start
            <= x.segment_index
            <= max(g.end, g.transactions[-1].stop if g.transactions else g.start)
        ]
        if g_codes or (accepted == 0 and received):
            ak901 = "R"
        elif accepted < received:
            ak901 = "P"
        else:
            ak901 = "E" if partial else "A"
        body.append(
            [
                "AK9",
                ak901,
                str(received),
                str(received),
                str(accepted),
                *dict.fromkeys(g_codes).keys(),
            ][:10]
        )
        st_control = f"{n:04d}"
        segs.append(["ST", "999", st_control, GUIDE_999])
        segs.extend(body)
        segs.append(["SE", str(len(body) + 2), st_control])
    date8, time4 = at.strftime("%Y%m%d"), at.strftime("%H%M")
    sender = env.groups[0].receiver if env.groups else ""
    receiver = env.groups[0].sender if env.groups else ""
    gs = ["GS", "FA", sender, receiver, date8, time4, str(control_number), "X", GUIDE_999]
    out = [_isa(isa, d, control_number, at, "P"), es.join(gs)]
    out.extend(es.join(s) for s in segs)
    out.append(es.join(["GE", str(len(env.groups)), str(control_number)]))
    out.append(es.join(["IEA", "1", f"{control_number:09d}"]))
    return "".join(s + d.segment for s in out).encode()
