"""Trial balance and account balances."""

from __future__ import annotations

from decimal import Decimal

import pytest

from isthmus.ledger import Dimensions, JournalLine, account_balances, trial_balance
from tests.ledger.builders import AR, make_charge, post


def test_trial_balance_groups_per_account_and_currency_sorted() -> None:
    lines = [
        *post(make_charge("100.00"), key="a", revenue_account="4100").lines,
        *post(make_charge("40.00", kind="CD"), key="b").lines,
        *post(make_charge("500", "JPY"), key="c").lines,
    ]
    tb = trial_balance(lines)
    assert [
        (r.account, r.currency, str(r.debit), str(r.credit), str(r.balance)) for r in tb.rows
    ] == [
        (AR, "JPY", "500", "0", "500"),
        (AR, "USD", "100.00", "40.00", "60.00"),
        ("4000", "JPY", "0", "500", "-500"),
        ("4000", "USD", "40.00", "0.00", "40.00"),
        ("4100", "USD", "0.00", "100.00", "-100.00"),
    ]
    assert [(t.currency, str(t.debit), str(t.credit), t.balanced) for t in tb.totals] == [
        ("JPY", "500", "500", True),
        ("USD", "140.00", "140.00", True),
    ]
    assert tb.balanced and tb.total("USD") is not None and tb.total("GBP") is None


def test_trial_balance_reports_the_unbalanced_currency() -> None:
    lines = [
        *post(make_charge("1.00"), key="a").lines,
        JournalLine(
            account="4000",
            debit=Decimal("0"),
            credit=Decimal("3"),
            currency="JPY",
            dims=Dimensions(company="C1"),
        ),
    ]
    tb = trial_balance(lines)
    assert not tb.balanced
    assert {t.currency: t.balanced for t in tb.totals} == {"JPY": False, "USD": True}


def test_empty_trial_balance_is_balanced() -> None:
    tb = trial_balance([])
    assert tb.rows == () and tb.totals == () and tb.balanced


def test_account_balances_by_token_and_by_other_dimension() -> None:
    lines = [
        *post(make_charge("100.00"), key="a", token="t1").lines,
        *post(make_charge("30.00", kind="CD"), key="b", token="t1").lines,
        *post(make_charge("7.00"), key="c", token="t2", cost_center="CC20").lines,
        *post(make_charge("9.00", "EUR"), key="d", token="t2").lines,
    ]
    assert account_balances(lines, account=AR) == {
        ("t1", "USD"): Decimal("70.00"),
        ("t2", "EUR"): Decimal("9.00"),
        ("t2", "USD"): Decimal("7.00"),
    }
    assert account_balances(lines, account="4000", by="cost_center") == {
        ("CC10", "EUR"): Decimal("-9.00"),
        ("CC10", "USD"): Decimal("-70.00"),
        ("CC20", "USD"): Decimal("-7.00"),
    }
    with pytest.raises(ValueError, match="not a dimension"):
        account_balances(lines, account=AR, by="mrn")
