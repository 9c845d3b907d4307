"""One 835 (005010X221A1) transaction set read in one pass, in the guide's loop order.

The body of one ST*835, segment by segment, tracking the loop as the guide defines it
(section 2.4): header (BPR, TRN, CUR, REF*EV, DTM*405), 1000A payer (N1*PR, REF), 1000B
payee (N1*PE, REF*TJ/PQ), 2000 header number (LX), 2100 claim (CLP, CAS, NM1*QC/IL, MIA,
MOA, REF, DTM, AMT), 2110 service line (SVC, DTM, CAS, REF, AMT, LQ*HE) and the summary
PLB. `read_set` is one loop with one branch per segment: the parse path of every 835, so
a segment costs no call but those its elements need (`remit835_elements`); claims and lines
are closed and balanced as the next one starts (`remit835_claims`). The interchange around
the sets is walked by `remit835`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Final

from isthmus.formats.x12 import finding as f
from isthmus.formats.x12.balancing import payment_finding
from isthmus.formats.x12.elements import ZERO, Procedure, procedure
from isthmus.formats.x12.envelope import EnvelopeCheck, TransactionSpan
from isthmus.formats.x12.finding import Finding, Level
from isthmus.formats.x12.remit835_claims import Open, close_claim, close_line
from isthmus.formats.x12.remit835_elements import ElementReader, dt_value, r_value
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
    party_from_n1,
    person_from_nm1,
)

SKIPPED: Final = frozenset({"N2", "N3", "N4", "PER", "QTY", "RDM", "TS2", "TS3"})
_MOA_REMARKS: Final = (3, 4, 5, 6, 7)
_MIA_REMARKS: Final = (5, 20, 21, 22, 23)
CLOSING: Final = frozenset({"ST", "SE", "GS", "GE", "IEA", "ISA"})  # end a set's body
Row = tuple[int, list[str]]
_PAD: Final = tuple(("",) * n for n in range(18))  # e.extend(_PAD[n]): n empty elements


def read_set(  # noqa: C901 - one branch per 835 segment, in loop order
    rows: Iterator[Row],
    span: TransactionSpan,
    group_control: str,
    version: str,
    es: str,
    cs: str,
    icn: str,
    chk: EnvelopeCheck | None,
) -> tuple[Remittance, Row | None]:
    """Read the body of one 835 from ``rows`` up to the control segment that ends it;
    that segment (or None at the end of the data) is returned with the remittance."""
    start = span.start
    r = ElementReader(start)
    findings = r.findings
    balance: list[Finding] = []
    plbs: list[ProviderAdjustment] = []
    claims: list[Claim] = []
    cl: Open | None = None  # the claim being read
    ln: Open | None = None  # its service line being read
    det: Open | None = None  # the claim or line that CAS/DTM/REF/AMT attach to
    parties: list[tuple[list[str], list[Reference]]] = []
    header: dict[str, list[str]] = {}
    at: dict[str, int] = {}
    refs: list[Reference] = []
    header_refs = refs
    production = None
    end: Row | None = None
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
                d = DateValue(e[1], dt_value(v))
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
                    a = r_value(v)
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
                cl[12].append(close_line(ln, cl, balance, start))
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
                charge = r_value(v)
                if charge is None:
                    charge = r.late_amount(e, 2, i, "2110")
                else:
                    amounts[v] = charge
            v = e[3]
            paid = amounts.get(v)
            if paid is None:
                paid = r_value(v)
                if paid is None:
                    paid = r.late_amount(e, 3, i, "2110")
                else:
                    amounts[v] = paid
            units = None
            if e[5]:
                v = e[5]
                units = amounts.get(v)
                if units is None:
                    units = r_value(v)
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
                claims.append(close_claim(cl, ln, balance, start))
            ln = None
            if len(e) < 10:
                e.extend(_PAD[10 - len(e)])
            if not e[1] or not e[2]:
                r.clp_ids(e, i)
            v = e[3]
            charge = amounts.get(v)
            if charge is None:
                charge = r_value(v)
                if charge is None:
                    charge = r.late_amount(e, 3, i, "2100")
                else:
                    amounts[v] = charge
            v = e[4]
            paid = amounts.get(v)
            if paid is None:
                paid = r_value(v)
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
                    a = r_value(v)
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
                claims.append(close_claim(cl, ln, balance, start))
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
        elif sid in CLOSING:
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
        claims.append(close_claim(cl, ln, balance, start))
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
