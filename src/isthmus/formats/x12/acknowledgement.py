"""Inbound 999 implementation acknowledgments: what the receiver said of each set we sent.

005010X231A1: per functional group acknowledged, AK1 (AK101 functional identifier code,
AK102 the group control number GS06 we sent, AK103 its version), then per transaction set
loop 2000 AK2 (AK201 set id, AK202 the ST02 we sent, AK203 its convention), loop 2100 IK3
(IK301 segment id, IK302 position in the set, IK303 loop, IK304 code 620), loop 2110 IK4
(IK401 element position element:component, IK402 data element reference, IK403 code 621,
IK404 copy of the bad data), IK5 (IK501 A accepted, E accepted with errors, R rejected,
M/W/X rejected for authentication or encryption; IK502-506 codes 718) and AK9 (AK901 A,
E, P partially accepted or R; counts; AK905-909 codes 716).

``ack999.build_999`` writes them; this module reads them back (its tests round-trip).
Pure; X12Error only when the ISA is unusable, other problems are findings.
"""

from __future__ import annotations

from typing import Final

import msgspec

from isthmus.formats.x12.elements import padded
from isthmus.formats.x12.envelope import TransactionSpan, check_envelope
from isthmus.formats.x12.finding import Finding
from isthmus.formats.x12.reader import Interchange, read

ACCEPTED: Final = frozenset({"A", "E"})  # IK501 / AK901 codes that accept the set


class ElementError(msgspec.Struct, frozen=True, kw_only=True):
    """Loop 2110 IK4: an element in error (IK401 position and component, IK402 data element
    reference, IK403 code from list 621, IK404 the bad data)."""

    element: int
    component: int = 0
    reference: str = ""
    code: str = ""
    value: str = ""


class SegmentError(msgspec.Struct, frozen=True, kw_only=True):
    """Loop 2100 IK3: a segment in error (IK301 id, IK302 position in the set, IK303 loop,
    IK304 code from list 620) and its element errors."""

    segment_id: str
    position: int
    loop: str = ""
    code: str = ""
    elements: tuple[ElementError, ...] = ()


class SetAck(msgspec.Struct, frozen=True, kw_only=True):
    """Loop 2000: one transaction set acknowledged."""

    set_id: str  # AK201
    control: str  # AK202, the ST02 we sent
    convention: str = ""  # AK203
    status: str = ""  # IK501
    codes: tuple[str, ...] = ()  # IK502-506
    segments: tuple[SegmentError, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.status in ACCEPTED


class GroupAck(msgspec.Struct, frozen=True, kw_only=True):
    """One AK1..AK9: the functional group acknowledged."""

    functional_id: str  # AK101
    control: str  # AK102, the GS06 we sent
    version: str = ""  # AK103
    status: str = ""  # AK901
    included: int = 0
    received: int = 0
    accepted: int = 0
    codes: tuple[str, ...] = ()
    sets: tuple[SetAck, ...] = ()


class Ack999(msgspec.Struct, frozen=True, kw_only=True):
    """A 999 interchange read (005010X231A1): the groups it acknowledges, and what was wrong
    with the 999 itself."""

    interchange_control: str
    groups: tuple[GroupAck, ...] = ()
    findings: tuple[Finding, ...] = ()


def _int(v: str) -> int:
    return int(v) if v.isdigit() else 0


def parse_999(data: bytes | str | Interchange) -> Ack999:
    """Every AK1 group of every 999 set of an interchange."""
    ic = data if isinstance(data, Interchange) else read(data)
    env = check_envelope(ic)
    groups: list[GroupAck] = []
    for g in env.groups:
        for t in g.transactions:
            if t.id != "999":
                continue
            groups += read_999_set(ic, t)
    return Ack999(
        interchange_control=ic.control_number, groups=tuple(groups), findings=tuple(env.findings)
    )


def read_999_set(ic: Interchange, t: TransactionSpan) -> list[GroupAck]:
    """The AK1 groups of one 999 transaction set (``t``) of ``ic``."""
    es, cs = ic.delimiters.element, ic.delimiters.component
    groups: list[GroupAck] = []
    stop = t.stop - 1 if t.end >= 0 else t.stop
    group: dict[str, object] | None = None
    sets: list[SetAck] = []
    current: dict[str, object] | None = None
    segs: list[SegmentError] = []
    seg: dict[str, object] | None = None
    elems: list[ElementError] = []

    def close_segment() -> None:
        nonlocal seg, elems
        if seg is not None:
            segs.append(SegmentError(elements=tuple(elems), **seg))  # type: ignore[arg-type]
        seg, elems = None, []

    def close_set() -> None:
        nonlocal current, segs
        close_segment()
        if current is not None:
            sets.append(SetAck(segments=tuple(segs), **current))  # type: ignore[arg-type]
        current, segs = None, []

    for i in range(t.start + 1, stop):
        e = ic.raw[i].split(es)
        sid = e[0]
        if sid == "AK1":
            e = padded(e, 4)
            group = {"functional_id": e[1], "control": e[2], "version": e[3]}
            sets = []
        elif sid == "AK2":
            close_set()
            e = padded(e, 4)
            current = {"set_id": e[1], "control": e[2], "convention": e[3]}
        elif sid == "IK3":
            close_segment()
            e = padded(e, 5)
            seg = {"segment_id": e[1], "position": _int(e[2]), "loop": e[3], "code": e[4]}
        elif sid == "IK4" and seg is not None:
            e = padded(e, 5)
            pos = padded(e[1].split(cs), 2)
            elems.append(
                ElementError(
                    element=_int(pos[0]),
                    component=_int(pos[1]),
                    reference=e[2],
                    code=e[3],
                    value=e[4],
                )
            )
        elif sid == "IK5" and current is not None:
            close_segment()
            current["status"] = e[1] if len(e) > 1 else ""
            current["codes"] = tuple(x for x in e[2:7] if x)
        elif sid == "AK9" and group is not None:
            close_set()
            e = padded(e, 5)
            groups.append(
                GroupAck(
                    status=e[1],
                    included=_int(e[2]),
                    received=_int(e[3]),
                    accepted=_int(e[4]),
                    codes=tuple(x for x in e[5:10] if x),
                    sets=tuple(sets),
                    **group,  # type: ignore[arg-type]
                )
            )
            group = None
    close_set()
    if group is not None:  # AK9 missing: keep what the sets said
        groups.append(GroupAck(sets=tuple(sets), **group))  # type: ignore[arg-type]
    return groups
