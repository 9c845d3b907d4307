"""Envelope checks: ISA/IEA, GS/GE and ST/SE, as findings with their locations.

ASC X12.5 (interchange control structure) and X12.6 (application control structure),
version 005010, as the HIPAA implementation guides use them (appendix B of each guide):

* ISA fields have fixed lengths; IEA01 counts the functional groups and IEA02 repeats
  ISA13 (TA105 codes 021 and 001);
* GE01 counts the transaction sets of the group and GE02 repeats GS06 (AK905 codes 5, 4;
  a group without GE is code 3);
* SE01 counts the segments of the set, ST and SE included, and SE02 repeats ST02 (IK502
  codes 4 and 3; a set without SE is code 2).

:func:`check_envelope` walks the control segments once and returns the outline of the
interchange (groups and their transaction sets, by segment index) with the findings; the
transaction readers and the 999 builder work from that outline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import compress
from operator import itemgetter
from typing import Final

from isthmus.formats.x12 import errors
from isthmus.formats.x12 import finding as f
from isthmus.formats.x12.finding import Finding, Level
from isthmus.formats.x12.reader import Interchange

# ISA01..ISA16: fixed length and the TA105 note code sent when the element is invalid.
ISA_FIELDS: Final[tuple[tuple[int, str], ...]] = (
    (2, errors.INVALID_AUTHORIZATION_QUALIFIER),
    (10, errors.INVALID_AUTHORIZATION_VALUE),
    (2, errors.INVALID_SECURITY_QUALIFIER),
    (10, errors.INVALID_SECURITY_VALUE),
    (2, errors.INVALID_SENDER_QUALIFIER),
    (15, errors.INVALID_SENDER_ID),
    (2, errors.INVALID_RECEIVER_QUALIFIER),
    (15, errors.INVALID_RECEIVER_ID),
    (6, errors.INVALID_DATE),
    (4, errors.INVALID_TIME),
    (1, errors.INVALID_STANDARDS_ID),
    (5, errors.INVALID_VERSION_ID),
    (9, errors.INVALID_CONTROL_NUMBER),
    (1, errors.INVALID_ACK_REQUESTED),
    (1, errors.INVALID_TEST_INDICATOR),
    (1, errors.INVALID_COMPONENT_SEPARATOR),
)
SUPPORTED_VERSIONS: Final = ("00401", "00501")
_CONTROL: dict[str, frozenset[str]] = {}
_HEAD: Final = itemgetter(slice(0, 3))  # the control segment prefixes, per separator


@dataclass(slots=True)
class TransactionSpan:
    """One transaction set: ST at ``start``, SE at ``end`` (-1 when missing)."""

    start: int
    end: int
    id: str
    control: str
    convention: str = ""
    stop: int = 0  # index after the last segment of the set (SE, or where it was cut off)


@dataclass(slots=True)
class GroupSpan:
    """One functional group: GS at ``start``, GE at ``end`` (-1 when missing)."""

    start: int
    end: int
    functional_id: str
    sender: str
    receiver: str
    control: str
    version: str
    transactions: list[TransactionSpan] = field(default_factory=list)


@dataclass(slots=True)
class Envelope:
    """The outline of an interchange and what is wrong with its envelopes."""

    groups: list[GroupSpan]
    findings: list[Finding]
    end: int = -1  # index of the IEA, -1 when missing

    @property
    def rejected(self) -> bool:
        """True when the interchange itself is in error (answer with a TA1, code R)."""
        return any(x.level is Level.INTERCHANGE for x in self.findings)


_WIDTHS: Final = tuple(w for w, _ in ISA_FIELDS)


def _isa_findings(isa: list[str], out: list[Finding]) -> None:
    if (
        tuple(map(len, isa[1:])) == _WIDTHS
        and isa[9].isdigit()
        and isa[10].isdigit()
        and isa[13].isdigit()
        and isa[14] in ("0", "1")
        and isa[15] in ("P", "T", "I")
        and isa[12] in SUPPORTED_VERSIONS
        and "01" <= isa[9][2:4] <= "12"
        and "01" <= isa[9][4:] <= "31"
        and isa[10][:2] <= "23"
        and isa[10][2:] <= "59"
    ):
        return  # the fast path: a well-formed ISA
    for n, (size, code) in enumerate(ISA_FIELDS, start=1):
        v = isa[n]
        bad = len(v) != size
        if not bad and n == 9:
            bad = not v.isdigit() or not ("01" <= v[2:4] <= "12" and "01" <= v[4:] <= "31")
        elif not bad and n == 10:
            bad = not v.isdigit() or v[:2] > "23" or v[2:] > "59"
        elif not bad and n == 13:
            bad = not v.isdigit()
        elif not bad and n == 14:
            bad = v not in ("0", "1")
        elif not bad and n == 15:
            bad = v not in ("P", "T", "I")
        if bad:
            what = f"length {len(v)}, expected {size}" if len(v) != size else f"value {v!r}"
            out.append(_at(Level.INTERCHANGE, code, f"ISA{n:02d} is invalid: {what}", 0, "ISA", n))
    if len(isa[12]) == 5 and isa[12] not in SUPPORTED_VERSIONS:
        out.append(
            _at(
                Level.INTERCHANGE,
                errors.VERSION_NOT_SUPPORTED,
                f"interchange version {isa[12]!r} is not supported",
                0,
                "ISA",
                12,
            )
        )


def _at(level: Level, code: str, text: str, index: int, sid: str, element: int = 0) -> Finding:
    return Finding(
        level=level, code=code, text=text, segment_index=index, segment_id=sid, element=element
    )


def _count(value: str, actual: int) -> bool:
    return value.isdigit() and int(value) == actual


class EnvelopeCheck:
    """The envelope checks fed one segment at a time, for readers that walk the segments
    themselves (the 835 reader, the streaming reader) and for :func:`check_envelope`.

    Feed every control segment (ID ``ISA``/``IEA``, or ``GS``, ``GE``, ``ST``, ``SE``; as
    their elements) to :meth:`control`, every other segment met while no transaction set
    is open to :meth:`other`, then call :meth:`finish` once. ``tx`` and ``group`` are the
    transaction set and group open at the moment.
    """

    __slots__ = (
        "_first",
        "_other",
        "_sets",
        "control_number",
        "group",
        "groups",
        "iea",
        "out",
        "tx",
    )

    def __init__(self, isa: list[str]) -> None:
        self.out: list[Finding] = []
        self.groups: list[GroupSpan] = []
        self.group: GroupSpan | None = None
        self.tx: TransactionSpan | None = None
        self.iea = -1
        self.control_number = isa[13] if len(isa) > 13 else ""
        # the run of segments outside any set since the last control segment: its first
        # segment, and its first that is not a TA1 (TA1s may sit between ISA and GS, X12.5)
        self._first: tuple[int, str] | None = None
        self._other: tuple[int, str] | None = None
        self._sets: set[str] = set()  # ST02 of the open group, for uniqueness
        _isa_findings(isa, self.out)

    def other(self, i: int, sid: str) -> None:
        """Segment ``i`` (its ID ``sid``) is outside any transaction set."""
        if self._first is None:
            self._first = (i, sid)
        if self._other is None and sid[:3] != "TA1":
            self._other = (i, sid)

    def _flush(self, ta1_ok: bool) -> None:
        """Report the first segment of the run outside a transaction set, if any."""
        at = self._other if ta1_ok else self._first
        if at is not None:
            text = "segment outside a transaction set"
            self.out.append(_at(Level.INTERCHANGE, errors.INVALID_CONTENT, text, at[0], at[1][:3]))
        self._first = self._other = None

    def control(self, i: int, e: list[str]) -> None:  # noqa: C901 - one check per ISA/GS/ST rule, by TA1/IK5 code
        """Control segment ``i``, ``e`` its elements (the segment ID first)."""
        out = self.out
        if self._first is not None:
            self._flush(self.group is None)
        sid = e[0]
        if self.iea >= 0:
            out.append(
                _at(Level.INTERCHANGE, errors.INVALID_CONTROL_STRUCTURE, "data after IEA", i, sid)
            )
            return
        tx, group = self.tx, self.group
        if tx is not None and sid in ("ST", "GS", "GE", "IEA", "ISA"):
            out.append(_at(Level.TRANSACTION, f.IK5_TRAILER_MISSING, "SE missing", tx.start, "ST"))
            tx.stop = i
            tx = self.tx = None
        if group is not None and sid in ("GS", "IEA", "ISA"):
            out.append(_at(Level.GROUP, f.AK9_TRAILER_MISSING, "GE missing", group.start, "GS"))
            group = self.group = None
        groups = self.groups
        if sid == "ST":
            if len(e) < 4:
                e = e + [""] * (4 - len(e))
            if group is None:
                out.append(
                    _at(Level.INTERCHANGE, errors.INVALID_CONTENT, "ST outside a group", i, sid)
                )
                group = self.group = GroupSpan(-1, -1, "", "", "", "", "")
                groups.append(group)
                self._sets = set()
            if e[2] in self._sets:
                out.append(
                    _at(
                        Level.TRANSACTION, f.IK5_CONTROL_NOT_UNIQUE, "ST02 is not unique", i, sid, 2
                    )
                )
            tx = self.tx = TransactionSpan(i, -1, e[1], e[2], e[3])
            group.transactions.append(tx)
            self._sets.add(e[2])
            if not e[1]:
                out.append(_at(Level.TRANSACTION, f.IK5_MISSING_ID, "ST01 missing", i, sid, 1))
            if not e[2]:
                out.append(_at(Level.TRANSACTION, f.IK5_MISSING_CONTROL, "ST02 missing", i, sid, 2))
        elif sid == "SE":
            if len(e) < 3:
                e = e + [""] * (3 - len(e))
            if tx is None:
                out.append(_at(Level.INTERCHANGE, errors.INVALID_CONTENT, "SE without ST", i, sid))
                return
            n = i - tx.start + 1
            if e[1] != str(n) and not _count(e[1], n):
                text = f"SE01 is {e[1]!r}, the set has {n} segments"
                out.append(_at(Level.TRANSACTION, f.IK5_COUNT_MISMATCH, text, i, sid, 1))
            if e[2] != tx.control:
                text = f"SE02 {e[2]!r} does not match ST02 {tx.control!r}"
                out.append(_at(Level.TRANSACTION, f.IK5_CONTROL_MISMATCH, text, i, sid, 2))
            tx.end = i
            tx.stop = i + 1
            self.tx = None
        elif sid == "GS":
            if len(e) < 9:
                e = e + [""] * (9 - len(e))
            group = self.group = GroupSpan(i, -1, e[1], e[2], e[3], e[6], e[8])
            groups.append(group)
            self._sets = set()
            if not e[6].isdigit():
                out.append(_at(Level.GROUP, f.AK9_CONTROL_SYNTAX, "GS06 is not numeric", i, sid, 6))
            elif len(groups) > 1 and any(g.control == e[6] for g in groups[:-1]):
                out.append(
                    _at(Level.GROUP, f.AK9_CONTROL_NOT_UNIQUE, "GS06 is not unique", i, sid, 6)
                )
        elif sid == "GE":
            if len(e) < 3:
                e = e + [""] * (3 - len(e))
            if group is None:
                out.append(_at(Level.INTERCHANGE, errors.INVALID_CONTENT, "GE without GS", i, sid))
                return
            n = len(group.transactions)
            if not _count(e[1], n):
                text = f"GE01 is {e[1]!r}, the group has {n} transaction sets"
                out.append(_at(Level.GROUP, f.AK9_COUNT_MISMATCH, text, i, sid, 1))
            if e[2] != group.control:
                text = f"GE02 {e[2]!r} does not match GS06 {group.control!r}"
                out.append(_at(Level.GROUP, f.AK9_CONTROL_MISMATCH, text, i, sid, 2))
            group.end = i
            self.group = None
        elif sid == "IEA":
            if len(e) < 3:
                e = e + [""] * (3 - len(e))
            n = len(groups)
            if not _count(e[1], n):
                text = f"IEA01 is {e[1]!r}, the interchange has {n} groups"
                out.append(_at(Level.INTERCHANGE, errors.INVALID_GROUP_COUNT, text, i, sid, 1))
            if e[2] != self.control_number:
                text = f"IEA02 {e[2]!r} does not match ISA13 {self.control_number!r}"
                out.append(_at(Level.INTERCHANGE, errors.CONTROL_NUMBER_MISMATCH, text, i, sid, 2))
            self.iea = i
        else:  # a second ISA before the IEA
            out.append(
                _at(Level.INTERCHANGE, errors.INVALID_CONTROL_STRUCTURE, "ISA before IEA", i, sid)
            )

    def finish(self, count: int, last_id: str, unterminated: bool) -> Envelope:
        """The outline and findings, once ``count`` segments were fed, the last one with
        segment ID ``last_id``; ``unterminated``: that one had no terminator."""
        out = self.out
        if self._first is not None:
            self._flush(self.group is None and self.iea < 0)
        last = count
        tx, group = self.tx, self.group
        if tx is not None:
            out.append(_at(Level.TRANSACTION, f.IK5_TRAILER_MISSING, "SE missing", tx.start, "ST"))
            tx.stop = last
        if group is not None:
            out.append(_at(Level.GROUP, f.AK9_TRAILER_MISSING, "GE missing", group.start, "GS"))
        if unterminated:
            text = "the last segment has no terminator: the data is cut short"
            out.append(_at(Level.INTERCHANGE, errors.PREMATURE_END, text, last - 1, last_id[:3]))
        elif self.iea < 0:
            out.append(_at(Level.INTERCHANGE, errors.PREMATURE_END, "IEA missing", last - 1, ""))
        return Envelope(self.groups, out, self.iea)


def is_control(sid: str) -> bool:
    """True for the segment IDs the envelope checks look at (by their first letters, as a
    garbled "ISAX" is still an interchange header out of place)."""
    return sid in ("ST", "SE", "GS", "GE") or sid[:3] in ("ISA", "IEA")


def check_envelope(ic: Interchange) -> Envelope:
    """Walk the control segments of ``ic``: its outline and the envelope findings."""
    es = ic.delimiters.element
    control = _CONTROL.get(es)
    if control is None:
        control = _CONTROL[es] = frozenset(
            {"ISA", "IEA", "GS" + es, "GE" + es, "ST" + es, "SE" + es, "GS", "GE", "ST", "SE"}
        )
    chk = EnvelopeCheck(ic.isa)
    raw = ic.raw
    # the control segments, found at C speed: their indexes, then a Python loop over those
    heads = map(_HEAD, raw)
    marks = list(compress(range(len(raw)), map(control.__contains__, heads)))
    previous = 0
    for i in marks[1:] if marks and marks[0] == 0 else marks:
        if chk.tx is None and i > previous + 1:
            _run(chk, raw, previous + 1, i, es)
        previous = i
        chk.control(i, raw[i].split(es))
    last = len(raw)
    if chk.tx is None and last > previous + 1:
        _run(chk, raw, previous + 1, last, es)
    return chk.finish(last, raw[-1].split(es, 1)[0], ic.unterminated)


def _run(chk: EnvelopeCheck, raw: list[str], j: int, stop: int, es: str) -> None:
    """Feed raw[j:stop], segments outside any set, up to the first that is not a TA1."""
    while j < stop:
        sid = raw[j].split(es, 1)[0]
        chk.other(j, sid)
        if sid[:3] != "TA1":
            return
        j += 1
