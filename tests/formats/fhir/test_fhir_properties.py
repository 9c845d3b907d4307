"""Properties: generated Money and Claims decode to exactly the Decimals they were written with."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.formats.fhir import Claim, Money, check_money, check_resource, decode_as, is_iso4217

AMOUNTS = st.decimals(min_value=-(10**12), max_value=10**12, places=2, allow_nan=False)
ANY_AMOUNTS = st.decimals(allow_nan=False, allow_infinity=False)
CURRENCIES = st.sampled_from(["USD", "EUR", "JPY", "KWD", "CHF", "GBP"])


def number(value: Decimal) -> str:
    """A JSON number written from a Decimal, as a FHIR sender would (no float)."""
    return (
        format(value, "f")
        if value == value.to_integral_value() or value.adjusted() > -7
        else str(value)
    )


@settings(max_examples=300, deadline=None)
@given(ANY_AMOUNTS, CURRENCIES)
def test_money_round_trips_exactly(value: Decimal, currency: str) -> None:
    data = f'{{"value": {value}, "currency": "{currency}"}}'.encode()
    money = msgspec.json.decode(data, type=Money)
    assert money.value == value and str(money.value) == str(value)
    assert money.currency == currency


CLAIM_ITEMS = st.lists(st.tuples(AMOUNTS, st.integers(min_value=1, max_value=999)), max_size=6)


@settings(max_examples=200, deadline=None)
@given(CLAIM_ITEMS, CURRENCIES)
def test_claim_round_trips(items: list[tuple[Decimal, int]], currency: str) -> None:
    total = sum((net for net, _ in items), Decimal("0.00"))
    body: dict[str, Any] = {
        "resourceType": "Claim",
        "id": "gen",
        "status": "active",
        "use": "claim",
        "patient": {"reference": "Patient/p1"},
        "created": "2024-01-02",
        "provider": {"reference": "Organization/o1"},
        "insurer": {"reference": "Organization/o2"},
        "total": {"value": "__TOTAL__", "currency": currency},
        "item": [
            {
                "sequence": i + 1,
                "quantity": {"value": qty},
                "net": {"value": f"__NET{i}__", "currency": currency},
            }
            for i, (_, qty) in enumerate(items)
        ],
    }
    text = json.dumps(body).replace('"__TOTAL__"', number(total))
    for i, (net, _) in enumerate(items):
        text = text.replace(f'"__NET{i}__"', number(net))
    claim = decode_as(Claim, text.encode())
    assert claim.total == Money(value=total, currency=currency)
    assert [it.net.value for it in claim.item if it.net] == [net for net, _ in items]
    assert [it.quantity.value for it in claim.item if it.quantity] == [q for _, q in items]
    assert sum((it.net.value for it in claim.item if it.net and it.net.value), Decimal(0)) == total
    errors = check_resource(claim)
    if currency == "JPY":  # 0 decimals: only whole yen pass
        assert all(e.code == "value" for e in errors)
    elif currency != "KWD":
        assert errors == []


@settings(max_examples=300, deadline=None)
@given(ANY_AMOUNTS, st.text(min_size=0, max_size=4))
def test_check_money_never_raises(value: Decimal, currency: str) -> None:
    out: list[Any] = []
    check_money(Money(value=value, currency=currency), "Claim.total", out)
    if not is_iso4217(currency):
        assert any(e.expression == ("Claim.total.currency",) for e in out)
    for e in out:
        assert e.expression[0].startswith("Claim.total.")
