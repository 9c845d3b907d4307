"""A deterministic simulated hospital day of HL7 v2.5.1 messages, for demos, tests and benchmarks.

Why: the hub's value is that every clinical event with a financial meaning ends up as a
balanced ERP posting, and that every bad message gets a clear negative answer. Showing or
testing that needs a realistic, reproducible feed with known totals, without any real
patient data. `hospital_day` is that feed; `expected_totals` states what the ledger must
show after it; `corpus_like` is a charge-only stream for throughput runs. Pure: no I/O.
The day's patients, visits and events are drawn in demo/ehr_plan.py; here they become
HL7 v2.5.1 messages with what the hub must answer.

What a day contains (HL7 v2.5.1; chapter 2 control: MSH-7 time, MSH-9 type, MSH-10 control
id, MSH-11 "P", MSH-12 "2.5.1"; chapter 3 patient administration; chapter 6 financial
management):
- ADT^A04 registration (ED and outpatients) or ADT^A01 admission (inpatients), first;
- BAR^P01 add billing account (PID + PV1), ADT^A08 updates;
- DFT^P03 charges (FT1-6 "CG", one to three FT1 each) and a few credits (FT1-6 "CD", a
  positive amount reversing part of one earlier FT1 of the same patient; its FT1-2 is the
  original FT1-2 plus "-CR");
- ADT^A03 discharges, after all of that patient's charges;
- ADT^A40 merges (PID of the survivor, MRG-1 the duplicate) of a duplicate record that was
  registered and charged earlier the same day, so the merge moves real charges;
- DFTs whose charge code is not in the mapping table ("unmapped": accepted, AA, but the hub
  must raise a work item), malformed messages (AE for bad content, AR when MSH itself is
  unusable) and message types with no finance meaning (ORU^R01, SIU^S12: AA, kept as
  `ignored` with the reason, as every real feed carries them).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import TypedDict

from isthmus.demo.ehr_plan import CURRENCY, Event, Plan
from isthmus.demo.ehr_segments import (
    UNMAPPED_CODE,
    ChargeLine,
    SimPatient,
    evn,
    field,
    ft1,
    mrg,
    msh,
    oru_body,
    pid,
    pv1,
    siu_body,
    timestamp,
)

KINDS = (
    "register",
    "admit",
    "update",
    "discharge",
    "merge",
    "bar",
    "charge",
    "credit",
    "malformed",
    "unmapped",
    "unsupported",
)
MALFORMED_VARIANTS = (
    "no_type",
    "no_control_id",
    "garbage",
    "truncated",
    "segment_order",
    "bad_amount",
    "bad_date",
    "empty_pid3",
)
_MSH_BROKEN = frozenset({"no_type", "no_control_id", "garbage", "truncated"})
_NO_CONTROL_ID = frozenset({"no_control_id", "garbage", "truncated"})


@dataclass(frozen=True)
class SimMessage:
    """One generated message and what the hub is expected to do with it.

    `amount` is the sum of FT1-11 for charges, unmapped charges and credits (all positive),
    0 otherwise; `currency` is "USD" for those three kinds, "" otherwise. `patient_key` is
    "AUTH|MRN" (the survivor for a merge), "" when the message names no usable patient.
    """

    raw: bytes
    kind: str
    control_id: str
    patient_key: str
    expect_ack: str
    amount: Decimal
    currency: str

    @property
    def expect_status(self) -> str:
        """The inbox status the hub keeps it under: accepted, ignored (no finance meaning)
        or rejected."""
        if self.expect_ack != "AA":
            return "rejected"
        return "ignored" if self.kind == "unsupported" else "accepted"


class ExpectedTotals(TypedDict):
    """What the ledger and the inbox must show after the demo day: message counts per kind,
    charges, credits and net per currency, unmapped amounts, and patients before and after
    the merge."""

    messages: int
    kinds: dict[str, int]
    charges: dict[str, Decimal]
    credits: dict[str, Decimal]
    net: dict[str, Decimal]
    unmapped: dict[str, Decimal]
    patients: int
    patients_after_merge: int


def _sizes(messages: int, fixed: int, merges: int, rng: random.Random) -> dict[str, int]:
    charges = round(messages * rng.uniform(0.57, 0.63))
    credits = max(1, messages // 100)
    adt = messages - fixed - charges - credits  # arrivals, BAR, updates, discharges
    patients = max(2 * merges + 1, round(adt / 3.3))
    rest = adt - 2 * patients
    if rest < 0 or charges < patients:
        raise ValueError(f"messages={messages} is too few for {fixed} fixed extras")
    discharges = min(patients - merges, round(rest * 0.7))
    return {
        "charges": charges,
        "credits": credits,
        "patients": patients,
        "discharges": discharges,
        "updates": rest - discharges,
    }


def hospital_day(
    *,
    messages: int = 2000,
    seed: int = 7,
    day: date = date(2026, 11, 2),
    facilities: tuple[str, ...] = ("NORTH", "SOUTH"),
    malformed: int = 10,
    unmapped: int = 8,
    unsupported: int = 4,
    control_prefix: str = "SIM",
) -> list[SimMessage]:
    """Exactly `messages` messages of one synthetic day, in MSH-7 order, fixed by `seed`."""
    if min(malformed, unmapped, unsupported) < 0 or not facilities:
        raise ValueError("counts must be >= 0 and facilities non-empty")
    for name in (*facilities, control_prefix):
        field(name)
    rng = random.Random(seed)
    merges = 0 if messages < 200 else max(2, messages // 1000)
    size = _sizes(messages, malformed + unmapped + unsupported + merges, merges, rng)
    plan = Plan(rng, tuple(facilities))
    regular = [plan.patient(day) for _ in range(size["patients"] - merges)]
    survivors = rng.sample(regular, merges)
    dups = [plan.patient(day, s.facility) for s in survivors]
    dups = [
        replace(d, family=s.family, given=s.given, birth=s.birth, sex=s.sex)
        for d, s in zip(dups, survivors, strict=True)
    ]
    everyone = regular + dups
    for p in everyone:
        plan.add(p.arrival, "admit" if p.pclass == "I" else "register", p)
        plan.add(plan.during(p), "bar", p)
    # Every patient is charged at least once; busier classes get more of the rest.
    charged = everyone + rng.choices(
        everyone,
        weights=[{"I": 3.0, "E": 1.5, "O": 1.0}[p.pclass] for p in everyone],
        k=size["charges"] - len(everyone),
    )
    charge_events = [
        plan.add(plan.during(p), "charge", p, lines=plan.charge_lines(p)) for p in charged
    ]
    dup_keys = {d.key for d in dups}
    candidates = [
        (ev, ln)
        for ev in charge_events
        if ev.patient.key not in dup_keys and ev.t < ev.patient.until - 1
        for ln in ev.lines
    ]
    for ev, ln in rng.sample(candidates, size["credits"]):
        cents = int(ln.extended * 100)
        amount = ln.extended if rng.random() < 0.4 else Decimal(rng.randint(1, cents)).scaleb(-2)
        credit = replace(
            ln, txn_id=f"{ln.txn_id}-CR", ttype="CD", quantity=1, unit=amount, extended=amount
        )
        plan.add(rng.randint(ev.t + 1, ev.patient.until - 1), "credit", ev.patient, lines=(credit,))
    for s, d in zip(survivors, dups, strict=True):
        plan.add(
            min(max(d.until, s.arrival) + rng.randint(60, 1800), 86_399), "merge", s, duplicate=d
        )
    for p in rng.choices(regular, k=size["updates"]):
        plan.add(plan.during(p), "update", p)
    for _ in range(unmapped):
        p = rng.choice(regular)
        plan.add(plan.during(p), "unmapped", p, lines=(plan.line(UNMAPPED_CODE, p),))
    variants = list(MALFORMED_VARIANTS)
    rng.shuffle(variants)
    for i in range(malformed):
        p = rng.choice(regular)
        plan.add(
            plan.during(p),
            "malformed",
            p,
            lines=plan.charge_lines(p),
            variant=variants[i % len(variants)],
        )
    for i in range(unsupported):
        p = rng.choice(regular)
        plan.add(plan.during(p), "unsupported", p, variant=("ORU", "SIU")[i % 2])
    outpatients = [p for p in regular if p.pclass != "I"]
    inpatients = [p for p in regular if p.pclass == "I"]
    rng.shuffle(outpatients)
    rng.shuffle(inpatients)
    for p in (outpatients + inpatients)[: size["discharges"]]:
        plan.add(p.until, "discharge", p)
    plan.events.sort(key=lambda e: (e.t, e.order))
    width = max(6, len(str(messages)))
    return [
        _render(ev, f"{control_prefix}{i:0{width}d}", day)
        for i, ev in enumerate(plan.events, start=1)
    ]


def _dft(head: str, p: SimPatient, ts: str, day: date, lines: tuple[ChargeLine, ...]) -> list[str]:
    return [
        head,
        evn("P03", ts),
        pid(p),
        pv1(p, timestamp(day, p.arrival)),
        *(ft1(i, ln, day) for i, ln in enumerate(lines, start=1)),
    ]


def _malformed(ev: Event, control_id: str, ts: str, day: date) -> list[str]:
    p, v = ev.patient, ev.variant
    head = msh(p.facility, ts, "DFT^P03^DFT_P03", control_id)
    segs = _dft(head, p, ts, day, ev.lines)
    if v == "no_type":
        segs[0] = msh(p.facility, ts, "", control_id)
    elif v == "no_control_id":
        segs[0] = msh(p.facility, ts, "DFT^P03^DFT_P03", "")
    elif v == "garbage":
        segs = [f"PRINTER JOB {ts} PAPER OUT ON TRAY 2; PLEASE REFILL"]
    elif v == "truncated":
        segs = [head[: head.index("|DFT^") + 1]]
    elif v == "segment_order":
        segs = [segs[0], segs[1], *segs[4:], segs[2], segs[3]]
    elif v == "bad_amount":
        segs[4] = ft1(1, ev.lines[0], day, amount_field="12,50&USD")
    elif v == "bad_date":
        segs[4] = ft1(1, ev.lines[0], day, date_field=f"{day:%Y}1345")
    else:  # empty_pid3
        segs[2] = pid(p, mrn_field="")
    return segs


def _render(ev: Event, control_id: str, day: date) -> SimMessage:
    p, kind, ts = ev.patient, ev.kind, timestamp(day, ev.t)
    admit_ts = timestamp(day, p.arrival)
    amount, currency, ack, key = Decimal("0.00"), "", "AA", p.key
    if kind in ("register", "admit", "update"):
        event = {"register": "A04", "admit": "A01", "update": "A08"}[kind]
        segs = [
            msh(p.facility, ts, f"ADT^{event}^ADT_A01", control_id),
            evn(event, ts),
            pid(p, updated=kind == "update"),
            pv1(p, admit_ts),
        ]
    elif kind == "discharge":
        segs = [
            msh(p.facility, ts, "ADT^A03^ADT_A03", control_id),
            evn("A03", ts),
            pid(p),
            pv1(p, admit_ts, discharge_ts=ts),
        ]
    elif kind == "merge":
        assert ev.duplicate is not None
        segs = [
            msh(p.facility, ts, "ADT^A40^ADT_A39", control_id),
            evn("A40", ts),
            pid(p),
            mrg(ev.duplicate),
        ]
    elif kind == "bar":
        segs = [
            msh(p.facility, ts, "BAR^P01^BAR_P01", control_id),
            evn("P01", ts),
            pid(p),
            pv1(p, admit_ts),
        ]
    elif kind in ("charge", "credit", "unmapped"):
        segs = _dft(msh(p.facility, ts, "DFT^P03^DFT_P03", control_id), p, ts, day, ev.lines)
        amount, currency = sum((ln.extended for ln in ev.lines), Decimal("0.00")), CURRENCY
    elif kind == "unsupported":  # accepted and ignored: an EHR feed must never stop on them
        ack = "AA"
        if ev.variant == "ORU":
            segs = [
                msh(p.facility, ts, "ORU^R01^ORU_R01", control_id),
                *oru_body(p, ts, f"R{control_id}"),
            ]
        else:
            segs = [
                msh(p.facility, ts, "SIU^S12^SIU_S12", control_id),
                *siu_body(p, ts, f"S{control_id}"),
            ]
    else:
        segs = _malformed(ev, control_id, ts, day)
        ack = "AR" if ev.variant in _MSH_BROKEN else "AE"
        if ev.variant in _NO_CONTROL_ID:
            control_id = ""
        if ev.variant in _MSH_BROKEN or ev.variant == "empty_pid3":
            key = ""
    raw = ("\r".join(segs) + "\r").encode()
    return SimMessage(raw, kind, control_id, key, ack, amount, currency)


def expected_totals(msgs: Sequence[SimMessage]) -> ExpectedTotals:
    """What the ledger must show: counts per kind, valid mapped charges and credits per currency.

    Unmapped charges are reported apart (they wait in an exception queue); malformed and
    unsupported messages carry no money. Patients are distinct registered or admitted keys.
    """
    kinds = Counter(m.kind for m in msgs)
    sums: dict[str, dict[str, Decimal]] = {"charge": {}, "credit": {}, "unmapped": {}}
    for m in msgs:
        if m.kind in sums:
            bucket = sums[m.kind]
            bucket[m.currency] = bucket.get(m.currency, Decimal("0.00")) + m.amount
    currencies = sorted(set(sums["charge"]) | set(sums["credit"]))
    net = {
        c: sums["charge"].get(c, Decimal("0.00")) - sums["credit"].get(c, Decimal("0.00"))
        for c in currencies
    }
    patients = len({m.patient_key for m in msgs if m.kind in ("register", "admit")})
    return ExpectedTotals(
        messages=len(msgs),
        kinds={k: kinds.get(k, 0) for k in KINDS},
        charges=sums["charge"],
        credits=sums["credit"],
        net=net,
        unmapped=sums["unmapped"],
        patients=patients,
        patients_after_merge=patients - kinds.get("merge", 0),
    )


def corpus_like(n: int, seed: int, *, day: date = date(2026, 11, 2)) -> list[bytes]:
    """`n` valid DFT^P03 charges over about n/4 patients, unique MSH-10, for throughput runs."""
    rng = random.Random(seed)
    plan = Plan(rng, ("NORTH", "SOUTH"))
    patients = [plan.patient(day) for _ in range(max(1, n // 4))]
    out: list[bytes] = []
    width = max(6, len(str(n)))
    for i in range(n):
        p = rng.choice(patients)
        ts = timestamp(day, i * 86_000 // max(n, 1))
        head = msh(p.facility, ts, "DFT^P03^DFT_P03", f"BENCH{seed}-{i + 1:0{width}d}")
        out.append(("\r".join(_dft(head, p, ts, day, plan.charge_lines(p))) + "\r").encode())
    return out
