"""A payer's 835 for the demo day: the hospital gets paid for part of what it charged.

Builds one X12 005010X221A1 health care claim payment/advice interchange: BPR (EFT payment),
TRN trace, payer (N1*PR) and payee (N1*PE) loops, and one CLP per billing account with
claim-level CAS adjustments (CO-45 contractual, PR-1 deductible), plus one denied claim
(CLP02 = 4, CO-50). Claims balance (CLP03 - CLP04 = sum of CAS) and the payment balances
(BPR02 = sum of CLP04), so every line posts. Deterministic for a seed; no patient names.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

CENT = Decimal("0.01")


@dataclass(frozen=True)
class ClaimToPay:
    """A billing account the demo payer pays: its number (CLP01) and what was charged."""

    account_number: str  # PID-18, sent back by the payer as CLP01
    charged: Decimal


def _isa(sender: str, receiver: str, day: date, control: int) -> str:
    return (
        "ISA*00*" + " " * 10 + "*00*" + " " * 10 + f"*ZZ*{sender:<15}*ZZ*{receiver:<15}"
        f"*{day:%y%m%d}*1200*^*00501*{control:09d}*0*P*:"
    )


def remittance_835(
    claims: Sequence[ClaimToPay],
    *,
    day: date,
    seed: int = 7,
    control: int = 835001,
    denied: int = 1,
) -> bytes:
    """The 835 paying `claims` (about 70% paid, 20% contractual, the rest deductible), the
    last `denied` of them denied."""
    rng = random.Random(seed)
    body: list[str] = []
    total = Decimal(0)
    for i, c in enumerate(claims):
        pcn = c.account_number
        if i >= len(claims) - denied:
            body += [f"CLP*{pcn}*4*{c.charged}*0*0*12*PCN{i:06d}*11*1", f"CAS*CO*50*{c.charged}"]
            continue
        paid = (c.charged * Decimal(rng.uniform(0.6, 0.8))).quantize(CENT)
        co = (c.charged * Decimal("0.2")).quantize(CENT)
        pr = c.charged - paid - co
        total += paid
        body += [f"CLP*{pcn}*1*{c.charged}*{paid}*{pr}*12*PCN{i:06d}*11*1", f"CAS*CO*45*{co}"]
        if pr:
            body.append(f"CAS*PR*1*{pr}")
    header = [
        f"BPR*I*{total}*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880*DA*98765"
        f"*{day:%Y%m%d}",
        f"TRN*1*EFT{control}*1512345678",
        f"DTM*405*{day:%Y%m%d}",
        "N1*PR*DEMO HEALTH PLAN",
        "N3*1 PAYER WAY",
        "N4*ISTHMUS CITY*WI*53700",
        "PER*BL*CLAIMS*TE*5555550100",
        "N1*PE*ISTHMUS GENERAL*XX*1999999984",
        "N3*100 HOSPITAL DRIVE",
        "N4*ISTHMUS CITY*WI*53700",
        "REF*TJ*391234567",
        "LX*1",
    ]
    st = ["ST*835*0001", *header, *body]
    segments = [
        _isa("DEMOPAYER", "ISTHMUS", day, control),
        f"GS*HP*DEMOPAYER*ISTHMUS*{day:%Y%m%d}*1200*1*X*005010X221A1",
        *st,
        f"SE*{len(st) + 1}*0001",
        "GE*1*1",
        f"IEA*1*{control:09d}",
    ]
    return ("~\n".join(segments) + "~\n").encode()
