"""flows.settlement on the worker rig: either side of a match may come first, a replayed
event posts nothing twice, a closed period holds the event for finance, and the posting
rules balance with refunds mirrored."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from isthmus.bus.memory import MemoryBus
from isthmus.config import load_settings
from isthmus.connectors.folder import DropFolder
from isthmus.demo.chart import demo_mappings
from isthmus.flows.file_intake import FileIntake
from isthmus.flows.processor import Processor
from isthmus.flows.relay import publications, relay_unpublished
from isthmus.flows.settlement_intake import csv_intake
from isthmus.ledger.errors import InvalidEntry
from isthmus.ledger.journal import JournalEntry, Posting
from isthmus.ledger.periods import FiscalCalendar
from isthmus.ledger.settlement import (
    SettlementAccounts,
    bank_match_entry,
    card_payment_entry,
    processor_deposit_entry,
)
from isthmus.store.sqlite import SqliteStore
from tests.flows.helpers import Rig, make_rig
from tests.flows.settlement.files import bank_csv, settlement_csv

P = Posting(
    entry_key="k",
    posted_on=date(2026, 11, 4),
    period="2026-11",
    channel="settlement",
    memo="m",
    correlation_id="c",
    causation_id="k",
)
ACC = SettlementAccounts()


def _sides(entry: JournalEntry | None) -> dict[str, Decimal]:
    assert entry is not None
    out: dict[str, Decimal] = {}
    for x in entry.lines:
        out[x.account] = out.get(x.account, Decimal(0)) + x.debit - x.credit
    return out


def test_posting_rules_balance_and_refunds_mirror() -> None:
    pay = card_payment_entry(
        gross=Decimal("100.00"),
        currency="USD",
        accounts=ACC,
        company="C100",
        account_token="tok",
        posting=P,
    )
    refund = card_payment_entry(
        gross=Decimal("-100.00"),
        currency="USD",
        accounts=ACC,
        company="C100",
        account_token="tok",
        posting=P,
    )
    assert _sides(pay) == {"1020": Decimal("100.00"), "1200": Decimal("-100.00")}
    assert _sides(refund) == {k: -v for k, v in _sides(pay).items()}
    assert pay is not None
    assert [x.dims.account_token for x in pay.lines if x.account == "1200"] == ["tok"]
    dep = processor_deposit_entry(
        gross=Decimal("100.00"),
        fee=Decimal("3.20"),
        net=Decimal("96.80"),
        currency="USD",
        accounts=ACC,
        company="C100",
        posting=P,
    )
    assert _sides(dep) == {
        "1050": Decimal("96.80"),
        "6100": Decimal("3.20"),
        "1020": Decimal("-100.00"),
    }
    debit = processor_deposit_entry(
        gross=Decimal("-75.00"),
        fee=Decimal("15.00"),
        net=Decimal("-90.00"),
        currency="USD",
        accounts=ACC,
        company="C100",
        posting=P,
    )
    assert _sides(debit) == {
        "1050": Decimal("-90.00"),
        "6100": Decimal("15.00"),
        "1020": Decimal("75.00"),
    }
    assert _sides(
        bank_match_entry(
            amount=Decimal("450.00"), currency="USD", accounts=ACC, company="C100", posting=P
        )
    ) == {"1050": Decimal("450.00"), "1010": Decimal("-450.00")}
    assert (
        card_payment_entry(
            gross=Decimal(0),
            currency="USD",
            accounts=ACC,
            company="C",
            account_token="t",
            posting=P,
        )
        is None
    )
    with pytest.raises(InvalidEntry):
        processor_deposit_entry(
            gross=Decimal("100.00"),
            fee=Decimal("3.00"),
            net=Decimal("96.80"),
            currency="USD",
            accounts=ACC,
            company="C100",
            posting=P,
        )


def _take(rig: Rig, raw: bytes, kind: str, now: float = 1_800_000_000.0) -> None:
    intake = csv_intake(raw, kind=kind, peer="test", now=now, tenant="default")
    assert intake.inbound.status == "accepted", intake.findings
    rig.store.accept([intake.inbound])
    relay_unpublished(rig.store, rig.bus)
    rig.drain()


def _bank_balance(rig: Rig) -> Decimal:
    return sum(
        (x.debit - x.credit for x in rig.store.journal_lines() if x.account == "1050"), Decimal(0)
    )


@pytest.mark.parametrize("bank_first", [True, False])
def test_processor_deposit_and_bank_credit_match_in_either_order(
    tmp_path: Path, bank_first: bool
) -> None:
    rig = make_rig(tmp_path)
    try:
        settle = settlement_csv([("D7", "T1", "payment", "A1", "100.00", "3.20")])
        bank = bank_csv([("2026-11-05", "96.80", "d7", "card")])  # reference case differs
        order = [(bank, "bank"), (settle, "settlement")]
        for raw, kind in order if bank_first else order[::-1]:
            _take(rig, raw, kind)
        records = {r.side: r for r in rig.store.deposit_records()}
        assert records["processor"].matched_with == records["bank"].event_id
        assert records["bank"].matched_with == records["processor"].event_id
        assert _bank_balance(rig) == Decimal("96.80")  # the bank side posts once
        assert rig.balanced()
    finally:
        rig.store.close()


def test_replayed_events_post_nothing_twice(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    try:
        settle = settlement_csv([("D8", "T1", "payment", "A1", "100.00", "3.20")])
        _take(rig, settle, "settlement")
        keys = rig.entry_keys()
        intake = csv_intake(settle, kind="settlement", peer="t", now=0.0, tenant="default")
        stored = rig.store.message_by_control_id("settlement", intake.inbound.control_id)
        assert stored is not None
        rig.bus.replay(publications(stored.events))
        rig.drain()
        assert rig.entry_keys() == keys and len(rig.store.deposit_records()) == 1
    finally:
        rig.store.close()


def test_a_closed_period_holds_the_deposit_for_finance(tmp_path: Path) -> None:
    cal = FiscalCalendar(closed=frozenset({"2026-11"}), policy="reject")
    proc = Processor(secret="s", mappings=demo_mappings(), ar_account="1200", calendar=cal)
    rig = make_rig(tmp_path, processor=proc)
    try:
        _take(rig, settlement_csv([("D9", "T1", "payment", "A1", "10.00", "0.50")]), "settlement")
        kinds = sorted(w.kind for w in rig.store.work_items("open"))
        assert kinds == ["closed_period", "unapplied_cash"]
        assert rig.entry_keys() == [] and rig.store.deposit_records() == []
    finally:
        rig.store.close()


def test_drop_folder_refuses_a_bad_settlement_file_with_row_and_column(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path / "data", env={})
    store, bus = SqliteStore(tmp_path / "store.db"), MemoryBus(partitions=2)
    folder = DropFolder(tmp_path / "drop", FileIntake(store, bus, settings), settings, quiet_s=0.0)
    try:
        (folder.inbound / "bad.csv").write_bytes(
            settlement_csv([("D1", "T1", "payment", "A1", "10.00", "0.50")], net={"T1": "9.00"})
        )
        (folder.inbound / "bank.csv").write_bytes(bank_csv([("2026-11-05", "9.50", "D1", "card")]))
        folder.run_once()
        reports = folder.run_once()
        assert sorted((r["file"], r["refused"]) for r in reports) == [
            ("bad.csv", 1),
            ("bank.csv", 0),
        ]
        reason = (folder.failed / "bad.csv.error.txt").read_text()
        assert "row 2, column net: gross 10.00 - fee 0.50 is 9.50, not net 9.00" in reason
        assert (folder.done / "bank.csv").exists()
        assert bus.pending() == 1  # the bank credit only; nothing of the bad file
    finally:
        store.close()
