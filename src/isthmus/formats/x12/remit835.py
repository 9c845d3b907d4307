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

Speed (docs/benchmarks.md): one pass. :func:`parse_835` splits each segment once and
feeds the control segments to the envelope checks (``envelope.EnvelopeCheck``) while it
reads the sets, instead of walking the interchange twice; a claim or a service line is
built as soon as the next one starts, with no intermediate objects. Amounts and dates
are parsed once per distinct text in a set (fee schedules and service dates repeat; the
``Decimal`` from text is the costliest step left), balancing sums each line's CAS once.
The findings come out in the order the checks are listed in: the reading of the set, then
its claims' and lines' amounts, then the BPR, the balancing, BPR16. :func:`remittances`
does the same over any iterable of segments (``stream.py`` feeds it a file block by block).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Context, Decimal, InvalidOperation
from itertools import repeat
from typing import Any, Final

from isthmus.formats.x12 import finding as f
from isthmus.formats.x12.balancing import claim_finding, line_finding, payment_finding
from isthmus.formats.x12.elements import MAX_AMOUNT_LENGTH, NUMERIC, ZERO, Procedure, procedure
from isthmus.formats.x12.envelope import EnvelopeCheck, TransactionSpan, check_envelope
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
_CLOSING: Final = frozenset({"ST", "SE", "GS", "GE", "IEA", "ISA"})  # end a set's body
_Row = tuple[int, list[str]]
_PAD: Final = tuple(("",) * n for n in range(18))  # e.extend(_PAD[n]): n empty elements
# Decimal(v) through an explicit context: no lookup of the thread's context on each call.
# R values are at most 18 characters, so 28 digits never round; a bad one still raises.
_DECIMAL: Final = Context(prec=28, traps=[InvalidOperation]).create_decimal


def _r_value(v: str) -> Decimal | None:
    """An R value as Decimal, None when it is not one (missing, too long, bad)."""
    if v and len(v) <= MAX_AMOUNT_LENGTH and not v.strip(NUMERIC):
        try:
            return _DECIMAL(v)
        except InvalidOperation:
            pass
    return None


def _dt_value(v: str) -> date | None:
    """A DT (CCYYMMDD) value as a date, None when it is not one."""
    if len(v) == 8 and v.isdigit():
        try:
            return date.fromisoformat(v)
        except ValueError:
            pass
    return None


class _Reader:
    """The state of one transaction set being read; element findings accumulate here,
    those of claim and line amounts (checked when the claim is complete) in ``late``."""

    __slots__ = ("findings", "late", "loop", "start")

    def __init__(self, start: int) -> None:
        self.start = start
        self.findings: list[Finding] = []
        self.late: list[Finding] = []
        self.loop = ""

    def bad(self, code: str, text: str, i: int, sid: str, el: int, v: str = "", c: int = 0) -> None:
        self.findings.append(self._finding(code, text, i, sid, el, v, c, self.loop))

    def _finding(
        self, code: str, text: str, i: int, sid: str, el: int, v: str, c: int, loop: str
    ) -> Finding:
        return Finding(
            level=Level.ELEMENT,
            code=code,
            text=text,
            segment_index=i,
            segment_id=sid,
            position=i - self.start + 1,
            loop=loop,
            element=el,
            component=c,
            value=v,
        )

    def amount(self, e: list[str], n: int, i: int) -> Decimal:
        """A required R element; zero (and a finding) when missing or invalid."""
        v = e[n] if n < len(e) else ""
        if v and len(v) <= MAX_AMOUNT_LENGTH and not v.strip(NUMERIC):
            try:
                return _DECIMAL(v)  # inlined parse_amount: the hot path of the reader
            except InvalidOperation:
                pass
        if v:
            self.bad(f.IK4_INVALID_CHARACTER, "not a decimal number", i, e[0], n, v)
        else:
            self.bad(f.IK4_REQUIRED_MISSING, "required amount missing", i, e[0], n)
        return ZERO

    def late_amount(self, e: list[str], n: int, i: int, loop: str) -> Decimal:
        """:meth:`amount` for CLP and SVC amounts, whose findings come after the set's."""
        v = e[n]
        if v and len(v) <= MAX_AMOUNT_LENGTH and not v.strip(NUMERIC):
            try:
                return _DECIMAL(v)
            except InvalidOperation:
                pass
        if v:
            code, text = f.IK4_INVALID_CHARACTER, "not a decimal number"
        else:
            code, text = f.IK4_REQUIRED_MISSING, "required amount missing"
        x = self._finding(code, text, i, e[0], n, v, 0, loop)
        self.late.append(x)
        return ZERO

    def clp_ids(self, e: list[str], i: int) -> None:
        """CLP01 and CLP02 are required (findings after the set's, with the amounts')."""
        for n in (1, 2):
            if not e[n]:
                text = f"CLP0{n} missing"
                x = self._finding(f.IK4_REQUIRED_MISSING, text, i, "CLP", n, "", 0, "2100")
                self.late.append(x)

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
        elif n == 4:  # one triplet without quantity
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


# A claim (2100) or service line (2110) being read is a plain list, built and read
# positionally on the hot path; what CAS, DTM, REF, AMT and LQ attach to sits at the same
# places in both: [0] CLP or SVC elements (padded), [1] its index, [2] CAS adjustments,
# [3] DTM dates, [4] REF references, [5] AMT amounts, [6] remarks (MOA/MIA, LQ*HE),
# [7] charge, [8] paid; then a claim has [9] patient responsibility, [10] patient,
# [11] insured, [12] its service lines, [13] their CAS sums (of those with CAS); a line
# [9] units, [10] SVC01, [11] SVC06.
_Open = list[Any]


def _read_set(  # noqa: C901 - one branch per 835 segment, in loop order
    rows: Iterator[_Row],
    span: TransactionSpan,
    group_control: str,
    version: str,
    es: str,
    cs: str,
    icn: str,
    chk: EnvelopeCheck | None,
) -> tuple[Remittance, _Row | None]:
    """Read the body of one 835 from ``rows`` up to the control segment that ends it;
    that segment (or None at the end of the data) is returned with the remittance."""
    start = span.start
    r = _Reader(start)
    findings = r.findings
    balance: list[Finding] = []
    plbs: list[ProviderAdjustment] = []
    claims: list[Claim] = []
    cl: _Open | None = None  # the claim being read
    ln: _Open | None = None  # its service line being read
    det: _Open | None = None  # the claim or line that CAS/DTM/REF/AMT attach to
    parties: list[tuple[list[str], list[Reference]]] = []
    header: dict[str, list[str]] = {}
    at: dict[str, int] = {}
    refs: list[Reference] = []
    header_refs = refs
    production = None
    end: _Row | None = None
    groups = ADJUSTMENT_GROUPS
    # R and DT values met so far in this set, text -> value: charges, allowed amounts,
    # write-offs (fee schedules) and dates repeat, and a lookup costs a tenth of a parse
    amounts: dict[str, Decimal] = {}
    dates: dict[str, date | None] = {}
    for i, e in rows:
        sid = e[0]
        if sid == "DTM":
            if len(e) < 3:
                e.extend(_PAD[3 - len(e)])
            v = e[2]
            if v in dates:
                d = DateValue(e[1], dates[v])
            else:
                d = DateValue(e[1], _dt_value(v))
                dates[v] = d.date
            if d.date is None:
                r.date(e, 2, i)  # records the finding
            if det is not None:
                det[3].append(d)
            elif d.qualifier == "405":
                production = d.date
        elif sid == "CAS":
            if det is None:
                r.bad(f.IK4_REQUIRED_MISSING, "CAS outside a claim", i, sid, 0)
                continue
            if len(e) == 4 and e[1] in groups:  # the common case, inlined
                v = e[3]
                a = amounts.get(v)
                if a is None:
                    a = _r_value(v)
                    if a is not None:
                        amounts[v] = a
                if a is not None:
                    det[2].append(Adjustment(e[1], e[2], a, None))
                    continue
            r.cas(e, i, det[2])
        elif sid == "REF":
            if len(e) < 3:
                e.extend(_PAD[3 - len(e)])
            if det is not None:
                det[4].append(Reference(e[1], e[2]))
            else:
                refs.append(Reference(e[1], e[2]))
        elif sid == "NM1":
            if cl is not None and ln is None and len(e) > 1:
                q = e[1]
                if q in ("QC", "IL"):
                    p = Person(e[3], e[4], e[5], e[8], e[9]) if len(e) == 10 else person_from_nm1(e)
                    cl[10 if q == "QC" else 11] = p
        elif sid == "SVC":
            if cl is None:
                r.bad(f.IK4_REQUIRED_MISSING, "SVC outside a claim", i, sid, 0)
                continue
            r.loop = "2110"
            if ln is not None:
                cl[12].append(_line(ln, cl, balance, start))
            if len(e) < 8:
                e.extend(_PAD[8 - len(e)])
            v = e[1]
            parts = v.split(cs)
            proc = Procedure(parts[0], parts[1]) if len(parts) == 2 else procedure(v, cs)
            if not proc.code:
                r.bad(f.IK4_REQUIRED_MISSING, "SVC01 has no procedure code", i, sid, 1, v, 2)
            v = e[2]
            charge = amounts.get(v)
            if charge is None:
                charge = _r_value(v)
                if charge is None:
                    charge = r.late_amount(e, 2, i, "2110")
                else:
                    amounts[v] = charge
            v = e[3]
            paid = amounts.get(v)
            if paid is None:
                paid = _r_value(v)
                if paid is None:
                    paid = r.late_amount(e, 3, i, "2110")
                else:
                    amounts[v] = paid
            units = None
            if e[5]:
                v = e[5]
                units = amounts.get(v)
                if units is None:
                    units = _r_value(v)
                    if units is None:
                        units = r.late_amount(e, 5, i, "2110")
                    else:
                        amounts[v] = units
            det = ln = [
                e,
                i,
                [],
                [],
                [],
                [],
                [],
                charge,
                paid,
                units,
                proc,
                procedure(e[6], cs) if e[6] else None,
            ]
        elif sid == "CLP":
            r.loop = "2100"
            if cl is not None:
                claims.append(_claim(cl, ln, balance, start))
            ln = None
            if len(e) < 10:
                e.extend(_PAD[10 - len(e)])
            if not e[1] or not e[2]:
                r.clp_ids(e, i)
            v = e[3]
            charge = amounts.get(v)
            if charge is None:
                charge = _r_value(v)
                if charge is None:
                    charge = r.late_amount(e, 3, i, "2100")
                else:
                    amounts[v] = charge
            v = e[4]
            paid = amounts.get(v)
            if paid is None:
                paid = _r_value(v)
                if paid is None:
                    paid = r.late_amount(e, 4, i, "2100")
                else:
                    amounts[v] = paid
            det = cl = [
                e,
                i,
                [],
                [],
                [],
                [],
                [],
                charge,
                paid,
                r.late_amount(e, 5, i, "2100") if e[5] else None,
                None,
                None,
                [],
                [],
            ]
        elif sid == "AMT":
            if det is not None:
                if len(e) < 3:
                    e.extend(_PAD[3 - len(e)])
                v = e[2]
                a = amounts.get(v)
                if a is None:
                    a = _r_value(v)
                    if a is None:
                        a = r.amount(e, 2, i)  # records the finding
                    else:
                        amounts[v] = a
                det[5].append(AmountValue(e[1], a))
        elif sid == "LQ":
            if det is not None and len(e) > 2 and e[1] == "HE":
                det[6].append(e[2])
        elif sid in SKIPPED:
            pass
        elif sid == "N1":
            refs = []
            parties.append((e + [""] * (3 - len(e)), refs))
            r.loop = "1000A" if e[1:2] == ["PR"] else "1000B"
        elif sid in ("LX", "PLB"):
            if cl is not None:
                claims.append(_claim(cl, ln, balance, start))
            cl = ln = det = None
            refs = []
            r.loop = "2000" if sid == "LX" else ""
            if sid == "PLB":
                r.plb(e, i, cs, plbs)
        elif sid in ("BPR", "TRN", "CUR"):
            header[sid] = e + [""] * (17 - len(e))
            at[sid] = i
        elif sid in ("MOA", "MIA"):
            if cl is not None:
                pos = _MOA_REMARKS if sid == "MOA" else _MIA_REMARKS
                cl[6].extend(e[p] for p in pos if p < len(e) and e[p])
        elif sid in _CLOSING:
            end = (i, e)
            break
        else:
            if chk is not None and sid[:3] in ("ISA", "IEA"):
                chk.control(i, e)  # a garbled header: an envelope error too
            findings.append(
                Finding(
                    level=Level.SEGMENT,
                    code=f.IK3_UNEXPECTED,
                    text="segment not expected in an 835",
                    segment_index=i,
                    segment_id=sid[:3],
                    position=i - start + 1,
                    loop=r.loop,
                )
            )
    if cl is not None:
        claims.append(_claim(cl, ln, balance, start))
    findings.extend(r.late)
    r.loop = ""
    bpr = header.get("BPR")
    if bpr is None:
        missing = Finding(
            level=Level.SEGMENT,
            code=f.IK3_REQUIRED_MISSING,
            text="BPR missing",
            segment_index=start,
            segment_id="BPR",
            position=2,
        )
        findings.append(missing)
        bpr = [""] * 17
    bpr_at = at.get("BPR", start)
    amount = r.amount(bpr, 2, bpr_at) if bpr[0] else ZERO
    if bpr[0] and not bpr[16]:
        r.bad(f.IK4_REQUIRED_MISSING, "BPR16 payment date missing", bpr_at, "BPR", 16)
    payer = payee = None
    receiver = ""
    for x in header_refs:
        if x.qualifier == "EV":
            receiver = x.value
            break
    for pe, prefs in parties:
        if pe[1] == "PR":
            payer = party_from_n1(pe, prefs)
        else:
            payee = party_from_n1(pe, prefs)
    findings.extend(balance)
    unbalanced = payment_finding(amount, claims, plbs, bpr_at, start)
    if unbalanced is not None:
        findings.append(unbalanced)
    paid_on = r.date(bpr, 16, bpr_at) if bpr[16] else None
    trn = header.get("TRN") or [""] * 5
    cur = header.get("CUR")
    rem = Remittance(  # positional, in field order (see remittance.py)
        span.control,
        icn,
        group_control,
        version or span.convention,
        bpr[1],
        amount,
        bpr[3],
        bpr[4],
        bpr[5],
        paid_on,
        trn[1],
        trn[2],
        trn[3],
        (cur[2] if cur is not None else "") or "USD",
        production,
        receiver,
        payer,
        payee,
        tuple(claims),
        tuple(plbs),
        tuple(findings),
    )
    return rem, end


def _line(ln: _Open, cl: _Open, balance: list[Finding], start: int) -> ServiceLine:
    """The service line ``ln`` of claim ``cl`` as read, balanced (section 1.10.2.1.1);
    the sum of its CAS amounts, when it has any, goes to ``cl[13]``."""
    refs = ln[4]
    ctl = ""
    for x in refs:
        if x.qualifier == "6R":
            ctl = x.value
            break
    adj = ln[2]
    line = ServiceLine(  # positional, in field order (see remittance.py)
        ln[10],
        ln[7],
        ln[8],
        ln[0][4],
        ln[9],
        ln[11],
        tuple(adj) if adj else (),
        tuple(ln[6]) if ln[6] else (),
        tuple(ln[3]) if ln[3] else (),
        tuple(refs) if refs else (),
        tuple(ln[5]) if ln[5] else (),
        ctl,
    )
    if adj:  # as balancing.line_difference adds up, inlined
        total = adj[0].amount
        for a in adj[1:]:
            total += a.amount
        cl[13].append(total)  # for the claim's balancing
    else:
        total = ZERO
    if ln[7] - ln[8] != total:
        x = line_finding(line, ln[1], start)
        if x is not None:
            balance.append(x)
    return line


def _claim(cl: _Open, ln: _Open | None, balance: list[Finding], start: int) -> Claim:
    """The claim ``cl`` as read, its last service line ``ln`` still open; balanced
    (section 1.10.2.1.2)."""
    lines = cl[12]
    if ln is not None:
        lines.append(_line(ln, cl, balance, start))
    e = cl[0]
    adj = cl[2]
    claim = Claim(  # positional, in field order (see remittance.py)
        e[1],
        e[2],
        cl[7],
        cl[8],
        cl[9],
        e[6],
        e[7],
        e[8],
        e[9],
        cl[10],
        cl[11],
        tuple(adj) if adj else (),
        tuple(lines),
        tuple(cl[6]) if cl[6] else (),
        tuple(cl[3]) if cl[3] else (),
        tuple(cl[4]) if cl[4] else (),
        tuple(cl[5]) if cl[5] else (),
    )
    total = ZERO  # as balancing.claim_difference adds up, inlined
    for a in adj:
        total += a.amount
    for sub in cl[13]:  # the lines' sums, in order
        total += sub
    if cl[7] - cl[8] != total:
        x = claim_finding(claim, cl[1], start)
        if x is not None:
            balance.append(x)
    return claim


def remittances(
    segments: Iterable[str], es: str, cs: str, chk: EnvelopeCheck
) -> Iterator[Remittance]:
    """Every 835 of an interchange, one at a time, from its segments (the ISA first, as
    texts without their terminators), feeding the envelope checks ``chk`` as it goes.
    Once exhausted, ``chk.finish`` gives the envelope findings."""
    rows = enumerate(map(str.split, segments, repeat(es)))
    nxt = next(rows, None)  # the ISA, read by the caller
    nxt = next(rows, None)
    icn = chk.control_number
    while nxt is not None:
        i, e = nxt
        sid = e[0]
        if sid in _CLOSING or sid[:3] in ("ISA", "IEA"):
            chk.control(i, e)
            tx, group = chk.tx, chk.group
            if sid == "ST" and tx is not None and tx.start == i and group is not None:
                if tx.id == "835":
                    rem, nxt = _read_set(rows, tx, group.control, group.version, es, cs, icn, chk)
                    yield rem
                    del rem  # the caller holds it as long as it needs
                else:
                    nxt = _skip_set(rows, chk)
                continue
        elif chk.tx is None:
            chk.other(i, sid)
        nxt = next(rows, None)


def _skip_set(rows: Iterator[_Row], chk: EnvelopeCheck) -> _Row | None:
    """Pass over the body of a set that is not an 835, up to the segment that ends it."""
    for i, e in rows:
        sid = e[0]
        if sid in _CLOSING:
            return i, e
        if sid[:3] in ("ISA", "IEA"):
            chk.control(i, e)
    return None


def read_remittance(
    ic: Interchange, span: TransactionSpan, group_control: str = "", version: str = ""
) -> Remittance:
    """One 835 transaction set (``span`` from :func:`check_envelope`) as a Remittance."""
    es, cs = ic.delimiters.element, ic.delimiters.component
    first = span.start + 1
    body = ic.raw[first : span.stop - 1 if span.end >= 0 else span.stop]
    rows = enumerate(map(str.split, body, repeat(es)), first)
    return _read_set(rows, span, group_control, version, es, cs, ic.control_number, None)[0]


def parse_835(data: bytes | str | Interchange) -> RemittanceBatch:
    """Every 835 transaction set of an interchange, with envelope and balancing findings.

    Raises :class:`~isthmus.formats.x12.errors.X12Error` only when the ISA is unusable.
    """
    ic = data if isinstance(data, Interchange) else read(data)
    d = ic.delimiters
    chk = EnvelopeCheck(ic.isa)
    out = list(remittances(ic.raw, d.element, d.component, chk))
    raw = ic.raw
    env = chk.finish(len(raw), raw[-1].split(d.element, 1)[0], ic.unterminated)
    findings = env.findings
    for rem in out:
        findings.extend(rem.findings)
    return RemittanceBatch(
        interchange_control=ic.control_number, remittances=tuple(out), findings=tuple(findings)
    )


__all__ = ["check_envelope", "parse_835", "read_remittance", "remittances"]
