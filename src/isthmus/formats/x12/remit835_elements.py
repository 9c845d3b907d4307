"""The element reading of one 835 set: R and DT values, and the findings they make.

005010X221A1 elements of types R (decimal amounts, at most 18 characters) and DT
(CCYYMMDD) as the 835 reader (`remit835_set`) takes them: `r_value` and `dt_value` parse
one, None when it is not one; `ElementReader` holds the findings of the set being read
(level ELEMENT, with their IK403 code: IK4 invalid character, required missing, invalid
date, invalid code) and reads the composite elements of CAS (group, up to six
reason/amount/quantity triplets) and PLB (up to six reason/amount pairs). A bad value is
taken as zero (or None) and reported.
"""

from __future__ import annotations

from datetime import date
from decimal import Context, Decimal, InvalidOperation
from typing import Final

from isthmus.formats.x12 import finding as f
from isthmus.formats.x12.elements import MAX_AMOUNT_LENGTH, NUMERIC, ZERO
from isthmus.formats.x12.finding import Finding, Level
from isthmus.formats.x12.remittance import ADJUSTMENT_GROUPS, Adjustment, ProviderAdjustment

# Decimal(v) through an explicit context: no lookup of the thread's context on each call.
# R values are at most 18 characters, so 28 digits never round; a bad one still raises.
DECIMAL: Final = Context(prec=28, traps=[InvalidOperation]).create_decimal


def r_value(v: str) -> Decimal | None:
    """An R value as Decimal, None when it is not one (missing, too long, bad)."""
    if v and len(v) <= MAX_AMOUNT_LENGTH and not v.strip(NUMERIC):
        try:
            return DECIMAL(v)
        except InvalidOperation:
            pass
    return None


def dt_value(v: str) -> date | None:
    """A DT (CCYYMMDD) value as a date, None when it is not one."""
    if len(v) == 8 and v.isdigit():
        try:
            return date.fromisoformat(v)
        except ValueError:
            pass
    return None


class ElementReader:
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
                return DECIMAL(v)  # inlined parse_amount: the hot path of the reader
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
                return DECIMAL(v)
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
