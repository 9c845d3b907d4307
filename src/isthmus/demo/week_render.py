"""What one message of the simulated hospital week says, and its HL7 v2 text.

A `Fact` is a message in the generator's own terms (who, which visit, which unit, which FT1
lines, payers and codes); `render` writes it as HL7 v2 of a given version (demo/
hospital_week.py decides the order and the facts; a test's model reads only the facts).
Field positions follow HL7 v2.5.1: MSH/EVN (ch. 2, 3), PID/PV1/MRG (ch. 3), FT1 6.5.1,
DG1 6.5.2, PR1 6.5.4, IN1 6.5.6, IN2 6.5.7; OBR/OBX (ch. 7); SCH/AIS (ch. 10). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from isthmus.demo.ehr_segments import (
    CHARGE_CODES,
    PROVIDERS,
    STREETS,
    cx,
    segment,
    xcn,
)
from isthmus.demo.ehr_segments import field as checked

PAYERS = {
    "BCBS01": ("BLUE PLAN PPO", "PPO"),
    "AETNA02": ("AETNA CHOICE", "HMO"),
    "MCARE03": ("MEDICARE PART A", "MC"),
    "SELF00": ("SELF PAY", "SP"),
}
# FT1-7 of payments and adjustments: a site's own transaction codes (no revenue mapping)
PAY_CODES = {"PY": "PAYMENT^PATIENT OR PAYER PAYMENT", "AJ": "ADJUST^BALANCE ADJUSTMENT"}
# ADT structures without PV1 (HL7 v2.5.1 3.3.28/29/31, A40 A41 A44 A47 A49: PID, MRG only)
NO_PV1 = frozenset({"A28", "A29", "A31", "A40", "A41", "A44", "A47", "A49"})
# a charge code -> (lowest, highest unit price, description, code system)
PRICES = {s.code: (s.low, s.high, s.description, s.system) for s in CHARGE_CODES}


@dataclass(frozen=True)
class Person:
    """A synthetic patient: one medical record number, one account, one visit, one facility."""

    mrn: str
    facility: str
    account: str
    visit: str
    family: str
    given: str
    birth: date
    sex: str

    @property
    def authority(self) -> str:
        return f"{self.facility}MRN"


@dataclass(frozen=True)
class Line:
    """One FT1 segment as sent: `amount` is FT1-11 (an AJ or a CG may be negative), and
    `department` FT1-13, "" when the visit's location decides the cost center."""

    txn: str
    ttype: str  # FT1-6, HL7 table 0017: CG, CD, PY, AJ
    code: str  # FT1-7
    quantity: int
    amount: Decimal
    department: str
    service_date: date


@dataclass(frozen=True)
class Fact:
    """What one message says. `unit` is PV1-3.1 (point of care) as the message states it;
    for A17 `other` is the second patient of the swap and its new unit. For a merge or move,
    `person` is what PID-3/PID-18/PV1-19 become and `prior` what MRG-1/MRG-3/MRG-5 name ("" not
    sent); `resent` marks a copy of the previous message under a new MSH-10 (same MSH-7)."""

    event: str  # MSH-9.1^MSH-9.2
    person: Person | None
    patient_class: str = ""  # PV1-2, HL7 table 0004
    unit: str = ""
    lines: tuple[Line, ...] = ()
    payers: tuple[str, ...] = ()  # IN1-3, one IN1 (and IN2) each
    diagnoses: tuple[str, ...] = ()  # DG1-3
    procedures: tuple[str, ...] = ()  # PR1-3
    other: tuple[Person, str] | None = None
    prior: Person | None = None
    resent: bool = False


def _ts(at: datetime) -> str:
    return f"{at:%Y%m%d%H%M%S}"


def _pid(p: Person) -> str:
    street = STREETS[int(p.mrn[1:]) % len(STREETS)]
    return segment(
        "PID",
        {
            1: "1",
            3: cx(p.mrn, p.authority, "MR"),
            5: f"{checked(p.family)}^{checked(p.given)}^^^^^L",
            7: f"{p.birth:%Y%m%d}",
            8: p.sex,
            11: f"{street}^^ISTHMUS CITY^WI^53700^USA",
            18: cx(p.account, p.facility, "AN"),
        },
    )


def _pv1(p: Person, pclass: str, unit: str, at: datetime, *, discharge: bool = False) -> str:
    provider = PROVIDERS[int(p.mrn[1:]) % len(PROVIDERS)]
    fields = {
        1: "1",
        2: pclass or "N",
        3: f"{unit}^{int(p.mrn[-2:]) + 100}^A^{p.facility}" if unit else f"^^^{p.facility}",
        7: xcn(provider),
        10: {"E": "EME", "O": "MED", "I": "MED"}.get(pclass, "MED"),
        19: cx(p.visit, p.facility, "VN"),
        20: "01",
        44: _ts(at),
    }
    if discharge:
        fields[36], fields[45] = "01", _ts(at)  # table 0112 discharge disposition: home
    return segment("PV1", fields)


def _ft1(i: int, line: Line) -> str:
    if line.ttype in PAY_CODES and line.code in PAY_CODES:
        code = PAY_CODES[line.code]
    else:
        _, _, desc, system = PRICES[line.code]
        code = f"{line.code}^{desc}^{system}"
    dept = f"{line.department}^{line.department}" if line.department else ""
    return segment(
        "FT1",
        {
            1: str(i),
            2: line.txn,
            4: f"{line.service_date:%Y%m%d}",
            6: line.ttype,
            7: code,
            10: str(line.quantity),
            11: f"{line.amount}&USD",
            13: dept,
        },
    )


def _in1(i: int, payer: str) -> list[str]:
    name, plan_type = PAYERS[payer]
    return [
        segment("IN1", {1: str(i), 2: f"PL-{payer}", 3: payer, 4: name, 15: plan_type}),
        segment("IN2", {1: f"EMP{i:03d}", 6: ""}),
    ]


def _mrg(prior: Person, trigger: str) -> str:
    fields = {1: cx(prior.mrn, prior.authority, "MR")}
    if prior.account:
        fields[3] = cx(prior.account, prior.facility, "AN")
    if prior.visit:
        fields[5] = cx(prior.visit, prior.facility, "VN")
    if trigger == "A51":
        fields[6] = f"ALT{prior.mrn}"  # MRG-6 prior alternate visit id
    return segment("MRG", fields)


def _codes(f: Fact) -> list[str]:
    out = [
        segment("DG1", {1: str(i), 3: f"{c}^^I10", 6: "F" if i > 1 else "A"})
        for i, c in enumerate(f.diagnoses, 1)
    ]
    out += [
        segment("PR1", {1: str(i), 3: f"{c}^^I10P", 5: "20260302"})
        for i, c in enumerate(f.procedures, 1)
    ]
    return out


def render(f: Fact, at: datetime, cid: str, version: str, *, zseg: bool = False) -> str:
    """The HL7 v2 text of one fact (segments CR-terminated)."""
    mtype, trigger = f.event.split("^")
    p = f.person
    facility = p.facility if p is not None else "NORTH"
    segs = [
        "MSH|^~\\&|"
        + "|".join(
            (
                "SIMEHR",
                facility,
                "ISTHMUS",
                "HUB",
                _ts(at),
                "",
                f"{mtype}^{trigger}",
                cid,
                "P",
                version,
            )
        )
    ]
    if mtype == "ORU" and p is not None:
        segs += [
            _pid(p),
            segment("OBR", {1: "1", 3: f"R{cid}^SIMLAB", 4: "2345-7^GLUCOSE^LN", 7: _ts(at)}),
            segment("OBX", {1: "1", 2: "NM", 3: "2345-7^GLUCOSE^LN", 5: "98", 6: "mg/dL", 11: "F"}),
        ]
    elif mtype == "SIU" and p is not None:
        segs += [
            segment("SCH", {1: f"S{cid}^SIMEHR", 7: "FOLLOWUP", 25: "Booked"}),
            _pid(p),
            segment("RGS", {1: "1"}),
            segment("AIS", {1: "1", 3: "99213^VISIT^CPT", 4: _ts(at)}),
        ]
    elif p is not None:
        segs += [
            segment("EVN", {1: trigger if mtype == "ADT" else "", 2: _ts(at), 6: _ts(at)}),
            _pid(p),
        ]
        if f.prior is not None:
            segs.append(_mrg(f.prior, trigger))
        if trigger not in NO_PV1:
            segs.append(_pv1(p, f.patient_class, f.unit, at, discharge=trigger == "A03"))
        if f.other is not None:
            q, unit = f.other
            segs += [_pid(q), _pv1(q, "I", unit, at)]
        if trigger == "A60":
            segs.append(segment("IAM", {1: "1", 3: "PEANUT^PEANUT ALLERGY", 6: "U"}))
        for i, line in enumerate(f.lines, 1):
            segs.append(_ft1(i, line))
        segs += _codes(f)
        for i, payer in enumerate(f.payers, 1):
            segs += _in1(i, payer)
    if zseg:
        segs.append(segment("ZPV", {1: "WEEK", 2: cid}))  # a site's own segment: tolerated
    return "\r".join(segs) + "\r"


__all__ = ["NO_PV1", "PAYERS", "PAY_CODES", "PRICES", "Fact", "Line", "Person", "render"]
