"""Money: a Decimal amount with an ISO 4217 currency code.

Floats never carry money here. Arithmetic across currencies is refused, because a sum of
dollars and euros is not a number any ledger can post.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import msgspec


class MoneyError(ValueError):
    """The amount or currency is not valid money; the caller must reject the input."""


class Money(msgspec.Struct, frozen=True):
    amount: Decimal
    currency: str

    @classmethod
    def parse(cls, amount: str, currency: str) -> Money:
        """Build Money from text, e.g. an HL7 CP/MO component ("100.00", "USD")."""
        cur = currency.strip().upper()
        if len(cur) != 3 or not cur.isalpha():
            raise MoneyError(f"currency {currency!r} is not an ISO 4217 code")
        try:
            value = Decimal(amount.strip())
        except InvalidOperation as exc:
            raise MoneyError(f"amount {amount!r} is not a decimal number") from exc
        if not value.is_finite():
            raise MoneyError(f"amount {amount!r} is not finite")
        return cls(value, cur)

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
