"""Property tests: whatever charges and credits arrive, the books balance.

The expected values are computed here from the entries directly (plain sums over lines),
never with the ledger's own aggregation helpers, so a bug there cannot hide itself.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.ledger import (
    JournalBatch,
    JournalEntry,
    account_balances,
    batch_from_csv,
    batch_from_jsonl,
    batch_to_csv,
    batch_to_jsonl,
    build_batch,
    reverse,
    trial_balance,
    validate_batch,
    validate_entry,
)
from tests.ledger.builders import EXPONENT, posted_entries

LEDGER = settings(max_examples=100, deadline=None)

policies = st.sampled_from(["detailed", "summary"])


def net_by(entries: list[JournalEntry]) -> dict[tuple[str, str], Decimal]:
    """(account, currency) -> debit - credit, zero nets dropped."""
    out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for e in entries:
        for x in e.lines:
            out[(x.account, x.currency)] += x.debit - x.credit
    return {k: v for k, v in out.items() if v != 0}


def batch_net_by(batch: JournalBatch) -> dict[tuple[str, str], Decimal]:
    out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for x in batch.lines:
        out[(x.account, x.currency)] += x.debit - x.credit
    return {k: v for k, v in out.items() if v != 0}


@LEDGER
@given(posted_entries())
def test_every_entry_validates_and_balances_per_currency(entries: list[JournalEntry]) -> None:
    for e in entries:
        assert validate_entry(e) == []
        per_currency: dict[str, Decimal] = defaultdict(Decimal)
        for x in e.lines:
            assert (x.debit > 0) != (x.credit > 0)
            assert x.debit.as_tuple().exponent == -EXPONENT[x.currency]
            per_currency[x.currency] += x.debit - x.credit
        assert set(per_currency.values()) == {0}


@LEDGER
@given(posted_entries())
def test_trial_balance_of_all_lines_balances_per_currency(entries: list[JournalEntry]) -> None:
    lines = [x for e in entries for x in e.lines]
    tb = trial_balance(lines)
    assert tb.balanced and all(t.balanced for t in tb.totals)
    debits: dict[str, Decimal] = defaultdict(Decimal)
    for x in lines:
        debits[x.currency] += x.debit
    assert {t.currency: t.debit for t in tb.totals} == debits
    assert {t.currency: t.credit for t in tb.totals} == debits
    assert {(r.account, r.currency): r.balance for r in tb.rows if r.balance} == net_by(entries)
    keys = [(r.account, r.currency) for r in tb.rows]
    assert keys == sorted(set(keys))


@LEDGER
@given(posted_entries(max_size=10), st.dates(date(2025, 1, 1), date(2025, 12, 31)))
def test_entry_plus_its_reversal_nets_every_account_to_zero(
    entries: list[JournalEntry], day: date
) -> None:
    period = f"{day.year}-{day.month:02d}"
    reversals = [
        reverse(e, entry_key=e.entry_key + ":rev", posted_on=day, period=period, causation_id="fix")
        for e in entries
    ]
    for e, r in zip(entries, reversals, strict=True):
        assert validate_entry(r) == [] and r.reverses == e.entry_key
        assert net_by([e, r]) == {}
    lines = [x for e in [*entries, *reversals] for x in e.lines]
    assert all(row.balance == 0 for row in trial_balance(lines).rows)
    assert set(account_balances(lines, account="1200").values()) <= {Decimal(0)}


@LEDGER
@given(posted_entries(), policies)
def test_batch_preserves_per_account_and_per_currency_net(
    entries: list[JournalEntry], policy: str
) -> None:
    batch = build_batch("B", entries, policy=policy, channel="erp")  # type: ignore[arg-type]
    assert validate_batch(batch) == []
    assert batch_net_by(batch) == net_by(entries)
    per_currency: dict[str, Decimal] = defaultdict(Decimal)
    for x in batch.lines:
        assert (x.debit > 0) != (x.credit > 0)
        per_currency[x.currency] += x.debit - x.credit
    assert set(per_currency.values()) <= {Decimal(0)}
    assert batch.entry_keys == tuple(sorted(e.entry_key for e in entries))
    assert set(batch.correlation_ids) == {e.correlation_id for e in entries}
    consumed = {k for x in batch.lines for k in x.source_entries}
    assert consumed <= set(batch.entry_keys)
    if policy == "detailed":
        assert len(batch.lines) == sum(len(e.lines) for e in entries)
        assert consumed == set(batch.entry_keys)
        assert Counter((x.account, x.dims, x.debit, x.credit) for x in batch.lines) == Counter(
            (x.account, x.dims, x.debit, x.credit) for e in entries for x in e.lines
        )
    else:
        assert sum(x.source_lines for x in batch.lines) <= sum(len(e.lines) for e in entries)


@LEDGER
@given(posted_entries())
def test_summary_never_contains_an_account_token(entries: list[JournalEntry]) -> None:
    batch = build_batch("B", entries, policy="summary", channel="erp")
    tokens = {x.dims.account_token for e in entries for x in e.lines} - {""}
    assert all(x.dims.account_token == "" for x in batch.lines)
    for text in (batch_to_csv(batch), batch_to_jsonl(batch)):
        assert not any(t in text for t in tokens)
    groups = {
        (x.posted_on, x.dims.company, x.dims.cost_center, x.account, x.currency)
        for x in batch.lines
    }
    assert len(groups) == len(batch.lines)


@LEDGER
@given(posted_entries(), policies)
def test_control_totals_equal_the_sums_of_lines(entries: list[JournalEntry], policy: str) -> None:
    batch = build_batch("B", entries, policy=policy, channel="erp")  # type: ignore[arg-type]
    assert [c.currency for c in batch.control] == sorted({x.currency for x in batch.lines})
    for c in batch.control:
        mine = [x for x in batch.lines if x.currency == c.currency]
        assert c.line_count == len(mine)
        assert c.debit_total == sum(x.debit for x in mine) == c.credit_total
        assert c.credit_total == sum(x.credit for x in mine)
        keys = sorted({k for x in mine for k in x.source_entries})
        assert c.hash_total == hashlib.sha256("\n".join(keys).encode()).hexdigest()


@LEDGER
@given(posted_entries(), policies, st.randoms(use_true_random=False))
def test_batch_is_deterministic_whatever_the_input_order(
    entries: list[JournalEntry], policy: str, rnd: object
) -> None:
    shuffled = list(entries)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a = build_batch("B", entries, policy=policy, channel="erp")  # type: ignore[arg-type]
    b = build_batch("B", shuffled, policy=policy, channel="erp")  # type: ignore[arg-type]
    assert a == b
    assert batch_to_csv(a) == batch_to_csv(b)


@LEDGER
@given(posted_entries(), policies)
def test_csv_round_trip_is_exact(entries: list[JournalEntry], policy: str) -> None:
    batch = build_batch("B-1", entries, policy=policy, channel="erp")  # type: ignore[arg-type]
    text = batch_to_csv(batch)
    assert batch_from_csv(text) == batch
    # Parse it independently too, and compare amounts as text (exponent included).
    rows = list(csv.DictReader(io.StringIO(text)))
    lines = [r for r in rows if r["record"] == "line"]
    assert [
        (r["account"], r["currency"], Decimal(r["debit"]), Decimal(r["credit"])) for r in lines
    ] == [(x.account, x.currency, x.debit, x.credit) for x in batch.lines]
    assert [(r["debit"], r["credit"]) for r in lines] == [
        (str(x.debit), str(x.credit)) for x in batch.lines
    ]
    controls = {
        r["currency"]: (Decimal(r["debit"]), Decimal(r["credit"]), int(r["line_count"]))
        for r in rows
        if r["record"] == "control"
    }
    assert controls == {
        c.currency: (c.debit_total, c.credit_total, c.line_count) for c in batch.control
    }


@LEDGER
@given(posted_entries(), policies)
def test_jsonl_round_trip_is_exact(entries: list[JournalEntry], policy: str) -> None:
    batch = build_batch("B-1", entries, policy=policy, channel="erp")  # type: ignore[arg-type]
    text = batch_to_jsonl(batch)
    assert batch_from_jsonl(text) == batch
    records = [json.loads(r) for r in text.splitlines()]
    lines = [r for r in records if r["record"] == "line"]
    assert [(r["debit"], r["credit"]) for r in lines] == [
        (str(x.debit), str(x.credit)) for x in batch.lines
    ]
    assert records[0]["entry_keys"] == list(batch.entry_keys)
