"""Journal entries: validation findings as data, require_valid, reversal."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import msgspec
import pytest

from isthmus.ledger import (
    Dimensions,
    InvalidEntry,
    JournalEntry,
    JournalLine,
    UnbalancedEntry,
    cr,
    dr,
    require_valid,
    reverse,
    trial_balance,
    validate_entry,
)
from isthmus.ledger.errors import InvalidAmount
from tests.ledger.builders import make_charge, post

DIMS = Dimensions(company="C1")


def entry(*lines: JournalLine, **over: object) -> JournalEntry:
    fields: dict[str, object] = {
        "entry_key": "k1",
        "posted_on": date(2024, 3, 15),
        "period": "2024-03",
        "channel": "ch",
        "memo": "m",
        "lines": lines,
        "correlation_id": "c",
        "causation_id": "e",
    }
    fields.update(over)
    return JournalEntry(**fields)  # type: ignore[arg-type]


def line(
    account: str, debit: str, credit: str, currency: str = "USD", dims: Dimensions = DIMS
) -> JournalLine:
    return JournalLine(
        account=account, debit=Decimal(debit), credit=Decimal(credit), currency=currency, dims=dims
    )


def codes(e: JournalEntry) -> list[str]:
    return [err.code for err in validate_entry(e)]


def test_balanced_entry_has_no_findings() -> None:
    assert validate_entry(entry(line("1200", "10.00", "0.00"), line("4000", "0.00", "10.00"))) == []


def test_unbalanced_hand_made_entry_is_rejected() -> None:
    bad = entry(line("1200", "10.00", "0.00"), line("4000", "0.00", "9.99"))
    errors = validate_entry(bad)
    assert [e.code for e in errors] == ["unbalanced"]
    assert errors[0].entry_key == "k1" and "0.01" in errors[0].message
    with pytest.raises(UnbalancedEntry) as info:
        require_valid(bad)
    assert info.value.errors == tuple(errors)


def test_balance_is_checked_per_currency() -> None:
    # 10 USD against 10 EUR is not balanced, even though the numbers add up.
    bad = entry(line("1200", "10.00", "0.00", "USD"), line("4000", "0.00", "10.00", "EUR"))
    assert codes(bad) == ["unbalanced", "unbalanced"]
    ok = entry(
        line("1200", "10.00", "0.00", "USD"),
        line("4000", "0.00", "10.00", "USD"),
        line("1200", "7", "0", "JPY"),
        line("4000", "0", "7", "JPY"),
    )
    assert codes(ok) == []


def test_a_single_line_is_too_few() -> None:
    assert "too_few_lines" in codes(entry(line("1200", "0.00", "0.00")))
    assert codes(entry()) == ["too_few_lines"]


@pytest.mark.parametrize(
    ("debit", "credit"),
    [
        ("10.00", "10.00"),  # two-sided
        ("0.00", "0.00"),  # empty
        ("-10.00", "0.00"),  # negative
    ],
)
def test_lines_must_be_one_sided_and_non_negative(debit: str, credit: str) -> None:
    e = entry(line("1200", debit, credit), line("4000", credit, debit))
    assert "not_one_sided" in codes(e)


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("10.0", "USD"),
        ("10.001", "USD"),
        ("10.00", "JPY"),
        ("10.00", "KWD"),
        ("10", "EUR"),
    ],
)
def test_amounts_must_sit_at_the_minor_unit(amount: str, currency: str) -> None:
    zero = {"JPY": "0", "KWD": "0.000"}.get(currency, "0.00")
    e = entry(line("1200", amount, zero, currency), line("4000", zero, amount, currency))
    assert codes(e) == ["not_quantized", "not_quantized"]


def test_bad_lines_are_reported_not_raised() -> None:
    nan = JournalLine(
        account="",
        debit=Decimal("NaN"),
        credit=Decimal("0.00"),
        currency="usd",
        dims=Dimensions(company=""),
    )
    errors = validate_entry(entry(nan, line("4000", "0.00", "1.00")))
    assert [(e.code, e.line) for e in errors] == [("bad_line", 0)] * 4 + [("unbalanced", None)]


def test_keys_and_lineage_are_required() -> None:
    e = entry(
        line("1200", "1.00", "0.00"),
        line("4000", "0.00", "1.00"),
        entry_key="",
        correlation_id="",
        causation_id="",
    )
    assert codes(e) == ["missing_key"] * 3


@pytest.mark.parametrize(
    ("period", "posted_on", "moved_from"),
    [
        ("2024-04", date(2024, 3, 15), None),  # period does not contain posted_on
        ("2024-3", date(2024, 3, 15), None),  # malformed
        ("2024-13", date(2024, 3, 15), None),
        ("2024-03", date(2024, 3, 15), "2024-03"),  # moved to itself
        ("2024-03", date(2024, 3, 15), "2024-05"),  # moved backwards
    ],
)
def test_period_findings(period: str, posted_on: date, moved_from: str | None) -> None:
    e = entry(
        line("1200", "1.00", "0.00"),
        line("4000", "0.00", "1.00"),
        period=period,
        posted_on=posted_on,
        moved_from=moved_from,
    )
    assert codes(e) == ["bad_period"]


def test_moved_entry_is_valid_when_moved_forward() -> None:
    e = entry(
        line("1200", "1.00", "0.00"),
        line("4000", "0.00", "1.00"),
        period="2024-03",
        posted_on=date(2024, 3, 1),
        moved_from="2024-01",
    )
    assert codes(e) == []


def test_non_balance_findings_raise_invalid_entry_not_unbalanced() -> None:
    e = entry(line("1200", "1.00", "0.00"), line("4000", "0.00", "1.00"), entry_key="")
    with pytest.raises(InvalidEntry) as info:
        require_valid(e)
    assert not isinstance(info.value, UnbalancedEntry)


def test_dr_cr_quantize_exactly_and_refuse_lost_digits() -> None:
    assert dr("1200", Decimal("5"), "USD", DIMS).debit.as_tuple().exponent == -2
    assert str(cr("1200", Decimal("5"), "KWD", DIMS).credit) == "5.000"
    assert str(cr("1200", Decimal("5"), "KWD", DIMS).debit) == "0.000"
    assert str(dr("1200", Decimal("500"), "JPY", DIMS).debit) == "500"
    with pytest.raises(InvalidAmount):
        dr("1200", Decimal("0.5"), "JPY", DIMS)


def test_reverse_swaps_every_line_and_keeps_lineage() -> None:
    original = post(make_charge("125.50"), key="evt-1:charge")
    rev = reverse(
        original,
        entry_key="evt-1:charge:rev",
        posted_on=date(2024, 4, 2),
        period="2024-04",
        causation_id="evt-9",
    )
    assert rev.reverses == "evt-1:charge" and rev.entry_key == "evt-1:charge:rev"
    assert rev.correlation_id == original.correlation_id and rev.causation_id == "evt-9"
    assert rev.period == "2024-04" and rev.posted_on == date(2024, 4, 2)
    assert [(x.account, x.debit, x.credit, x.dims) for x in rev.lines] == [
        (x.account, x.credit, x.debit, x.dims) for x in original.lines
    ]
    assert validate_entry(rev) == []
    tb = trial_balance([*original.lines, *rev.lines])
    assert tb.balanced and all(row.balance == 0 for row in tb.rows)
    # The original is untouched: corrections are reversals, never edits.
    assert original.lines[0].debit == Decimal("125.50") and original.reverses is None


def test_reverse_refuses_a_reversal_into_a_mismatched_period() -> None:
    original = post(make_charge(), key="k")
    with pytest.raises(InvalidEntry):
        reverse(
            original,
            entry_key="k:rev",
            posted_on=date(2024, 4, 2),
            period="2024-05",
            causation_id="e",
        )
    with pytest.raises(InvalidEntry):
        reverse(
            original, entry_key="k", posted_on=date(2024, 4, 2), period="2024-04", causation_id="e"
        )


def test_entries_are_immutable() -> None:
    e = post(make_charge())
    with pytest.raises(AttributeError):
        e.memo = "edited"  # type: ignore[misc]
    assert msgspec.json.decode(msgspec.json.encode(e), type=JournalEntry) == e
