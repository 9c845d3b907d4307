"""X12 simple data element types as Python values: R (decimal), DT (date), composites.

ASC X12.6 section 3.7 (data element types): R is a decimal number with an optional
leading minus sign and an explicit decimal point, at most 18 characters in the HIPAA
guides' use of amounts (AMT, CLP, SVC, CAS, BPR, PLB); DT is CCYYMMDD in 005010. Composites
(C003 procedure identifier, C042 adjustment identifier) are split on the component
separator, and, because real 835s get it wrong (ISA16 declares ":" while SVC01 uses ">"),
on a commonly used other separator when the declared one does not occur.

Invalid values come back as ``None``; the transaction readers turn that into a finding
(IK403 code 6 or 8). Money is ``Decimal``, never float.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Final

import msgspec

MAX_AMOUNT_LENGTH: Final = 18
ALTERNATE_COMPONENT_SEPARATORS: Final = (">", ":", "^", "|", "\\")
ZERO: Final = Decimal(0)
NUMERIC: Final = "0123456789.-"


class Procedure(msgspec.Struct, frozen=True, gc=False):
    """C003 composite medical procedure identifier (SV1-1, SV2-2, SVC-1, SVC-6).

    ``qualifier`` is C003-1 (HC: HCPCS/CPT, NU: NUBC revenue code, N4: NDC, ...), ``code``
    C003-2, ``modifiers`` C003-3..6 (empty ones left out), ``description`` C003-7.
    """

    qualifier: str
    code: str
    modifiers: tuple[str, ...] = ()
    description: str = ""


def padded(e: list[str], n: int) -> list[str]:
    """A segment's elements with empty ones added up to index `n - 1`."""
    return e + [""] * (n - len(e)) if len(e) < n else e


def parse_amount(v: str) -> Decimal | None:
    """An R value as Decimal; None when ``v`` is not a valid one (callers test "")."""
    if len(v) > MAX_AMOUNT_LENGTH or v.strip(NUMERIC):
        return None
    try:
        return Decimal(v)  # the only characters left are digits, "." and "-"
    except InvalidOperation:
        return None


def parse_date(v: str) -> date | None:
    """A DT (CCYYMMDD) value; None when ``v`` is not a valid date."""
    if len(v) != 8 or not v.isdigit():
        return None
    try:
        return date.fromisoformat(v)  # 3.11+ reads the ISO basic format CCYYMMDD
    except ValueError:
        return None


def split_composite(v: str, separator: str) -> list[str]:
    """Components of a composite; tries the usual other separators when the declared one
    is absent (the corpus quirk of ">" used with ISA16 ":")."""
    if separator in v:
        return v.split(separator)
    for alt in ALTERNATE_COMPONENT_SEPARATORS:
        if alt in v:
            return v.split(alt)
    return [v]


def procedure(v: str, separator: str) -> Procedure:
    """A C003 composite as a :class:`Procedure` (code "" when the composite has none)."""
    parts = split_composite(v, separator)
    n = len(parts)
    if n == 1:
        return Procedure(parts[0], "")
    if n == 2:
        return Procedure(parts[0], parts[1])
    mods = tuple(m for m in parts[2:6] if m)
    return Procedure(parts[0], parts[1], mods, parts[6] if n > 6 else "")
