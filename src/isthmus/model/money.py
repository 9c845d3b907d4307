"""Money: a Decimal amount with an ISO 4217 currency code.

Floats never carry money here. Arithmetic across currencies is refused, because a sum of
dollars and euros is not a number any ledger can post.

Amounts as text are read by `parse_decimal` alone, and strictly: ASCII digits with an
optional sign and one optional decimal point, as HL7 v2 NM (2.A.47) and X12 R write them.
Python's `Decimal()` takes far more (`1_0.00`, non-ASCII digits such as `１０`, `1e3`,
`NaN`, `Infinity`): what a sender did not mean as an amount is refused, not reinterpreted
(issue 16, strict inputs).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

import msgspec

from isthmus.errors import InvalidInput

# re.ASCII: \d would match any Unicode digit otherwise; [0-9] says it plainly anyway.
_DECIMAL: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
_SPACE: Final = " \t\r\n"


class MoneyError(InvalidInput, ValueError):
    """The amount or currency is not valid money; the caller must reject the input."""


def parse_decimal(text: str, what: str = "amount") -> Decimal:
    """A decimal from text: ASCII digits, an optional leading + or -, an optional decimal
    point (surrounding ASCII blanks are ignored). Anything else raises MoneyError naming
    `what` and the rule, never the value (a name typed into an amount field is PHI): digit
    group separators, exponents, NaN and infinities, non-ASCII digits."""
    if not isinstance(text, str):
        raise MoneyError(f"{what} must be text, not {type(text).__name__}")
    core = text.strip(_SPACE)
    if not _DECIMAL.fullmatch(core):
        raise MoneyError(
            f"{what} is not a decimal number (ASCII digits with an optional "
            "sign and decimal point, e.g. 125.00)"
        )  # the value may be PHI
    return Decimal(core)


class Money(msgspec.Struct, frozen=True):
    """An amount with its ISO 4217 currency; arithmetic refuses to mix currencies."""

    amount: Decimal
    currency: str

    @classmethod
    def parse(cls, amount: str, currency: str) -> Money:
        """Build Money from text, e.g. an HL7 CP/MO component ("100.00", "USD")."""
        cur = currency.strip().upper()
        if len(cur) != 3 or not cur.isalpha():
            raise MoneyError(f"currency {currency!r} is not an ISO 4217 code")
        return cls(parse_decimal(amount), cur)

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        return Money(self.amount * factor, self.currency)

    def abs(self) -> Money:
        return Money(abs(self.amount), self.currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}")

    def __str__(self) -> str:
        return f"{self.amount:.2f} {self.currency}"
