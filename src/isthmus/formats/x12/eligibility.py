"""Eligibility: the 270 inquiry read and built, the 271 response read to what billing needs.

005010X279A1 (Health Care Eligibility Benefit Inquiry and Response). Both transactions are
HL hierarchies: 2000A information source (HL03 = 20, 2100A NM1*PR the payer), 2000B
information receiver (HL03 = 21, 2100B NM1*1P/FA the provider), 2000C subscriber (HL03 = 22,
2100C NM1*IL) and 2000D dependent (HL03 = 23, 2100D NM1*03). A request or response belongs
to the lowest level that carries a TRN (TRN01 = 1 on the 270, 2 when the 271 echoes it).

* 270: EQ01 service type codes (code list 1365), DTP*291 the plan date;
* 271: EB benefit information (EB01 code list 1390: 1-5 active, 6-8 inactive; B co-payment,
  C deductible, G out of pocket (stop loss), A co-insurance), EB03 service types (repeated),
  EB05 plan description, EB06 time period (29 = remaining), EB07 amount, EB08 percent,
  EB12 in plan network (Y/N/W); AAA request validation (AAA03 reject reason, code list 901)
  at any level. :meth:`EligibilityResponse.summary` reduces them to active/inactive, plan,
  co-payment, deductible and out-of-pocket remaining.

Pure; :func:`parse_270` and :func:`parse_271` raise :class:`X12Error` only when the ISA is
unusable, the envelope's problems are findings. :func:`build_270` takes the control numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Final

import msgspec

from isthmus.formats.x12.elements import padded, parse_amount, parse_date
from isthmus.formats.x12.envelope import TransactionSpan, check_envelope
from isthmus.formats.x12.envelope_writer import envelope
from isthmus.formats.x12.finding import Finding
from isthmus.formats.x12.reader import Interchange, read
from isthmus.formats.x12.remittance import Party, Person, party_from_nm1, person_from_nm1

GUIDE: Final = "005010X279A1"
ACTIVE_CODES: Final = frozenset({"1", "2", "3", "4", "5"})
INACTIVE_CODES: Final = frozenset({"6", "7", "8"})
REMAINING: Final = "29"  # EB06 time period qualifier: remaining


class Benefit(msgspec.Struct, frozen=True, kw_only=True):
    """One EB segment (loop 2110C/D)."""

    info: str  # EB01
    coverage_level: str = ""  # EB02
    service_types: tuple[str, ...] = ()  # EB03 repetitions
    insurance_type: str = ""  # EB04
    plan: str = ""  # EB05
    period: str = ""  # EB06
    amount: Decimal | None = None  # EB07
    percent: Decimal | None = None  # EB08
    in_network: str = ""  # EB12


class Rejection(msgspec.Struct, frozen=True, kw_only=True):
    """AAA: AAA01 valid request (Y/N), AAA03 reject reason, AAA04 follow-up action."""

    loop: str
    valid: str
    reason: str
    follow_up: str = ""


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """What registration and billing keep of a 271."""

    status: str  # "active", "inactive" or "unknown"
    plan: str = ""
    copay: Decimal | None = None
    deductible_remaining: Decimal | None = None
    out_of_pocket_remaining: Decimal | None = None


class EligibilityRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One 270 inquiry (a subscriber or dependent level with its TRN)."""

    transaction_control: str
    trace: str  # TRN02
    payer: Party
    provider: Party
    subscriber: Person
    dependent: Person | None = None
    service_types: tuple[str, ...] = ()  # EQ01
    plan_date: date | None = None  # DTP*291


class EligibilityResponse(msgspec.Struct, frozen=True, kw_only=True):
    """One 271 answer, or a rejection at the source or receiver level (no subscriber)."""

    transaction_control: str
    trace: str = ""
    payer: Party
    provider: Party
    subscriber: Person | None = None
    dependent: Person | None = None
    benefits: tuple[Benefit, ...] = ()
    rejections: tuple[Rejection, ...] = ()

    def summary(self) -> Summary:
        """Active when an EB01 1-5 is present and no 6-8, inactive for 6-8, unknown for a
        rejected or benefit-less answer; in-network (EB12 Y) amounts win over others."""
        infos = {b.info for b in self.benefits}
        if infos & INACTIVE_CODES and not infos & ACTIVE_CODES:
            status = "inactive"
        elif infos & ACTIVE_CODES:
            status = "active"
        else:
            status = "unknown"
        plan = next((b.plan for b in self.benefits if b.info in ACTIVE_CODES and b.plan), "")
        plan = plan or next((b.plan for b in self.benefits if b.plan), "")
        return Summary(
            status=status,
            plan=plan,
            copay=self._amount("B", remaining=False),
            deductible_remaining=self._amount("C", remaining=True),
            out_of_pocket_remaining=self._amount("G", remaining=True),
        )

    def _amount(self, info: str, *, remaining: bool) -> Decimal | None:
        found = [
            b
            for b in self.benefits
            if b.info == info and b.amount is not None and (not remaining or b.period == REMAINING)
        ]
        found.sort(key=lambda b: b.in_network != "Y")
        return found[0].amount if found else None


class EligibilityBatch(msgspec.Struct, frozen=True, kw_only=True):
    """The 270 requests or 271 responses of an interchange (005010X279A1), and the findings."""

    interchange_control: str
    requests: tuple[EligibilityRequest, ...] = ()
    responses: tuple[EligibilityResponse, ...] = ()
    findings: tuple[Finding, ...] = ()


_NOPARTY: Final = Party(name="")


class _Level:
    """What one HL level (and those above it) has said so far."""

    __slots__ = (
        "benefits",
        "dependent",
        "eq",
        "level",
        "payer",
        "plan_date",
        "provider",
        "rejections",
        "subscriber",
        "trace",
    )

    def __init__(self) -> None:
        self.level = ""
        self.payer = _NOPARTY
        self.provider = _NOPARTY
        self.subscriber: Person | None = None
        self.dependent: Person | None = None
        self.trace = ""
        self.eq: list[str] = []
        self.plan_date: date | None = None
        self.benefits: list[Benefit] = []
        self.rejections: list[Rejection] = []


_LOOP: Final = {"20": "2000A", "21": "2000B", "22": "2000C", "23": "2000D"}


def _read(
    ic: Interchange,
    set_id: str,
    requests: list[EligibilityRequest],
    responses: list[EligibilityResponse],
    findings: list[Finding],
) -> None:
    env = check_envelope(ic)
    findings.extend(env.findings)
    for g in env.groups:
        for t in g.transactions:
            if t.id == set_id:
                _read_set(ic, t, set_id, requests, responses)


def _read_set(  # noqa: C901 - one branch per 271 segment (005010X279A1)
    ic: Interchange,
    t: TransactionSpan,
    set_id: str,
    requests: list[EligibilityRequest],
    responses: list[EligibilityResponse],
) -> None:
    es, rs, cs = ic.delimiters.element, ic.delimiters.repetition, ic.delimiters.component
    stop = t.stop - 1 if t.end >= 0 else t.stop
    cur = _Level()
    carry = {"20": _NOPARTY, "21": _NOPARTY}
    sub: Person | None = None
    in_benefit = False

    def flush(c: _Level) -> None:
        if set_id == "270":
            if c.trace and c.subscriber is not None:
                requests.append(
                    EligibilityRequest(
                        transaction_control=t.control,
                        trace=c.trace,
                        payer=c.payer,
                        provider=c.provider,
                        subscriber=c.subscriber,
                        dependent=c.dependent,
                        service_types=tuple(c.eq),
                        plan_date=c.plan_date,
                    )
                )
        elif c.trace or c.benefits or c.rejections:
            responses.append(
                EligibilityResponse(
                    transaction_control=t.control,
                    trace=c.trace,
                    payer=c.payer,
                    provider=c.provider,
                    subscriber=c.subscriber,
                    dependent=c.dependent,
                    benefits=tuple(c.benefits),
                    rejections=tuple(c.rejections),
                )
            )

    for i in range(t.start + 1, stop):
        e = ic.raw[i].split(es)
        sid = e[0]
        if sid == "HL":
            flush(cur)
            level = padded(e, 4)[3]
            nxt = _Level()
            nxt.level = level
            nxt.payer, nxt.provider = carry["20"], carry["21"]
            if level == "23":
                nxt.subscriber = sub
            cur, in_benefit = nxt, False
        elif sid == "NM1":
            q = padded(e, 2)[1]
            if in_benefit:
                continue  # 2120 benefit related entity
            if q in ("PR", "2B", "36", "GP", "P5") and cur.level == "20":
                cur.payer = carry["20"] = party_from_nm1(e)
            elif cur.level == "21":
                cur.provider = carry["21"] = party_from_nm1(e)
            elif q == "IL":
                cur.subscriber = sub = person_from_nm1(e)
            elif q == "03":
                cur.dependent = person_from_nm1(e)
        elif sid == "TRN":
            e = padded(e, 3)
            if not cur.trace:
                cur.trace = e[2]
        elif sid == "EQ":
            cur.eq.append(padded(e, 2)[1].split(cs)[0])
        elif sid == "DTP" and padded(e, 4)[1] == "291":
            cur.plan_date = parse_date(e[3].split("-")[0])
        elif sid == "EB":
            e = padded(e, 13)
            st = tuple(x for x in (e[3].split(rs) if rs else [e[3]]) if x)
            cur.benefits.append(
                Benefit(
                    info=e[1],
                    coverage_level=e[2],
                    service_types=st,
                    insurance_type=e[4],
                    plan=e[5],
                    period=e[6],
                    amount=parse_amount(e[7]) if e[7] else None,
                    percent=parse_amount(e[8]) if e[8] else None,
                    in_network=e[12],
                )
            )
            in_benefit = False
        elif sid == "LS":
            in_benefit = True
        elif sid == "LE":
            in_benefit = False
        elif sid == "AAA":
            e = padded(e, 5)
            cur.rejections.append(
                Rejection(loop=_LOOP.get(cur.level, ""), valid=e[1], reason=e[3], follow_up=e[4])
            )
    flush(cur)


def parse_270(data: bytes | str | Interchange) -> EligibilityBatch:
    """Every inquiry of every 270 set of an interchange."""
    ic = data if isinstance(data, Interchange) else read(data)
    requests: list[EligibilityRequest] = []
    findings: list[Finding] = []
    _read(ic, "270", requests, [], findings)
    return EligibilityBatch(
        interchange_control=ic.control_number, requests=tuple(requests), findings=tuple(findings)
    )


def parse_271(data: bytes | str | Interchange) -> EligibilityBatch:
    """Every answer of every 271 set of an interchange."""
    ic = data if isinstance(data, Interchange) else read(data)
    responses: list[EligibilityResponse] = []
    findings: list[Finding] = []
    _read(ic, "271", [], responses, findings)
    return EligibilityBatch(
        interchange_control=ic.control_number, responses=tuple(responses), findings=tuple(findings)
    )


def _nm1(entity: str, kind: str, last: str, first: str, qualifier: str, ident: str) -> list[str]:
    return ["NM1", entity, kind, last, first, "", "", "", qualifier, ident]


def build_270(
    inquiries: Sequence[EligibilityRequest],
    *,
    sender: str,
    receiver: str,
    interchange_control: int,
    group_control: int,
    at: datetime,
    usage: str = "P",
) -> str:
    """One 270 set per payer and provider, a subscriber level (HL 22) per inquiry; a
    dependent inquiry adds HL 23. Control numbers come from the caller's counter."""
    body: list[list[str]] = []
    for n, q in enumerate(inquiries, start=1):
        ctl = f"{n:04d}"
        segs: list[list[str]] = [
            ["ST", "270", ctl, GUIDE],
            ["BHT", "0022", "13", q.trace, at.strftime("%Y%m%d"), at.strftime("%H%M")],
            ["HL", "1", "", "20", "1"],
            _nm1("PR", "2", q.payer.name, "", "PI", q.payer.id),
            ["HL", "2", "1", "21", "1"],
            _nm1("1P", "2", q.provider.name, "", "XX", q.provider.npi or q.provider.id),
            ["HL", "3", "2", "22", "1" if q.dependent else "0"],
        ]
        sub = q.subscriber
        who = [["TRN", "1", q.trace, "9" + (receiver[:9] or "000000000").rjust(9, "0")]]
        subscriber_nm1 = _nm1("IL", "1", sub.last, sub.first, "MI", sub.id)
        tail: list[list[str]] = []
        if q.plan_date is not None:
            tail.append(["DTP", "291", "D8", q.plan_date.strftime("%Y%m%d")])
        tail += [["EQ", t] for t in (q.service_types or ("30",))]
        if q.dependent is None:
            segs += [*who, subscriber_nm1, *tail]
        else:
            dep = q.dependent
            segs += [
                subscriber_nm1,
                ["HL", "4", "3", "23", "0"],
                *who,
                _nm1("03", "1", dep.last, dep.first, "", ""),
                *tail,
            ]
        segs.append(["SE", str(len(segs) + 1), ctl])
        body += segs
    return envelope(
        body,
        functional_id="HS",
        guide=GUIDE,
        sender=sender,
        receiver=receiver,
        interchange_control=interchange_control,
        group_control=group_control,
        at=at,
        usage=usage,
    )
