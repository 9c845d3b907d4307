"""Claim status: the 276 request read and built, the 277 response and the 277CA read.

005010X212 (Health Care Claim Status Request and Response) and 005010X214 (Health Care
Claim Acknowledgment, the 277CA a clearinghouse or payer returns for each 837). Both are HL
hierarchies: 20 information source (NM1*PR / AY), 21 information receiver (NM1*41),
19 service provider (NM1*1P / 85), 22 subscriber (NM1*IL) and 23 dependent (NM1*QC); the
277CA names its patient level PT. A claim is the lowest level with a TRN (TRN01 = 1 on
the 276, 2 on the 277 and the 277CA claim level):

* REF*EJ (276/277) or REF*D9 (277CA: clearinghouse trace, echoed CLM01 at some
  clearinghouses) patient control number; REF*1K payer claim control number; REF*BLT bill
  type; AMT*T3 total charge (276); DTP*472 service dates;
* STC01 (C043): category (code list 507: A acknowledgement, P pending, F finalized,
  R request for more information, E error), status (code list 508) and entity (98); STC02
  effective date; STC04 total charge, STC05 paid amount; STC10 and STC11 more C043s;
* SVC with its own STC, the line level (kept with its procedure and charge).

A status at the receiver or provider level with no claim (a batch rejected whole) is kept
on its level. Pure; X12Error only when the ISA is unusable, other problems are findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Final

import msgspec

from isthmus.formats.x12.elements import Procedure, padded, parse_amount, parse_date, procedure
from isthmus.formats.x12.envelope import TransactionSpan, check_envelope
from isthmus.formats.x12.envelope_writer import envelope
from isthmus.formats.x12.finding import Finding
from isthmus.formats.x12.reader import Interchange, read
from isthmus.formats.x12.remittance import Party, Person, party_from_nm1, person_from_nm1

GUIDE_276: Final = "005010X212"
GUIDE_277CA: Final = "005010X214"
ACCEPTED_CATEGORIES: Final = frozenset({"A1", "A2", "A5", "A6"})  # see category()
REJECTED_CATEGORIES: Final = frozenset({"A3", "A4", "A7", "A8", "E0", "E1", "E2", "E3", "E4"})


class Status(msgspec.Struct, frozen=True, kw_only=True):
    """One C043 health care claim status: category (507), code (508), entity (98)."""

    category: str
    code: str = ""
    entity: str = ""
    effective: date | None = None  # STC02
    action: str = ""  # STC03
    charge: Decimal | None = None  # STC04
    paid: Decimal | None = None  # STC05


class LineStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Service line level of a 276/277 claim (SVC): the procedure, charge and paid amounts,
    line item control number (REF*FJ) and its statuses."""

    procedure: Procedure
    charge: Decimal | None = None
    paid: Decimal | None = None
    control_number: str = ""  # REF*FJ
    statuses: tuple[Status, ...] = ()


class ClaimStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One claim of a 276 (request: no statuses) or a 277 / 277CA (with them)."""

    transaction_control: str
    trace: str  # TRN02
    payer: Party
    provider: Party
    subscriber: Person | None = None
    patient: Person | None = None
    patient_control_number: str = ""  # REF*EJ, else REF*D9 on a 277CA
    payer_claim_control_number: str = ""  # REF*1K
    bill_type: str = ""  # REF*BLT
    charge: Decimal | None = None  # AMT*T3 (276)
    service_date: date | None = None
    service_end: date | None = None
    statuses: tuple[Status, ...] = ()
    lines: tuple[LineStatus, ...] = ()

    def category(self) -> str:
        """ "accepted", "rejected", "pending", "finalized", "info" or "" from the first
        status: A1/A2/A5/A6 accepted, A3/A4/A7/A8 and E* rejected (005010X214 1.10.2),
        P* pending, F* finalized, R* a request for more information."""
        if not self.statuses:
            return ""
        c = self.statuses[0].category
        if c in ACCEPTED_CATEGORIES:
            return "accepted"
        if c in REJECTED_CATEGORIES or c.startswith("E"):
            return "rejected"
        return {"P": "pending", "F": "finalized", "R": "info"}.get(c[:1], "")


class LevelStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A status at the receiver (21, 277CA 2200B) or provider (19, 2200C) level: a batch
    answered whole. ``batch`` is the TRN02 of the information receiver level above it (its
    own on level 21): on a 277CA the BHT03 of the 837 batch it answers."""

    level: str
    trace: str = ""
    party: Party
    statuses: tuple[Status, ...] = ()
    batch: str = ""
    transaction_control: str = ""  # ST02
    payer: Party | None = None  # the information source (HL 20)


class StatusBatch(msgspec.Struct, frozen=True, kw_only=True):
    """The claims and level statuses of a 276 or 277 interchange (005010X212, 277CA
    005010X214), the transaction set id and implementation guide read, and the findings."""

    interchange_control: str
    transaction: str = ""  # "276" or "277"
    guide: str = ""
    claims: tuple[ClaimStatus, ...] = ()
    levels: tuple[LevelStatus, ...] = ()
    findings: tuple[Finding, ...] = ()


def _status(e: list[str], cs: str, first: int = 1) -> list[Status]:
    e = padded(e, 12)
    out: list[Status] = []
    for n in (first, 10, 11):
        if not e[n]:
            continue
        c = padded(e[n].split(cs), 3)
        out.append(
            Status(
                category=c[0],
                code=c[1],
                entity=c[2],
                effective=parse_date(e[2]) if n == first else None,
                action=e[3] if n == first else "",
                charge=parse_amount(e[4]) if n == first and e[4] else None,
                paid=parse_amount(e[5]) if n == first and e[5] else None,
            )
        )
    return out


_NOPARTY: Final = Party(name="")
_PATIENT_LEVELS: Final = frozenset({"22", "23", "PT"})


class _Claim:
    __slots__ = ("charge", "dates", "lines", "refs", "statuses", "trace")

    def __init__(self, trace: str) -> None:
        self.trace = trace
        self.refs: dict[str, str] = {}
        self.charge: Decimal | None = None
        self.dates: tuple[date | None, date | None] = (None, None)
        self.statuses: list[Status] = []
        self.lines: list[dict[str, object]] = []


def parse_status(data: bytes | str | Interchange) -> StatusBatch:
    """Every claim (and level status) of every 276 or 277 set of an interchange."""
    ic = data if isinstance(data, Interchange) else read(data)
    env = check_envelope(ic)
    findings = list(env.findings)
    claims: list[ClaimStatus] = []
    levels: list[LevelStatus] = []
    kind = guide = ""
    for g in env.groups:
        for t in g.transactions:
            if t.id not in ("276", "277"):
                continue
            kind, guide = t.id, t.convention or g.version
            _read_set(ic, t, claims, levels)
    return StatusBatch(
        interchange_control=ic.control_number,
        transaction=kind,
        guide=guide,
        claims=tuple(claims),
        levels=tuple(levels),
        findings=tuple(findings),
    )


def _read_set(  # noqa: C901 - one branch per 277 segment (005010X212)
    ic: Interchange,
    t: TransactionSpan,
    claims: list[ClaimStatus],
    levels: list[LevelStatus],
) -> None:
    es, cs = ic.delimiters.element, ic.delimiters.component
    stop = t.stop - 1 if t.end >= 0 else t.stop
    parties: dict[str, Party] = {}
    level = ""
    subscriber: Person | None = None
    patient: Person | None = None
    claim: _Claim | None = None
    level_status: list[Status] = []
    level_trace = receiver_trace = ""
    line: dict[str, object] | None = None

    def flush() -> None:
        nonlocal claim, level_status, level_trace
        if claim is not None:
            lines = tuple(LineStatus(**x) for x in claim.lines)  # type: ignore[arg-type]
            refs = claim.refs
            claims.append(
                ClaimStatus(
                    transaction_control=t.control,
                    trace=claim.trace,
                    payer=parties.get("20", _NOPARTY),
                    provider=parties.get("19", parties.get("21", _NOPARTY)),
                    subscriber=subscriber,
                    patient=patient or subscriber,
                    patient_control_number=refs.get("EJ", "") or refs.get("D9", ""),
                    payer_claim_control_number=refs.get("1K", ""),
                    bill_type=refs.get("BLT", ""),
                    charge=claim.charge,
                    service_date=claim.dates[0],
                    service_end=claim.dates[1],
                    statuses=tuple(claim.statuses),
                    lines=lines,
                )
            )
        elif level_status and level in ("20", "21", "19"):
            levels.append(
                LevelStatus(
                    level=level,
                    trace=level_trace,
                    party=parties.get(level, _NOPARTY),
                    statuses=tuple(level_status),
                    batch=receiver_trace if level in ("21", "19") else "",
                    transaction_control=t.control,
                    payer=parties.get("20"),
                )
            )
        claim, level_status, level_trace = None, [], ""

    for i in range(t.start + 1, stop):
        e = ic.raw[i].split(es)
        sid = e[0]
        if sid == "HL":
            flush()
            line = None
            level = padded(e, 4)[3]
            if level in ("20", "21"):
                receiver_trace = ""
            if level == "22":
                subscriber, patient = None, None
            elif level in ("23", "PT"):
                patient = None
        elif sid == "NM1":
            q = padded(e, 2)[1]
            if level in ("20", "21", "19"):
                parties[level] = party_from_nm1(e)
            elif q == "IL":
                subscriber = person_from_nm1(e)
            elif q == "QC":
                patient = person_from_nm1(e)
        elif sid == "TRN":
            e = padded(e, 3)
            if level in _PATIENT_LEVELS:
                claim, line = _Claim(e[2]), None
            else:
                level_trace = e[2]
                if level == "21":
                    receiver_trace = e[2]
        elif sid == "STC":
            found = _status(e, cs)
            if line is not None:
                line["statuses"] = (*line.get("statuses", ()), *found)  # type: ignore[misc]
            elif claim is not None:
                claim.statuses += found
            else:
                level_status += found
        elif sid == "REF" and claim is not None:
            e = padded(e, 3)
            if line is not None and e[1] == "FJ":
                line["control_number"] = e[2]
            elif line is None:
                claim.refs.setdefault(e[1], e[2])
        elif sid == "AMT" and claim is not None and padded(e, 3)[1] == "T3":
            claim.charge = parse_amount(e[2])
        elif sid == "DTP" and claim is not None and line is None:
            e = padded(e, 4)
            if e[1] in ("472", "232"):
                v = e[3].split("-")
                claim.dates = (parse_date(v[0]), parse_date(v[1]) if len(v) > 1 else None)
        elif sid == "SVC" and claim is not None:
            e = padded(e, 4)
            line = {
                "procedure": procedure(e[1], cs),
                "charge": parse_amount(e[2]) if e[2] else None,
                "paid": parse_amount(e[3]) if e[3] else None,
            }
            claim.lines.append(line)
    flush()


def build_276(
    claims: Sequence[ClaimStatus],
    *,
    sender: str,
    receiver: str,
    interchange_control: int,
    group_control: int,
    at: datetime,
    usage: str = "P",
) -> str:
    """One 276 set per claim asked about (a subscriber level each, TRN*1 its trace,
    REF*1K/EJ, AMT*T3 and DTP*472 when known). Control numbers from the caller's counter."""
    body: list[list[str]] = []
    for n, c in enumerate(claims, start=1):
        ctl = f"{n:04d}"
        sub = c.subscriber or c.patient or Person(last="")
        segs: list[list[str]] = [
            ["ST", "276", ctl, GUIDE_276],
            ["BHT", "0010", "13", c.trace, at.strftime("%Y%m%d"), at.strftime("%H%M")],
            ["HL", "1", "", "20", "1"],
            ["NM1", "PR", "2", c.payer.name, "", "", "", "", "PI", c.payer.id],
            ["HL", "2", "1", "21", "1"],
            ["NM1", "41", "2", sender, "", "", "", "", "46", sender],
            ["HL", "3", "2", "19", "1"],
            [
                "NM1",
                "1P",
                "2",
                c.provider.name,
                "",
                "",
                "",
                "",
                "XX",
                c.provider.npi or c.provider.id,
            ],
            ["HL", "4", "3", "22", "0"],
            ["NM1", "IL", "1", sub.last, sub.first, "", "", "", "MI", sub.id],
            ["TRN", "1", c.trace],
        ]
        if c.payer_claim_control_number:
            segs.append(["REF", "1K", c.payer_claim_control_number])
        if c.patient_control_number:
            segs.append(["REF", "EJ", c.patient_control_number])
        if c.charge is not None:
            segs.append(["AMT", "T3", f"{c.charge:.2f}"])
        if c.service_date is not None:
            d0 = c.service_date.strftime("%Y%m%d")
            d1 = (c.service_end or c.service_date).strftime("%Y%m%d")
            segs.append(["DTP", "472", "RD8", f"{d0}-{d1}"])
        segs.append(["SE", str(len(segs) + 1), ctl])
        body += segs
    return envelope(
        body,
        functional_id="HR",
        guide=GUIDE_276,
        sender=sender,
        receiver=receiver,
        interchange_control=interchange_control,
        group_control=group_control,
        at=at,
        usage=usage,
    )
