"""Posting rules: DFT charges and credits, A40 merge reclass."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from isthmus.ledger import (
    Dimensions,
    InvalidAmount,
    JournalEntry,
    UnsupportedTransaction,
    ZeroAmount,
    account_balances,
    charge_entry,
    merge_reclass_entry,
    token_balances,
    trial_balance,
    validate_entry,
)
from tests.ledger.builders import AR, make_charge, post

AR_DIMS = Dimensions(company="C1", account_token="tok-A")
REV_DIMS = Dimensions(company="C1", cost_center="CC10", service_line="Cardiology")


def sides(entry: JournalEntry) -> list[tuple[str, str, str, str, Dimensions]]:
    return [(x.account, str(x.debit), str(x.credit), x.currency, x.dims) for x in entry.lines]


def test_charge_debits_ar_and_credits_revenue() -> None:
    e = post(make_charge("250.00"), key="evt-7:charge")
    assert sides(e) == [
        (AR, "250.00", "0.00", "USD", AR_DIMS),
        ("4000", "0.00", "250.00", "USD", REV_DIMS),
    ]
    assert e.entry_key == "evt-7:charge" and e.period == "2024-03"
    assert e.posted_on == date(2024, 3, 15) and e.channel == "dft-main"
    assert e.correlation_id == "inbox-evt-7:charge" and e.reverses is None
    assert validate_entry(e) == []


def test_credit_is_the_mirror_image() -> None:
    e = post(make_charge("250.00", kind="CD"))
    assert sides(e) == [
        ("4000", "250.00", "0.00", "USD", REV_DIMS),
        (AR, "0.00", "250.00", "USD", AR_DIMS),
    ]


def test_charge_then_credit_clears_ar_and_revenue() -> None:
    lines = [
        *post(make_charge("80.00"), key="a").lines,
        *post(make_charge("80.00", kind="CD"), key="b").lines,
    ]
    assert all(row.balance == 0 for row in trial_balance(lines).rows)


def test_memo_carries_no_phi() -> None:
    e = post(make_charge())
    assert "MRN1" not in e.memo and "HOSP" not in e.memo
    assert all("MRN1" not in str(x) for x in e.lines)


def test_amount_is_quantized_to_the_currency() -> None:
    assert sides(post(make_charge("12", "USD")))[0][1] == "12.00"
    assert sides(post(make_charge("1500", "JPY")))[0][1] == "1500"
    assert sides(post(make_charge("3.5", "KWD")))[0][1] == "3.500"


@pytest.mark.parametrize("amount", ["0", "0.00", "-0.00"])
def test_zero_amount_is_refused(amount: str) -> None:
    with pytest.raises(ZeroAmount) as info:
        post(make_charge(amount))
    assert info.value.errors[0].code == "bad_amount"


@pytest.mark.parametrize(
    ("amount", "currency"), [("-5.00", "USD"), ("1.005", "USD"), ("10.5", "JPY")]
)
def test_negative_or_too_precise_amount_is_refused(amount: str, currency: str) -> None:
    with pytest.raises(InvalidAmount) as info:
        post(make_charge(amount, currency))
    assert not isinstance(info.value, ZeroAmount)


@pytest.mark.parametrize("kind", ["PY", "AJ", "CO", "cg", ""])
def test_other_transaction_types_are_unsupported(kind: str) -> None:
    with pytest.raises(UnsupportedTransaction) as info:
        post(make_charge(kind=kind))
    assert info.value.errors[0].code == "unsupported"


def test_multi_currency_charges_balance_per_currency() -> None:
    entries = [
        post(make_charge("10.00", "USD"), key="u"),
        post(make_charge("9.99", "EUR", "CD"), key="e"),
        post(make_charge("1200", "JPY"), key="j"),
        post(make_charge("0.125", "BHD"), key="b"),
    ]
    assert all(validate_entry(e) == [] for e in entries)
    tb = trial_balance(x for e in entries for x in e.lines)
    assert tb.balanced
    assert {t.currency: str(t.debit) for t in tb.totals} == {
        "BHD": "0.125",
        "EUR": "9.99",
        "JPY": "1200",
        "USD": "10.00",
    }


def test_charge_passes_moved_from_through() -> None:
    e = post(make_charge(service_date=date(2024, 1, 20)), posted_on=date(2024, 3, 1))
    assert e.moved_from is None
    moved = charge_entry(
        make_charge(service_date=date(2024, 1, 20)),
        entry_key="k",
        ar_account=AR,
        revenue_account="4000",
        service_line="",
        cost_center="",
        company="C1",
        account_token="t",
        period="2024-03",
        posted_on=date(2024, 3, 1),
        channel="c",
        correlation_id="c",
        causation_id="e",
        moved_from="2024-01",
    )
    assert moved.moved_from == "2024-01"


# --- A40 merge reclass -------------------------------------------------------------------


def merge(balances: dict[str, Decimal], **over: str) -> JournalEntry | None:
    args = {"from_token": "tok-OLD", "to_token": "tok-NEW"} | over
    return merge_reclass_entry(
        balances,
        ar_account=AR,
        company="C1",
        entry_key="evt-40:merge",
        posted_on=date(2024, 5, 2),
        period="2024-05",
        channel="adt",
        correlation_id="inbox-40",
        causation_id="evt-40",
        **args,
    )


def test_merge_moves_a_debit_balance() -> None:
    e = merge({"USD": Decimal("300.00")})
    assert e is not None and validate_entry(e) == []
    old, new = (
        Dimensions(company="C1", account_token="tok-OLD"),
        Dimensions(company="C1", account_token="tok-NEW"),
    )
    assert sides(e) == [(AR, "300.00", "0.00", "USD", new), (AR, "0.00", "300.00", "USD", old)]


def test_merge_moves_a_credit_balance() -> None:
    e = merge({"USD": Decimal("-45.10")})
    assert e is not None
    bal = account_balances(e.lines, account=AR)
    assert bal == {("tok-NEW", "USD"): Decimal("-45.10"), ("tok-OLD", "USD"): Decimal("45.10")}
    assert all(x.debit >= 0 and x.credit >= 0 for x in e.lines)


def test_merge_empties_the_merged_account_in_every_currency() -> None:
    history = [
        *post(make_charge("120.00"), key="a", token="tok-OLD").lines,
        *post(make_charge("20.00", kind="CD"), key="b", token="tok-OLD").lines,
        *post(make_charge("5.00", "EUR", "CD"), key="c", token="tok-OLD").lines,
        *post(make_charge("700", "JPY"), key="d", token="tok-OLD").lines,
        *post(make_charge("50.00"), key="e", token="tok-NEW").lines,
    ]
    owed = token_balances(history, account=AR, token="tok-OLD")
    assert owed == {"USD": Decimal("100.00"), "EUR": Decimal("-5.00"), "JPY": Decimal("700")}
    e = merge(owed)
    assert e is not None and validate_entry(e) == []
    assert len(e.lines) == 6
    after = account_balances([*history, *e.lines], account=AR)
    assert after == {
        ("tok-NEW", "EUR"): Decimal("-5.00"),
        ("tok-NEW", "JPY"): Decimal("700"),
        ("tok-NEW", "USD"): Decimal("150.00"),
        ("tok-OLD", "EUR"): Decimal("0.00"),
        ("tok-OLD", "JPY"): Decimal("0"),
        ("tok-OLD", "USD"): Decimal("0.00"),
    }


@pytest.mark.parametrize(
    "balances", [{}, {"USD": Decimal("0.00")}, {"USD": Decimal(0), "JPY": Decimal(0)}]
)
def test_merge_with_nothing_to_move_returns_none(balances: dict[str, Decimal]) -> None:
    assert merge(balances) is None


def test_merge_onto_the_same_token_moves_nothing() -> None:
    assert merge({"USD": Decimal("5.00")}, to_token="tok-OLD") is None


def test_merge_refuses_a_balance_finer_than_the_currency() -> None:
    with pytest.raises(InvalidAmount):
        merge({"USD": Decimal("1.001")})
