"""ERP journal batches: detailed and summary policies, control totals, file formats."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import date
from decimal import Decimal

import msgspec
import pytest

from isthmus.ledger import (
    InvalidBatch,
    JournalEntry,
    JournalLine,
    UnbalancedBatch,
    batch_from_csv,
    batch_from_jsonl,
    batch_to_csv,
    batch_to_jsonl,
    build_batch,
    validate_batch,
)
from tests.ledger.builders import AR, make_charge, post

DAY = date(2024, 3, 15)


def sample() -> list[JournalEntry]:
    return [
        post(make_charge("100.00", txn="1"), key="e1", token="tA"),
        post(make_charge("50.00", txn="2"), key="e2", token="tB"),
        post(make_charge("30.00", kind="CD", txn="3"), key="e3", token="tA"),
        post(make_charge("20.00", txn="4"), key="e4", token="tB", service_line="Imaging"),
        post(make_charge("900", "JPY", txn="5"), key="e5", token="tC"),
    ]


def test_detailed_has_one_line_per_journal_line_with_tokens() -> None:
    entries = sample()
    batch = build_batch("B1", entries, policy="detailed", channel="erp")
    assert len(batch.lines) == 10
    assert [x.line_no for x in batch.lines] == list(range(1, 11))
    assert [x.source_entries for x in batch.lines[:2]] == [("e1",), ("e1",)]
    assert {x.dims.account_token for x in batch.lines if x.account == AR} == {"tA", "tB", "tC"}
    assert batch.entry_keys == ("e1", "e2", "e3", "e4", "e5")
    assert batch.correlation_ids == ("inbox-e1", "inbox-e2", "inbox-e3", "inbox-e4", "inbox-e5")
    assert validate_batch(batch) == []


def test_summary_nets_each_group_drops_tokens_and_merges_service_lines() -> None:
    batch = build_batch("B1", sample(), policy="summary", channel="erp")
    got = [
        (
            x.account,
            x.dims.cost_center,
            x.dims.service_line,
            x.dims.account_token,
            x.currency,
            str(x.debit),
            str(x.credit),
            x.source_entries,
            x.source_lines,
        )
        for x in batch.lines
    ]
    assert got == [
        (AR, "", "", "", "JPY", "900", "0", ("e5",), 1),
        # A/R USD: 100 + 50 + 20 debits, 30 credit -> one debit of 140.
        (AR, "", "", "", "USD", "140.00", "0.00", ("e1", "e2", "e3", "e4"), 4),
        # JPY revenue lines all share Cardiology; USD ones mix in Imaging -> blank.
        ("4000", "CC10", "Cardiology", "", "JPY", "0", "900", ("e5",), 1),
        ("4000", "CC10", "", "", "USD", "0.00", "140.00", ("e1", "e2", "e3", "e4"), 4),
    ]
    keys = [
        (x.posted_on, x.dims.company, x.dims.cost_center, x.account, x.currency)
        for x in batch.lines
    ]
    assert keys == sorted(keys)


def test_summary_omits_a_group_that_nets_to_zero_but_keeps_its_entry_keys() -> None:
    entries = [
        post(make_charge("75.00"), key="c1", token="tA"),
        post(make_charge("75.00", kind="CD"), key="c2", token="tB"),
        post(make_charge("10.00", "EUR"), key="c3"),
    ]
    batch = build_batch("B2", entries, policy="summary", channel="erp")
    assert [(x.account, x.currency) for x in batch.lines] == [(AR, "EUR"), ("4000", "EUR")]
    assert batch.entry_keys == ("c1", "c2", "c3")
    assert [c.currency for c in batch.control] == ["EUR"]


def test_summary_keeps_days_and_companies_apart() -> None:
    entries = [
        post(make_charge("1.00", service_date=DAY), key="a"),
        post(make_charge("2.00", service_date=date(2024, 3, 16)), key="b"),
        post(make_charge("4.00", service_date=DAY), key="c", company="C2"),
    ]
    batch = build_batch("B", entries, policy="summary", channel="erp")
    assert [
        (x.posted_on.day, x.dims.company, x.account, str(x.debit + x.credit)) for x in batch.lines
    ] == [
        (15, "C1", AR, "1.00"),
        (15, "C1", "4000", "1.00"),
        (15, "C2", AR, "4.00"),
        (15, "C2", "4000", "4.00"),
        (16, "C1", AR, "2.00"),
        (16, "C1", "4000", "2.00"),
    ]


def test_control_totals_per_currency() -> None:
    batch = build_batch("B1", sample(), policy="detailed", channel="erp")
    usd = next(c for c in batch.control if c.currency == "USD")
    assert (usd.line_count, str(usd.debit_total), str(usd.credit_total)) == (8, "200.00", "200.00")
    expected = hashlib.sha256(b"e1\ne2\ne3\ne4").hexdigest()
    assert usd.hash_total == expected


def test_unbalanced_entry_is_rejected_by_build_batch() -> None:
    good = post(make_charge("10.00"), key="ok")
    bad = msgspec.structs.replace(
        good,
        entry_key="bad",
        lines=(
            good.lines[0],
            JournalLine(
                account="4000",
                debit=Decimal("0.00"),
                credit=Decimal("9.00"),
                currency="USD",
                dims=good.lines[1].dims,
            ),
        ),
    )
    for policy in ("detailed", "summary"):
        with pytest.raises(UnbalancedBatch) as info:
            build_batch("B", [good, bad], policy=policy, channel="erp")
        assert [(e.code, e.entry_key) for e in info.value.errors] == [("unbalanced", "bad")]


def test_duplicate_entry_is_refused() -> None:
    e = post(make_charge(), key="same")
    with pytest.raises(InvalidBatch) as info:
        build_batch("B", [e, e], policy="summary", channel="erp")
    assert not isinstance(info.value, UnbalancedBatch)
    assert info.value.errors[0].code == "duplicate_entry"


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(InvalidBatch):
        build_batch("B", sample(), policy="rolled-up", channel="erp")  # type: ignore[arg-type]


def test_empty_batch_is_empty() -> None:
    batch = build_batch("B0", [], policy="summary", channel="erp")
    assert batch.lines == () and batch.control == () and validate_batch(batch) == []
    assert batch_from_csv(batch_to_csv(batch)) == batch


def test_validate_batch_catches_tampering() -> None:
    batch = build_batch("B1", sample(), policy="detailed", channel="erp")
    first = batch.lines[0]
    tampered = msgspec.structs.replace(
        batch, lines=(msgspec.structs.replace(first, debit=first.debit + 1), *batch.lines[1:])
    )
    assert "unbalanced" in [e.code for e in validate_batch(tampered)]
    renumbered = msgspec.structs.replace(batch, lines=batch.lines[1:])
    assert "bad_line" in [e.code for e in validate_batch(renumbered)]
    summary = build_batch("B1", sample(), policy="summary", channel="erp")
    leaked = msgspec.structs.replace(
        summary,
        policy="summary",
        lines=tuple(
            msgspec.structs.replace(x, dims=msgspec.structs.replace(x.dims, account_token="tA"))
            for x in summary.lines
        ),
    )
    assert [e.message for e in validate_batch(leaked)] == ["summary line carries a token"]


def test_csv_layout_is_stable() -> None:
    text = batch_to_csv(build_batch("B1", sample()[:1], policy="detailed", channel="erp"))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "record",
        "batch_id",
        "channel",
        "policy",
        "line_no",
        "posted_on",
        "period",
        "account",
        "company",
        "cost_center",
        "service_line",
        "account_token",
        "currency",
        "debit",
        "credit",
        "line_count",
        "source_lines",
        "source_entries",
        "hash_total",
        "correlation_ids",
    ]
    assert [r[0] for r in rows[1:]] == ["batch", "line", "line", "control"]
    assert json.loads(dict(zip(rows[0], rows[1], strict=True))["source_entries"]) == ["e1"]
    line = dict(zip(rows[0], rows[2], strict=True))
    assert (
        line["posted_on"],
        line["account"],
        line["debit"],
        line["credit"],
        line["account_token"],
    ) == ("2024-03-15", AR, "100.00", "0.00", "tA")
    control = dict(zip(rows[0], rows[4], strict=True))
    assert (control["currency"], control["debit"], control["credit"], control["line_count"]) == (
        "USD",
        "100.00",
        "100.00",
        "2",
    )


def test_jsonl_layout_is_stable() -> None:
    text = batch_to_jsonl(build_batch("B1", sample()[:1], policy="summary", channel="erp"))
    records = [json.loads(r) for r in text.splitlines()]
    assert [r["record"] for r in records] == ["batch", "line", "line", "control"]
    assert list(records[1]) == [
        "record",
        "batch_id",
        "line_no",
        "posted_on",
        "period",
        "account",
        "dims",
        "currency",
        "debit",
        "credit",
        "source_entries",
        "source_lines",
    ]
    assert records[1]["debit"] == "100.00" and records[1]["dims"]["account_token"] == ""
    assert records[3]["debit_total"] == "100.00"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a,b\n1,2\n",
        "record,batch_id,channel,policy,line_no,posted_on,period,account,company,cost_center,"
        "service_line,account_token,currency,debit,credit,line_count,source_lines,source_entries,"
        "hash_total,correlation_ids\nline,B,c,summary,1,2024-01-01,2024-01,1200,C1,,,,USD,x,0,,1,"
        "[],,\n",
    ],
)
def test_malformed_csv_is_refused(text: str) -> None:
    with pytest.raises(InvalidBatch):
        batch_from_csv(text)


def test_csv_with_a_missing_line_is_refused() -> None:
    text = batch_to_csv(build_batch("B1", sample(), policy="detailed", channel="erp"))
    rows = text.splitlines()
    with pytest.raises(InvalidBatch, match="announces 10 lines"):
        batch_from_csv("\n".join(rows[:3] + rows[4:]) + "\n")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{}\n",
        '{"record":"line"}\n',
        "not json\n",
        '{"record":"batch","batch_id":"B","channel":"c",'
        '"policy":"p","line_count":0,"entry_keys":[],'
        '"correlation_ids":[]}\n',
    ],
)
def test_malformed_jsonl_is_refused(text: str) -> None:
    with pytest.raises(InvalidBatch):
        batch_from_jsonl(text)
