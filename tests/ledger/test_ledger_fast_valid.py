"""`is_valid`, the one-pass check every posting runs, never passes what `validate_entry`
finds fault with, and passes every entry the posting rules make.

Entries here are drawn from a space where each field is often wrong (empty keys, a line
count of one, signs, precision, currencies, imbalance, periods, self-reversal), so both
answers are exercised; the reference is `validate_entry`, the list of findings."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.ledger import Dimensions, JournalEntry, JournalLine, validate_entry
from isthmus.ledger.journal import is_valid
from tests.ledger.builders import posted_entries

amounts = st.sampled_from(
    ["0", "0.00", "1.00", "2.5", "2.50", "-1.00", "0.001", "10", "NaN", "Infinity", "3.000", "7.25"]
).map(Decimal)
keys = st.sampled_from(["", "k1", "k2"])
periods = st.sampled_from(["2024-03", "2024-02", "2024-13", "", "2024-3", "2023-12"])


@st.composite
def lines(draw: st.DrawFn) -> JournalLine:
    return JournalLine(
        account=draw(st.sampled_from(["", "1200", "4000"])),
        debit=draw(amounts),
        credit=draw(amounts),
        currency=draw(st.sampled_from(["USD", "JPY", "KWD", "usd", "US", "EUR"])),
        dims=Dimensions(company=draw(st.sampled_from(["", "C1"]))),
    )


@st.composite
def entries(draw: st.DrawFn) -> JournalEntry:
    key = draw(keys)
    return JournalEntry(
        entry_key=key,
        posted_on=date(2024, 3, draw(st.integers(1, 28))),
        period=draw(periods),
        channel="ch",
        memo="m",
        lines=tuple(draw(st.lists(lines(), max_size=4))),
        correlation_id=draw(keys),
        causation_id=draw(keys),
        reverses=draw(st.sampled_from([None, key, "other"])),
        moved_from=draw(st.sampled_from([None, "2024-02", "2024-04", "bad"])),
    )


@settings(max_examples=3000, deadline=None)
@given(entries())
def test_is_valid_agrees_with_validate_entry(entry: JournalEntry) -> None:
    assert is_valid(entry) == (validate_entry(entry) == [])


@settings(max_examples=500, deadline=None)
@given(posted_entries(), st.data())
def test_one_fault_in_a_valid_entry_is_seen(
    posted: list[JournalEntry], data: st.DataObject
) -> None:
    entry = posted[0]
    first = entry.lines[0]
    fault = data.draw(
        st.sampled_from(
            [
                {"entry_key": ""},
                {"correlation_id": ""},
                {"causation_id": ""},
                {"lines": entry.lines[:1]},
                {"period": "2024-13"},
                {"moved_from": "9999-12"},
                {"reverses": entry.entry_key},
                {
                    "lines": (
                        msgspec.structs.replace(
                            first, debit=first.debit + Decimal("0.01"), credit=first.credit
                        ),
                        *entry.lines[1:],
                    )
                },
                {"lines": (msgspec.structs.replace(first, currency="usd"), *entry.lines[1:])},
                {"lines": (msgspec.structs.replace(first, account=""), *entry.lines[1:])},
            ]
        )
    )
    bad = msgspec.structs.replace(entry, **fault)
    assert is_valid(bad) == (validate_entry(bad) == [])


@settings(max_examples=100, deadline=None)
@given(posted_entries())
def test_the_posting_rules_entries_take_the_fast_path(posted: list[JournalEntry]) -> None:
    assert all(is_valid(e) for e in posted)
