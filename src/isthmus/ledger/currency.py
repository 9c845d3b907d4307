"""Currency minor units: how many decimal places an amount of each currency carries.

A journal line is posted at the currency's minor unit (ISO 4217 "exponent": 2 for USD and
EUR, 0 for JPY, 3 for KWD and BHD), because that is what an ERP can store and what a bank
can move. Rounding here would silently create or destroy money, so `quantize` refuses an
amount that would lose digits; the caller (a posting rule) turns that into a work item.
Only the currencies whose exponent is not 2 are listed; every other code defaults to 2.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from types import MappingProxyType

from isthmus.ledger.errors import InvalidAmount, LedgerError

DEFAULT_EXPONENT = 2

# ISO 4217 list one (2024): currencies whose minor unit is not 2.
EXPONENTS = MappingProxyType(
    {
        "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
        "PYG": 0, "RWF": 0, "UGX": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
        "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
        "CLF": 4, "UYW": 4,
    }
)  # fmt: skip


_CODES: set[str] = set()  # codes seen to pass, so that every posting line asks once


def is_currency_code(code: str) -> bool:
    """True for a three-letter upper-case code, the shape of ISO 4217 alphabetic codes."""
    if code in _CODES:
        return True
    if len(code) == 3 and code.isascii() and code.isalpha() and code.isupper():
        if len(_CODES) < 1024:  # bounded: a feed cannot grow it without end
            _CODES.add(code)
        return True
    return False


def exponent(currency: str) -> int:
    """Number of decimal places of the currency's minor unit (ISO 4217 exponent)."""
    return EXPONENTS.get(currency, DEFAULT_EXPONENT)


_QUANTA: dict[str, Decimal] = {}  # currency -> its minor unit, made once (every posting asks)


def quantum(currency: str) -> Decimal:
    """The minor unit as a Decimal: Decimal('0.01') for USD, Decimal('1') for JPY."""
    found = _QUANTA.get(currency)
    if found is None:
        found = _QUANTA[currency] = Decimal(1).scaleb(-exponent(currency))
    return found


def is_quantized(amount: Decimal, currency: str) -> bool:
    """True when `amount` is finite and written with exactly the currency's decimal places."""
    return (
        isinstance(amount, Decimal)
        and amount.is_finite()
        and amount.same_quantum(quantum(currency))
    )


def quantize(amount: Decimal, currency: str) -> Decimal:
    """`amount` at the currency's minor unit, exactly; refuse if that would lose digits.

    Decimal('100') USD becomes Decimal('100.00'); Decimal('10.005') USD is refused.
    """
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise _refuse(f"amount {amount!r} is not a finite Decimal")
    unit = quantum(currency)
    if amount.same_quantum(unit):  # already at the minor unit (most amounts): as it is
        return amount
    try:
        exact = amount.quantize(unit)
    except InvalidOperation as exc:
        raise _refuse(f"amount {amount} {currency} is too large to post") from exc
    if exact != amount:
        raise _refuse(
            f"amount {amount} {currency} is finer than its minor unit "
            f"({exponent(currency)} decimal places)"
        )
    return exact


def _refuse(message: str) -> InvalidAmount:
    return InvalidAmount(message, (LedgerError(code="bad_amount", message=message),))
