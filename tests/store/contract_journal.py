"""The journal aggregate's contract: entries posted once and read back exactly, balances,
and batches sealing their entries all or nothing (ports_journal)."""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal

import msgspec

from isthmus.ledger.batch import JournalBatch
from isthmus.ledger.journal import all_lines, reverse
from isthmus.store.ports import Store
from isthmus.store.ports_journal import BATCH_BODY
from tests.store.builders import (
    AR,
    FILES,
    REVENUE,
    detailed,
    entry,
    post,
)


class JournalContract:
    """Mixed into StoreContract (contract.py), which gives the `store` fixture."""

    # journal ---------------------------------------------------------------------------------

    def test_insert_entry_is_idempotent_and_never_duplicates_lines(self, store: Store) -> None:
        assert post(store, entry("E1")) == [True]
        assert post(store, entry("E1"), entry("E1", amount="999.00")) == [False, False]
        [stored] = store.entries()
        assert stored == entry("E1")  # the first posting stands
        assert len(list(store.journal_lines())) == 2
        assert store.counts()["journal_lines"] == 2
        assert store.counts()["journal_entries"] == 1

    def test_entries_round_trip_exactly(self, store: Store) -> None:
        usd = entry("E1", amount="125.50", corr="c1")
        jpy = entry("E2", amount="1000", currency="JPY", company="C2", token="PA-2", corr="c2")
        kwd = entry(
            "E3",
            amount="1.005",
            currency="KWD",
            kind="CD",
            corr="c3",
            posted_on=date(2024, 4, 1),
            moved_from="2024-03",
        )
        rev = reverse(
            usd,
            entry_key="E1/rev",
            posted_on=date(2024, 4, 2),
            period="2024-04",
            causation_id="ev-fix",
        )
        post(store, usd, jpy, kwd, rev)
        got = store.entries()
        assert got == [usd, jpy, kwd, rev]
        assert (got[2].moved_from, got[3].reverses, got[0].reverses, got[0].moved_from) == (
            "2024-03",
            "E1",
            None,
            None,
        )
        for want, have in zip([usd, jpy, kwd, rev], got, strict=True):
            for w, h in zip(want.lines, have.lines, strict=True):
                assert type(h.debit) is Decimal and type(h.credit) is Decimal
                # exact text, scale included: 125.50 stays 125.50, 0.000 stays 0.000
                assert (str(h.debit), str(h.credit)) == (str(w.debit), str(w.credit))
                assert h.dims == w.dims and h.account == w.account
        assert str(got[0].lines[0].debit) == "125.50"
        assert str(got[2].lines[0].credit) == "0.000"

    def test_entries_by_correlation_id_in_posting_order(self, store: Store) -> None:
        post(
            store,
            entry("E1", corr="a"),
            entry("E2", corr="b"),
            entry("E3", corr="a"),
            entry("E4", corr="a"),
        )
        assert [e.entry_key for e in store.entries(correlation_id="a")] == ["E1", "E3", "E4"]
        assert [e.entry_key for e in store.entries(correlation_id="a", limit=2)] == ["E1", "E3"]
        assert store.entries(correlation_id="zzz") == []

    def test_entries_limit_keeps_posting_order(self, store: Store) -> None:
        post(store, entry("E3"), entry("E1"), entry("E2"))
        assert [e.entry_key for e in store.entries(limit=2)] == ["E3", "E1"]

    def test_journal_lines_yields_every_line_of_every_entry(self, store: Store) -> None:
        es = [
            entry("E1"),
            entry("E2", amount="7.25", currency="EUR", token="PA-9"),
            entry("E3", kind="CD", amount="3.00"),
        ]
        post(store, *es)
        assert Counter(store.journal_lines()) == Counter(all_lines(es))

    def test_ar_balances_per_company_and_currency_debit_positive(self, store: Store) -> None:
        post(
            store,
            entry("E1", amount="100.00"),
            entry("E2", amount="30.25", kind="CD"),
            entry("E3", amount="50.00", currency="EUR"),
            entry("E4", amount="20.00", company="C2"),
            entry("E5", amount="5.00", company="C3", kind="CD"),  # a credit balance
            entry("E6", amount="999.00", token="PA-other"),
        )
        with store.transaction() as tx:
            assert tx.ar_balances(AR, "PA-1") == {
                ("C1", "USD"): Decimal("69.75"),
                ("C1", "EUR"): Decimal("50.00"),
                ("C2", "USD"): Decimal("20.00"),
                ("C3", "USD"): Decimal("-5.00"),
            }
            assert tx.ar_balances(AR, "PA-other") == {("C1", "USD"): Decimal("999.00")}
            assert tx.ar_balances(REVENUE, "PA-1") == {}  # revenue lines carry no token
            assert tx.ar_balances(AR, "PA-nobody") == {}
            tx.insert_entry(entry("E7", amount="0.25"))  # sees the open transaction's lines
            assert tx.ar_balances(AR, "PA-1")[("C1", "USD")] == Decimal("70.00")

    # batches ---------------------------------------------------------------------------------

    def test_unbatched_entries_per_channel(self, store: Store) -> None:
        post(
            store,
            entry("E1", channel="dft"),
            entry("E2", channel="bar"),
            entry("E3", channel="dft"),
            entry("E4", channel="dft"),
        )
        assert store.unbatched_channels() == ["bar", "dft"]
        assert [e.entry_key for e in store.entries(unbatched_channel="dft")] == ["E1", "E3", "E4"]
        assert [e.entry_key for e in store.entries(unbatched_channel="dft", limit=2)] == [
            "E1",
            "E3",
        ]
        assert store.entries(unbatched_channel="dft")[0] == entry("E1", channel="dft")
        assert store.entries(unbatched_channel="x12") == []

    def test_record_batch_seals_its_entries(self, store: Store) -> None:
        e1, e2, e3 = entry("E1"), entry("E2"), entry("E3", channel="bar")
        post(store, e1, e2, e3)
        batch = detailed("B1", [e1, e2])
        assert store.record_batch(batch, FILES, now=500.0) is True
        assert store.entries(unbatched_channel="dft") == []
        assert store.unbatched_channels() == ["bar"]
        assert store.entry_batches(["E1", "E2", "E3", "nope"]) == {"E1": "B1", "E2": "B1"}
        assert store.batches() == [("B1", "dft", 4, 500.0)]
        body = store.batch_body("B1")
        assert body is not None
        assert msgspec.json.decode(body, type=JournalBatch) == batch
        assert store.batch_body("B2") is None
        assert len(store.entries()) == 3  # sealed entries stay in the journal

    def test_record_batch_is_idempotent_on_batch_id(self, store: Store) -> None:
        e1, e2 = entry("E1"), entry("E2")
        post(store, e1, e2)
        first = detailed("B1", [e1])
        assert store.record_batch(first, FILES, now=500.0) is True
        assert store.record_batch(detailed("B1", [e2]), [("erp", "xml", b"x")], now=600.0) is False
        assert store.batches() == [("B1", "dft", 2, 500.0)]
        body = store.batch_body("B1")
        assert body is not None and msgspec.json.decode(body, type=JournalBatch) == first
        assert [e.entry_key for e in store.entries(unbatched_channel="dft")] == ["E2"]
        assert [(o.fmt, o.payload) for o in store.outbox_items()] == [
            ("csv", b"csv body"),
            ("jsonl", b"jsonl body"),
        ]
        assert store.counts()["batches"] == 1

    def test_a_batch_holding_an_already_sealed_entry_is_refused_whole(self, store: Store) -> None:
        """Two exporters racing must never send an entry to the ERP twice."""
        e1, e2 = entry("E1"), entry("E2")
        post(store, e1, e2)
        store.record_batch(detailed("B1", [e1]), [], now=1.0)
        assert store.record_batch(detailed("B2", [e1, e2]), FILES, now=2.0) is False
        assert store.entry_batches(["E1", "E2"]) == {"E1": "B1"}
        assert store.batches() == [("B1", "dft", 2, 1.0)]
        assert store.outbox_items() == []
        assert store.batch_body("B2") is None

    def test_record_batch_queues_its_outbox_rows(self, store: Store) -> None:
        e1 = entry("E1")
        post(store, e1)
        files = [
            *FILES,
            ("erp", "csv", b"same destination and format: ignored"),
            ("archive", "csv", b"archive body"),
        ]
        store.record_batch(detailed("B1", [e1]), files, now=500.0)
        items = store.outbox_items()
        assert [
            (
                o.destination,
                o.batch_id,
                o.fmt,
                o.payload,
                o.status,
                o.attempts,
                o.visible_at,
                o.last_error,
            )
            for o in items
        ] == [
            ("erp", "B1", "csv", b"csv body", "pending", 0, 0.0, ""),
            ("erp", "B1", "jsonl", b"jsonl body", "pending", 0, 0.0, ""),
            ("archive", "B1", "csv", b"archive body", "pending", 0, 0.0, ""),
        ]
        assert [o.id for o in items] == sorted(o.id for o in items)
        assert store.counts()["outbox_pending"] == 3

    def test_a_batch_body_row_holds_no_copy_and_reads_back_the_body(self, store: Store) -> None:
        e1 = entry("E1")
        post(store, e1)
        batch = detailed("B1", [e1])
        store.record_batch(batch, [("erp", "batch.v1", BATCH_BODY), *FILES[:1]], now=5.0)
        body = store.batch_body("B1")
        assert body is not None and msgspec.json.decode(body, type=JournalBatch) == batch
        assert [(o.fmt, o.payload) for o in store.outbox_items()] == [
            ("batch.v1", body),
            ("csv", b"csv body"),
        ]
        assert [(o.fmt, o.payload) for o in store.outbox_due("erp", 5.0, 10)] == [
            ("batch.v1", body),
            ("csv", b"csv body"),
        ]
        assert [o.payload for o in store.outbox_items("pending")] == [body, b"csv body"]
