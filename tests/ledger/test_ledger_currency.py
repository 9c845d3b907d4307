"""Minor units (ISO 4217 exponents) and exact quantization."""

from __future__ import annotations

from decimal import Decimal

import pytest

from isthmus.ledger.currency import exponent, is_currency_code, is_quantized, quantize
from isthmus.ledger.errors import InvalidAmount


@pytest.mark.parametrize(
    ("code", "places"),
    [
        ("USD", 2),
        ("EUR", 2),
        ("GBP", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("XYZ", 2),
    ],
)
def test_exponents(code: str, places: int) -> None:
    assert exponent(code) == places


def test_quantize_is_exact_or_refuses() -> None:
    assert str(quantize(Decimal("7"), "USD")) == "7.00"
    assert str(quantize(Decimal("7.100"), "USD")) == "7.10"
    assert str(quantize(Decimal("7.1"), "BHD")) == "7.100"
    for amount, cur in [
        ("7.001", "USD"),
        ("0.1", "JPY"),
        ("NaN", "USD"),
        ("Infinity", "USD"),
        ("1E+40", "USD"),
    ]:
        with pytest.raises(InvalidAmount):
            quantize(Decimal(amount), cur)


def test_is_quantized_means_exactly_the_minor_unit() -> None:
    assert is_quantized(Decimal("1.00"), "USD") and is_quantized(Decimal("1"), "JPY")
    assert not is_quantized(Decimal("1.0"), "USD")
    assert not is_quantized(Decimal("1.000"), "USD")
    assert not is_quantized(1.0, "USD")  # type: ignore[arg-type]


def test_currency_code_shape() -> None:
    assert is_currency_code("USD")
    assert not any(map(is_currency_code, ["usd", "US", "USDX", "U$D", "ÜSD"]))
