"""The claims (loop 2100) and service lines (2110) of an 835 set, closed and balanced.

While `remit835_set` reads a set, the claim or service line it is reading is a plain list
(`Open`, laid out below); when the next one starts, `close_line` and `close_claim` make the
typed `ServiceLine` and `Claim` of it and check the balancing of 005010X221A1 section
1.10.2.1 (a line: charge - paid = its CAS, 1.10.2.1.1; a claim: charge - paid = its CAS
and its lines', 1.10.2.1.2), summing each line's CAS once. Their findings go to
``balance``, in the order the claims and lines were read.
"""

from __future__ import annotations

from typing import Any

from isthmus.formats.x12.balancing import claim_finding, line_finding
from isthmus.formats.x12.elements import ZERO
from isthmus.formats.x12.finding import Finding
from isthmus.formats.x12.remittance import Claim, ServiceLine

# A claim (2100) or service line (2110) being read is a plain list, built and read
# positionally on the hot path; what CAS, DTM, REF, AMT and LQ attach to sits at the same
# places in both: [0] CLP or SVC elements (padded), [1] its index, [2] CAS adjustments,
# [3] DTM dates, [4] REF references, [5] AMT amounts, [6] remarks (MOA/MIA, LQ*HE),
# [7] charge, [8] paid; then a claim has [9] patient responsibility, [10] patient,
# [11] insured, [12] its service lines, [13] their CAS sums (of those with CAS); a line
# [9] units, [10] SVC01, [11] SVC06.
Open = list[Any]


def close_line(ln: Open, cl: Open, balance: list[Finding], start: int) -> ServiceLine:
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


def close_claim(cl: Open, ln: Open | None, balance: list[Finding], start: int) -> Claim:
    """The claim ``cl`` as read, its last service line ``ln`` still open; balanced
    (section 1.10.2.1.2)."""
    lines = cl[12]
    if ln is not None:
        lines.append(close_line(ln, cl, balance, start))
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
