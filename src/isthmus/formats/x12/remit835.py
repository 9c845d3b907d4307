"""835 (005010X221A1) transaction sets to canonical remittances, with their balancing.

Reads the segments of each ST*835 of an interchange in one pass, tracking the loop as the
guide defines it (section 2.4): header (BPR, TRN, CUR, REF*EV, DTM*405), 1000A payer
(N1*PR, REF), 1000B payee (N1*PE, REF*TJ/PQ), 2000 header number (LX), 2100 claim (CLP,
CAS, NM1*QC/IL, MIA, MOA, REF, DTM, AMT), 2110 service line (SVC, DTM, CAS, REF, AMT,
LQ*HE) and the summary PLB. Segments the guide defines but the hub does not need (N2, N3,
N4, PER, QTY, RDM, TS2, TS3) are skipped; any other is a finding (IK304 code 2).

Element errors (an amount that is not a number, a bad date, a missing CLP01) are
findings of level ELEMENT with their IK403 code; the value is taken as zero (or None).
Balancing (section 1.10.2.1) is in ``balancing.py``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from itertools import repeat
from typing import Final

from isthmus.formats.x12 import finding as f
from isthmus.formats.x12.balancing import check_balance
from isthmus.formats.x12.elements import MAX_AMOUNT_LENGTH, NUMERIC, ZERO, Procedure, procedure
from isthmus.formats.x12.envelope import TransactionSpan, check_envelope
from isthmus.formats.x12.finding import Finding, Level
from isthmus.formats.x12.reader import Interchange, read
from isthmus.formats.x12.remittance import (
    ADJUSTMENT_GROUPS,
    Adjustment,
    AmountValue,
    Claim,
    DateValue,
    Person,
    ProviderAdjustment,
    Reference,
    Remittance,
    RemittanceBatch,
    ServiceLine,
    party_from_n1,
    person_from_nm1,
)

SKIPPED: Final = frozenset({"N2", "N3", "N4", "PER", "QTY", "RDM", "TS2", "TS3"})
_MOA_REMARKS: Final = (3, 4, 5, 6, 7)
_MIA_REMARKS: Final = (5, 20, 21, 22, 23)


class _Detail:
    """What claims and lines share: CAS, DTM, REF, AMT collected while reading."""

    __slots__ = ("adj", "amounts", "at", "dates", "refs", "remarks")

    def __init__(self, at: int) -> None:
        self.at = at
        self.adj: list[Adjustment] = []
        self.dates: list[DateValue] = []
        self.refs: list[Reference] = []
        self.amounts: list[AmountValue] = []
        self.remarks: list[str] = []


class _Line(_Detail):
    __slots__ = ("e", "orig", "proc")

    def __init__(self, at: int, e: list[str], proc: Procedure, orig: Procedure | None) -> None:
        super().__init__(at)
        self.e, self.proc, self.orig = e, proc, orig


class _Claim(_Detail):
    __slots__ = ("e", "insured", "lines", "patient")

    def __init__(self, at: int, e: list[str]) -> None:
        super().__init__(at)
        self.e = e
        self.lines: list[_Line] = []
        self.patient: Person | None = None
        self.insured: Person | None = None


class _Reader:
    """The state of one transaction set being read; element findings accumulate here."""

    def __init__(self, span: TransactionSpan) -> None:
        self.start = span.start
        self.findings: list[Finding] = []
        self.loop = ""

    def bad(self, code: str, text: str, i: int, sid: str, el: int, v: str = "", c: int = 0) -> None:
        self.findings.append(
            Finding(
                level=Level.ELEMENT,
                code=code,
                text=text,
                segment_index=i,
                segment_id=sid,
                position=i - self.start + 1,
                loop=self.loop,
                element=el,
                component=c,
                value=v,
            )
        )

    def amount(self, e: list[str], n: int, i: int) -> Decimal:
        """A required R element; zero (and a finding) when missing or invalid."""
        v = e[n] if n < len(e) else ""
        if v and len(v) <= MAX_AMOUNT_LENGTH and not v.strip(NUMERIC):
            try:
                return Decimal(v)  # inlined parse_amount: the hot path of the reader
            except InvalidOperation:
                pass
        if v:
            self.bad(f.IK4_INVALID_CHARACTER, "not a decimal number", i, e[0], n, v)
        else:
            self.bad(f.IK4_REQUIRED_MISSING, "required amount missing", i, e[0], n)
        return ZERO

    def optional(self, e: list[str], n: int, i: int) -> Decimal | None:
        v = e[n] if n < len(e) else ""
        return self.amount(e, n, i) if v else None

    def date(self, e: list[str], n: int, i: int) -> date | None:
        v = e[n] if n < len(e) else ""
        if len(v) == 8 and v.isdigit():
            try:
                return date.fromisoformat(v)  # inlined parse_date
            except ValueError:
                pass
        self.bad(f.IK4_INVALID_DATE, "not a CCYYMMDD date", i, e[0], n, v)
        return None

    def cas(self, e: list[str], i: int, into: list[Adjustment]) -> None:
        n = len(e)
        group = e[1] if n > 1 else ""
        if group not in ADJUSTMENT_GROUPS:
            self.bad(f.IK4_INVALID_CODE, "unknown adjustment group code", i, "CAS", 1, group)
        if n < 4:
            self.bad(f.IK4_REQUIRED_MISSING, "CAS needs a reason and an amount", i, "CAS", 3)
        elif n == 4:  # the common case: one triplet without quantity
            into.append(Adjustment(group, e[2], self.amount(e, 3, i), None))
            return
        for k in range(2, min(n, 20), 3):  # up to six reason/amount/quantity triplets
            reason = e[k]
            if reason or (k + 1 < n and e[k + 1]):
                qty = self.amount(e, k + 2, i) if k + 2 < n and e[k + 2] else None
                into.append(Adjustment(group, reason, self.amount(e, k + 1, i), qty))

    def plb(self, e: list[str], i: int, cs: str, into: list[ProviderAdjustment]) -> None:
        e = e + [""] * (3 - len(e))
        period = self.date(e, 2, i)
        for k in range(3, min(len(e), 15), 2):  # up to six reason/amount pairs
            if e[k]:
                parts = e[k].split(cs) if cs in e[k] else [e[k], ""]
                amount = self.amount(e, k + 1, i)
                into.append(ProviderAdjustment(e[1], period, parts[0], parts[1], amount))


def _line(r: _Reader, ln: _Line) -> ServiceLine:
    e, i = ln.e, ln.at
    ctl = next((x.value for x in ln.refs if x.qualifier == "6R"), "") if ln.refs else ""
    return ServiceLine(  # positional, in field order (see remittance.py)
        ln.proc,
        r.amount(e, 2, i),
        r.amount(e, 3, i),
        e[4],
        r.optional(e, 5, i),
        ln.orig,
        tuple(ln.adj),
        tuple(ln.remarks),
        tuple(ln.dates),
        tuple(ln.refs),
        tuple(ln.amounts),
        ctl,
    )


def _claim(r: _Reader, cl: _Claim) -> Claim:
    e, i = cl.e, cl.at
    r.loop = "2100"
    if not e[1]:
        r.bad(f.IK4_REQUIRED_MISSING, "CLP01 missing", i, "CLP", 1)
    if not e[2]:
        r.bad(f.IK4_REQUIRED_MISSING, "CLP02 missing", i, "CLP", 2)
    charge, paid, responsibility = r.amount(e, 3, i), r.amount(e, 4, i), r.optional(e, 5, i)
    r.loop = "2110"
    lines = tuple([_line(r, ln) for ln in cl.lines])
    return Claim(  # positional, in field order (see remittance.py)
        e[1],
        e[2],
        charge,
        paid,
        responsibility,
        e[6],
        e[7],
        e[8],
        e[9],
        cl.patient,
        cl.insured,
        tuple(cl.adj),
        lines,
        tuple(cl.remarks),
        tuple(cl.dates),
        tuple(cl.refs),
        tuple(cl.amounts),
    )


def read_remittance(
    ic: Interchange, span: TransactionSpan, group_control: str = "", version: str = ""
) -> Remittance:
    """One 835 transaction set (``span`` from :func:`check_envelope`) as a Remittance."""
    r = _Reader(span)
    raw, es, cs = ic.raw, ic.delimiters.element, ic.delimiters.component
    done: list[_Claim] = []
    plbs: list[ProviderAdjustment] = []
    cl: _Claim | None = None
    det: _Detail | None = None  # the claim or line that CAS/DTM/REF/AMT attach to
    parties: list[tuple[list[str], list[Reference]]] = []
    header: dict[str, list[str]] = {}
    at: dict[str, int] = {}
    refs: list[Reference] = []
    header_refs = refs
    production = None
    first = span.start + 1
    rows = map(str.split, raw[first : span.stop - 1 if span.end >= 0 else span.stop], repeat(es))
    for i, e in enumerate(rows, first):
        sid = e[0]
        if sid == "CAS":
            if det is None:
                r.bad(f.IK4_REQUIRED_MISSING, "CAS outside a claim", i, sid, 0)
                continue
            if len(e) == 4 and e[1] in ADJUSTMENT_GROUPS:  # the common case, inlined
                v = e[3]
                if v and len(v) <= MAX_AMOUNT_LENGTH and not v.strip(NUMERIC):
                    try:
                        det.adj.append(Adjustment(e[1], e[2], Decimal(v), None))
                        continue
                    except InvalidOperation:
                        pass
            r.cas(e, i, det.adj)
        elif sid == "DTM":
            v = e[2] if len(e) > 2 else ""
            try:
                d = DateValue(e[1], date.fromisoformat(v) if len(v) == 8 and v.isdigit() else None)
            except ValueError:
                d = DateValue(e[1], None)
            if d.date is None:
                r.date(e, 2, i)  # records the finding
            if det is not None:
                det.dates.append(d)
            elif d.qualifier == "405":
                production = d.date
        elif sid == "SVC":
            if cl is None:
                r.bad(f.IK4_REQUIRED_MISSING, "SVC outside a claim", i, sid, 0)
                continue
            r.loop = "2110"
            e.extend([""] * (8 - len(e)))
            proc = procedure(e[1], cs)
            if not proc.code:
                r.bad(f.IK4_REQUIRED_MISSING, "SVC01 has no procedure code", i, sid, 1, e[1], 2)
            det = _Line(i, e, proc, procedure(e[6], cs) if e[6] else None)
            cl.lines.append(det)
        elif sid == "REF":
            ref = Reference(e[1], e[2] if len(e) > 2 else "")
            if det is not None:
                det.refs.append(ref)
            else:
                refs.append(ref)
        elif sid == "AMT":
            if det is not None:
                det.amounts.append(AmountValue(e[1], r.amount(e, 2, i)))
        elif sid == "LQ":
            if det is not None and e[1] == "HE" and len(e) > 2:
                det.remarks.append(e[2])
        elif sid == "CLP":
            r.loop = "2100"
            det = cl = _Claim(i, e + [""] * (10 - len(e)))
            done.append(cl)
        elif sid == "NM1":
            if cl is not None and det is cl and len(e) > 1:
                if e[1] == "QC":
                    cl.patient = person_from_nm1(e)
                elif e[1] == "IL":
                    cl.insured = person_from_nm1(e)
        elif sid in ("MOA", "MIA"):
            if cl is not None:
                pos = _MOA_REMARKS if sid == "MOA" else _MIA_REMARKS
                cl.remarks.extend(e[p] for p in pos if p < len(e) and e[p])
        elif sid in SKIPPED:
            pass
        elif sid == "N1":
            refs = []
            parties.append((e + [""] * (3 - len(e)), refs))
            r.loop = "1000A" if e[1:2] == ["PR"] else "1000B"
        elif sid in ("LX", "PLB"):
            cl = det = None
            refs = []
            r.loop = "2000" if sid == "LX" else ""
            if sid == "PLB":
                r.plb(e, i, cs, plbs)
        elif sid in ("BPR", "TRN", "CUR"):
            header[sid] = e + [""] * (17 - len(e))
            at[sid] = i
        else:
            r.findings.append(
                Finding(
                    level=Level.SEGMENT,
                    code=f.IK3_UNEXPECTED,
                    text="segment not expected in an 835",
                    segment_index=i,
                    segment_id=sid[:3],
                    position=i - span.start + 1,
                    loop=r.loop,
                )
            )
    claims = [_claim(r, c) for c in done]
    r.loop = ""
    bpr = header.get("BPR")
    if bpr is None:
        missing = Finding(
            level=Level.SEGMENT,
            code=f.IK3_REQUIRED_MISSING,
            text="BPR missing",
            segment_index=span.start,
            segment_id="BPR",
            position=2,
        )
        r.findings.append(missing)
        bpr = [""] * 17
    bpr_at = at.get("BPR", span.start)
    amount = r.amount(bpr, 2, bpr_at) if bpr[0] else ZERO
    if bpr[0] and not bpr[16]:
        r.bad(f.IK4_REQUIRED_MISSING, "BPR16 payment date missing", bpr_at, "BPR", 16)
    payer = payee = None
    receiver = next((x.value for x in header_refs if x.qualifier == "EV"), "")
    for pe, prefs in parties:
        if pe[1] == "PR":
            payer = party_from_n1(pe, prefs)
        else:
            payee = party_from_n1(pe, prefs)
    r.findings.extend(
        check_balance(
            amount,
            claims,
            plbs,
            start=span.start,
            bpr_at=bpr_at,
            claim_at=[c.at for c in done],
            line_at=[[ln.at for ln in c.lines] for c in done],
        )
    )
    trn = header.get("TRN", [""] * 5)
    cur = header.get("CUR", ["", "", "USD"])
    return Remittance(  # positional, in field order (see remittance.py)
        span.control,
        ic.control_number,
        group_control,
        version or span.convention,
        bpr[1],
        amount,
        bpr[3],
        bpr[4],
        bpr[5],
        r.date(bpr, 16, bpr_at) if bpr[16] else None,
        trn[1],
        trn[2],
        trn[3],
        cur[2] or "USD",
        production,
        receiver,
        payer,
        payee,
        tuple(claims),
        tuple(plbs),
        tuple(r.findings),
    )


def parse_835(data: bytes | str | Interchange) -> RemittanceBatch:
    """Every 835 transaction set of an interchange, with envelope and balancing findings.

    Raises :class:`~isthmus.formats.x12.errors.X12Error` only when the ISA is unusable.
    """
    ic = data if isinstance(data, Interchange) else read(data)
    env = check_envelope(ic)
    out: list[Remittance] = []
    findings = list(env.findings)
    for g in env.groups:
        for t in g.transactions:
            if t.id == "835":
                rem = read_remittance(ic, t, g.control, g.version)
                out.append(rem)
                findings.extend(rem.findings)
    return RemittanceBatch(
        interchange_control=ic.control_number, remittances=tuple(out), findings=tuple(findings)
    )
