"""A deterministic simulated hospital week: every finance-relevant HL7 v2 event, in order.

Why: issue 15 asks for proof that a real hospital feed, carrying every trigger event the
README's "HL7 v2 events" table names, leaves the accounts, encounters, cost centers and the
ledger as documented, after each message. `hospital_week(seed)` is that feed: seven days of
ADT (A01 A02 A03 A04 A05 A06 A07 A08 A09 A10 A11 A12 A13 A14 A15 A16 A17 A25 A26 A27 A28
A29 A31 A32 A33 A38 A60), BAR (P01 P02 P05 P06 P10 P12) and DFT (P03, P11) messages, FT1
lines of types CG, CD, PY and AJ, IN1/IN2, DG1/PR1, a Z-segment here and there, HL7 2.3 to
2.8, and a few ORU and SIU messages the hub must accept and ignore. Sunday ends with the
merges and moves (A40 A41 A42 A44 A45 A47 A49 A50 A51, MRG ch. 3.4.9) on patients that have
charges and payments (one holding a credit balance), one of them resent under a new control
id (same MSH-7), and late lines naming a merged account and a merged patient.

Each message comes with a `Fact`: what it says in the generator's own terms (who, which
visit, which unit, which FT1 lines with which amounts and departments, which payers and
codes). A test keeps its own model of the expected state from the facts and never reads the
HL7 back; the hub reads only the HL7. The same seed gives the same bytes. Names come from
the invented lists of `ehr_segments`; no real person can appear. Pure: no I/O.

The facts (`Fact`, `Person`, `Line`) and their HL7 v2 text (`render`, with the field
positions it follows) are demo/week_render.py; here, the week's order of events.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from isthmus.demo.ehr_segments import FAMILY_NAMES, GIVEN_NAMES
from isthmus.demo.week_render import PRICES, Fact, Line, Person, render

START = date(2026, 3, 2)  # a Monday
DAYS = 7
VERSIONS = ("2.3", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.8")
DIAGNOSES = ("I10", "E11.9", "J18.9", "K80.20", "M17.11", "R07.9")
PROCEDURES = ("0SRD0JZ", "0FT44ZZ", "4A02X4Z", "BW28ZZZ")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class WeekMessage:
    """One message of the simulated week: when it is sent, its MSH-10 and HL7 version, its
    bytes, and the fact it carries."""

    day: int  # 0 (Monday) to 6
    at: datetime
    control_id: str
    version: str
    raw: bytes
    fact: Fact


@dataclass
class _Week:
    rng: random.Random
    day: int = 0
    minute: int = 7 * 60
    out: list[WeekMessage] = field(default_factory=list)
    txns: int = 0
    people: int = 0

    def person(self, facility: str) -> Person:
        n, rng = self.people, self.rng
        self.people += 1
        birth = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 80))
        return Person(
            mrn=f"W{100000 + n * 37:06d}",
            facility=facility,
            account=f"AC{5000 + n}",
            visit=f"VN{7000 + n}",
            family=FAMILY_NAMES[rng.randrange(20)],
            given=GIVEN_NAMES[rng.randrange(20)],
            birth=birth,
            sex=rng.choice("FM"),
        )

    def next_day(self) -> None:
        self.day += 1
        self.minute = 7 * 60

    @property
    def today(self) -> date:
        return START + timedelta(days=self.day)

    def line(self, code: str, department: str = "", qty: int = 1) -> Line:
        low, high, _, _ = PRICES[code]
        unit = (Decimal(self.rng.randrange(low * 100, high * 100 + 1)) / 100).quantize(CENT)
        self.txns += 1
        return Line(f"T{self.txns:05d}", "CG", code, qty, unit * qty, department, self.today)

    def money(self, ttype: str, amount: str) -> Line:
        self.txns += 1
        return Line(f"T{self.txns:05d}", ttype, ttype, 1, Decimal(amount), "", self.today)

    def credit(self, of: Line, amount: Decimal, *, negative_cg: bool = False) -> Line:
        self.txns += 1
        return replace(
            of,
            txn=f"T{self.txns:05d}",
            ttype="CG" if negative_cg else "CD",
            quantity=1,
            amount=-amount if negative_cg else amount,
            service_date=self.today,
        )

    def send(self, fact: Fact) -> Fact:
        self.minute += self.rng.randrange(4, 12)
        at = datetime.combine(self.today, datetime.min.time()) + timedelta(minutes=self.minute)
        n = len(self.out) + 1
        version = VERSIONS[(n * 3) % len(VERSIONS)]
        cid = f"HW{START:%y%m%d}{n:04d}"
        raw = render(fact, at, cid, version, zseg=n % 5 == 0)
        self.out.append(WeekMessage(self.day, at, cid, version, raw.encode(), fact))
        return fact

    def resend(self) -> None:
        """The last message again under a new control id, as a sender does when an ACK is
        lost: the same MSH-7 and content."""
        last = self.out[-1]
        cid = f"HW{START:%y%m%d}{len(self.out) + 1:04d}"
        raw = last.raw.replace(last.control_id.encode(), cid.encode())
        self.out.append(
            WeekMessage(self.day, last.at, cid, last.version, raw, replace(last.fact, resent=True))
        )


# -- the week ----------------------------------------------------------------------------------


def hospital_week(seed: int = 15) -> list[WeekMessage]:
    """Seven days of a two-facility hospital's feed (module docstring), in sending order."""
    w = _Week(random.Random(seed))
    s = w.send
    ada, bo, cy, dee = (w.person("NORTH"), w.person("NORTH"), w.person("SOUTH"), w.person("NORTH"))
    eli, fay, gus, hal = (
        w.person("SOUTH"),
        w.person("NORTH"),
        w.person("NORTH"),
        w.person("NORTH"),
    )
    ivo, jo = w.person("NORTH"), w.person("SOUTH")

    # Monday: a pre-admission becomes an admission; an ED visit; an outpatient visit
    s(Fact("ADT^A28", dee))
    s(Fact("ADT^A05", ada, "P", "4W", payers=("BCBS01",)))
    s(Fact("ADT^A14", ada, "I", "4W"))
    s(Fact("ADT^A01", ada, "I", "4W", payers=("BCBS01",)))  # completes the A14
    s(Fact("DFT^P03", ada, "I", "4W", (w.line("80053"),)))  # no FT1-13: the admit unit's
    s(Fact("BAR^P01", ada, "I", "4W", payers=("BCBS01",), diagnoses=("M17.11",)))
    s(Fact("ADT^A04", bo, "E", "ED"))
    bo_ed = w.line("99283", "ED")
    s(Fact("DFT^P03", bo, "E", "ED", (bo_ed, w.line("85025", "LAB"), w.line("J1100", "PHARM", 2))))
    s(Fact("ORU^R01", bo))
    s(Fact("ADT^A04", cy, "O", "OPC", payers=("MCARE03",)))
    s(
        Fact(
            "DFT^P11",
            cy,
            "O",
            "OPC",
            (w.line("93000", "CARD"), w.line("80053", "LAB")),
            payers=("MCARE03",),
            diagnoses=("I10", "R07.9"),
            procedures=("4A02X4Z",),
        )
    )
    s(Fact("ADT^A03", cy, "O", "OPC"))
    s(Fact("SIU^S12", dee))
    s(Fact("ADT^A31", dee))

    # Tuesday: transfers and a cancelled one; a cancelled discharge; payment and adjustment
    w.next_day()
    s(Fact("ADT^A15", ada, "I", "ICU"))
    s(Fact("ADT^A26", ada, "I", "4W"))
    s(Fact("ADT^A02", ada, "I", "ICU"))
    s(Fact("DFT^P03", ada, "I", "ICU", (w.line("J0696", qty=2), w.line("93306"))))
    s(Fact("ADT^A02", ada, "I", "SURG"))
    s(Fact("ADT^A12", ada, "I", "ICU"))
    s(Fact("DFT^P03", ada, "I", "ICU", (w.line("85025"),)))
    s(Fact("ADT^A13", cy, "O", "OPC"))
    s(Fact("DFT^P03", cy, "O", "OPC", (w.money("PY", "50.00"), w.money("AJ", "-20.00"))))
    s(Fact("ADT^A03", cy, "O", "OPC"))
    s(Fact("ADT^A08", ada, "I", "ICU"))
    s(Fact("ADT^A06", bo, "I", "ED"))
    s(Fact("ADT^A15", bo, "I", "4W"))
    s(Fact("ADT^A02", bo, "I", "4W"))  # completes the A15
    s(Fact("DFT^P03", bo, "I", "4W", (w.line("J2405", qty=3),)))

    # Wednesday: cancelled visits, with and without charges; tracking events
    w.next_day()
    s(Fact("ADT^A04", eli, "O", "OPC"))
    s(Fact("ADT^A11", eli, "O", "OPC"))
    s(Fact("ADT^A05", fay, "P", "4W"))
    s(Fact("ADT^A38", fay, "P", "4W"))
    s(Fact("ADT^A14", gus, "I", "4W"))
    s(Fact("ADT^A27", gus, "I", "4W"))
    s(Fact("ADT^A04", hal, "E", "ED"))
    s(Fact("DFT^P03", hal, "E", "ED", (w.line("99281"),)))  # the A04's unit: ED
    s(Fact("ADT^A11", hal, "E", "ED"))
    for trigger in ("A09", "A10", "A32", "A33", "A60"):
        s(Fact(f"ADT^{trigger}", ada, "I", "ICU"))

    # Thursday: a swap, pending discharge cancelled, class change, account updates
    w.next_day()
    s(Fact("ADT^A17", ada, "I", "4W", other=(bo, "ICU")))
    s(Fact("DFT^P03", ada, "I", "4W", (w.line("J1100", qty=4),)))
    s(Fact("DFT^P03", bo, "I", "ICU", (w.line("80053"),)))
    s(Fact("ADT^A16", bo, "I", "ICU"))
    s(Fact("ADT^A25", bo, "I", "ICU"))
    s(Fact("ADT^A07", bo, "O", "ICU"))
    s(Fact("BAR^P05", ada, "I", "4W", payers=("AETNA02", "SELF00")))
    s(Fact("BAR^P12", ada, "I", "4W", diagnoses=("M17.11", "I10"), procedures=("0SRD0JZ",)))
    s(Fact("BAR^P10", ada, "I", "4W"))

    # Friday: an ended account holds a charge until it is reopened; person deletes; a purge
    w.next_day()
    s(Fact("BAR^P01", cy, "O", "OPC", payers=("MCARE03",)))
    s(Fact("BAR^P06", cy, "O", "OPC"))
    s(Fact("DFT^P03", cy, "O", "OPC", (w.line("81001", "LAB"),)))
    s(Fact("BAR^P05", cy, "O", "OPC"))
    s(Fact("DFT^P03", cy, "O", "OPC", (w.line("84443", "LAB"),)))
    s(Fact("ADT^A28", ivo))
    s(Fact("ADT^A29", ivo))
    s(Fact("ADT^A29", bo))
    s(Fact("BAR^P01", eli, "O", "OPC"))
    s(Fact("BAR^P02", eli, "O", "OPC"))

    # Saturday: a weekend ED visit with credits, both ways
    w.next_day()
    s(Fact("ADT^A04", jo, "E", "ED", payers=("SELF00",)))
    ct = w.line("74177", "RAD")
    s(Fact("DFT^P03", jo, "E", "ED", (w.line("99285", "ED"), w.line("71046", "RAD"), ct)))
    s(
        Fact(
            "DFT^P11",
            jo,
            "E",
            "ED",
            (w.credit(ct, Decimal("100.00")), w.credit(ct, Decimal("25.50"), negative_cg=True)),
            diagnoses=("R07.9",),
        )
    )
    s(Fact("ORU^R01", jo))
    s(Fact("ADT^A03", jo, "E", "ED"))
    s(Fact("SIU^S12", jo))

    # Sunday: discharges, a payer's payment, a debit adjustment, a late credit
    w.next_day()
    s(Fact("ADT^A16", ada, "I", "4W"))
    s(Fact("ADT^A03", ada, "I", "4W"))
    s(
        Fact(
            "DFT^P03",
            ada,
            "I",
            "4W",
            (w.money("PY", "1500.00"), w.money("AJ", "12.34")),
            payers=("AETNA02",),
        )
    )
    s(Fact("ADT^A03", bo, "O", "ICU"))
    s(Fact("DFT^P03", bo, "O", "ICU", (w.credit(bo_ed, Decimal("40.00")),)))

    # Sunday evening: merges and moves, each on a patient with A/R; one resent
    def mrg(p: Person, *, account: bool = False, visit: str = "") -> Person:
        return replace(p, account=p.account if account else "", visit=visit)

    s(Fact("ADT^A49", replace(cy, account="AC5102"), prior=mrg(cy, account=True)))
    s(Fact("ADT^A44", replace(cy, account=jo.account), prior=mrg(jo, account=True)))
    w.resend()
    s(Fact("ADT^A41", hal, prior=mrg(bo, account=True)))
    s(Fact("DFT^P03", bo, "O", "ICU", (w.line("85025", "LAB"),)))  # late, to the old number
    s(Fact("ADT^A50", replace(hal, visit="VN7107"), "E", prior=mrg(hal, visit=hal.visit)))
    s(Fact("ADT^A42", dee, "I", prior=mrg(hal, visit="VN7107")))
    s(
        Fact(
            "ADT^A45",
            replace(eli, account="AC5104", visit=jo.visit),
            "E",
            prior=replace(cy, account=jo.account, visit=jo.visit),
        )
    )
    s(Fact("DFT^P03", ada, "I", "4W", (w.money("PY", "400.00"),)))  # a credit balance now
    s(Fact("ADT^A51", ada, "I", "4W", prior=mrg(ada)))
    s(Fact("ADT^A47", eli, prior=mrg(cy)))
    s(Fact("ADT^A40", dee, prior=mrg(ada)))
    s(Fact("DFT^P03", ada, "I", "4W", (w.line("85025", "LAB"),)))  # late, the merged MRN
    return w.out


__all__ = ["DAYS", "START", "WeekMessage", "hospital_week"]
