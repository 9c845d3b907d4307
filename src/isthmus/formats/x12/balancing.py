"""835 balancing, 005010X221A1 section 1.10.2.1, as plain functions returning findings.

* service line (1.10.2.1.1): SVC02 - SVC03 = sum of the line's CAS amounts;
* claim (1.10.2.1.2): CLP03 - CLP04 = sum of the CAS amounts of the claim and its lines;
* transaction (1.10.2.1.3): BPR02 = sum of CLP04 - sum of PLB amounts.

Signs are taken as sent (a reversal, CLP02 = 22, negates everything and still balances).
An unbalanced remittance is not a syntax error: the findings are of level BALANCE and go
to the revenue-cycle work queue, not into a 999.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from operator import attrgetter

from isthmus.formats.x12 import finding as f
from isthmus.formats.x12.elements import ZERO
from isthmus.formats.x12.finding import Finding, Level
from isthmus.formats.x12.remittance import Claim, ProviderAdjustment, ServiceLine

_amount = attrgetter("amount")
_paid = attrgetter("paid")


def line_difference(line: ServiceLine) -> Decimal:
    """SVC02 - SVC03 - sum of CAS: zero when the line balances."""
    return line.charge - line.paid - sum(map(_amount, line.adjustments), ZERO)


def claim_difference(claim: Claim) -> Decimal:
    """CLP03 - CLP04 - sum of claim and line CAS: zero when the claim balances."""
    total = sum(map(_amount, claim.adjustments), ZERO)
    for line in claim.service_lines:
        total += sum(map(_amount, line.adjustments), ZERO)
    return claim.charge - claim.paid - total


def payment_difference(
    amount: Decimal, claims: Sequence[Claim], adjustments: Sequence[ProviderAdjustment]
) -> Decimal:
    """BPR02 - (sum of CLP04 - sum of PLB amounts): zero when the transaction balances."""
    paid = sum(map(_paid, claims), ZERO)
    plb = sum(map(_amount, adjustments), ZERO)
    return amount - (paid - plb)


def _finding(code: str, text: str, at: int, start: int, sid: str, loop: str, d: Decimal) -> Finding:
    return Finding(
        level=Level.BALANCE,
        code=code,
        text=text,
        segment_index=at,
        segment_id=sid,
        position=at - start + 1 if at >= 0 and start >= 0 else 0,
        loop=loop,
        difference=d,
    )


def line_finding(line: ServiceLine, at: int = -1, start: int = -1) -> Finding | None:
    """The finding of an unbalanced service line (SVC at index ``at``, ST at ``start``)."""
    d = line_difference(line)
    if not d:
        return None
    text = f"SVC02 {line.charge} - SVC03 {line.paid} != sum of CAS; out by {d}"
    return _finding(f.LINE_UNBALANCED, text, at, start, "SVC", "2110", d)


def claim_finding(claim: Claim, at: int = -1, start: int = -1) -> Finding | None:
    """The finding of an unbalanced claim (CLP at index ``at``, ST at ``start``)."""
    d = claim_difference(claim)
    if not d:
        return None
    text = f"CLP03 {claim.charge} - CLP04 {claim.paid} != sum of CAS; out by {d}"
    return _finding(f.CLAIM_UNBALANCED, text, at, start, "CLP", "2100", d)


def payment_finding(
    amount: Decimal,
    claims: Sequence[Claim],
    adjustments: Sequence[ProviderAdjustment],
    at: int = -1,
    start: int = -1,
) -> Finding | None:
    """The finding of an unbalanced transaction (BPR at index ``at``, ST at ``start``)."""
    d = payment_difference(amount, claims, adjustments)
    if not d:
        return None
    text = f"BPR02 {amount} != sum of CLP04 - sum of PLB; out by {d}"
    return _finding(f.PAYMENT_UNBALANCED, text, at, start, "BPR", "", d)


def check_balance(
    amount: Decimal,
    claims: Sequence[Claim],
    adjustments: Sequence[ProviderAdjustment],
    *,
    start: int = -1,
    bpr_at: int = -1,
    claim_at: Sequence[int] = (),
    line_at: Sequence[Sequence[int]] = (),
) -> list[Finding]:
    """Every balancing finding of one remittance. The optional indexes (of the ST, BPR,
    each CLP and each SVC in the interchange) locate the findings."""
    out: list[Finding] = []
    for n, claim in enumerate(claims):
        lines_at = line_at[n] if n < len(line_at) else ()
        for k, line in enumerate(claim.service_lines):
            x = line_finding(line, lines_at[k] if k < len(lines_at) else -1, start)
            if x is not None:
                out.append(x)
        x = claim_finding(claim, claim_at[n] if n < len(claim_at) else -1, start)
        if x is not None:
            out.append(x)
    x = payment_finding(amount, claims, adjustments, bpr_at, start)
    if x is not None:
        out.append(x)
    return out
