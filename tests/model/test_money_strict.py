"""Amounts as text are ASCII decimals only (issue 16, item 8): `model.money.parse_decimal`,
what `Money.parse` (HL7 v2 FT1 amounts) and the refund API read amounts with."""

from __future__ import annotations

from decimal import Decimal

import pytest

from isthmus.model.money import Money, MoneyError, parse_decimal


@pytest.mark.parametrize(
    "text",
    [
        "1_0.00",
        "\uff11\uff10.00",
        "\u0663\u0660.00",
        "1e3",
        "1E+3",
        "NaN",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        "0x10",
        "10,00",
        "1.2.3",
        "",
        " ",
        ".",
        "+",
        "--1",
        "1 000",
        "\u00a010.00",
    ],
)
def test_what_decimal_would_take_is_refused(text: str) -> None:
    with pytest.raises(MoneyError, match="FT1-11 is not a decimal number") as err:
        parse_decimal(text, "FT1-11")
    assert len(text) < 3 or text not in str(err.value), "the value is never echoed"
    with pytest.raises(MoneyError):
        Money.parse(text, "USD")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("125.00", "125.00"),
        ("-12.5", "-12.5"),
        ("+3", "3"),
        (".50", "0.50"),
        ("7.", "7"),
        (" 10.00\r\n", "10.00"),
        ("0", "0"),
    ],
)
def test_ascii_decimals_read_exactly(text: str, value: str) -> None:
    assert parse_decimal(text) == Decimal(value)
    assert Money.parse(text, "usd") == Money(Decimal(value), "USD")


def test_only_text_is_read() -> None:
    with pytest.raises(MoneyError, match="must be text"):
        parse_decimal(10.5)  # type: ignore[arg-type]
