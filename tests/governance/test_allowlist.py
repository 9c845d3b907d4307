"""Per-destination field allow-lists: a field outside the allow-list universe is refused at
config load; what a destination does not allow leaves empty, in files and over RPC; the
amounts and control totals never change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from isthmus.app import erp_sink
from isthmus.config import ConfigError, load_settings
from isthmus.connectors.erp_allowlist import AllowListSink, guarded
from isthmus.connectors.erp_file import ErpFileSink
from isthmus.connectors.erp_ports import ErpBatchSink
from isthmus.governance import allowlist
from isthmus.ledger import batch_codec
from isthmus.ledger.batch import JournalBatch, build_batch, restrict
from isthmus.ledger.batch_codec import QueuedBatch
from isthmus.ledger.batch_file import batch_from_csv, batch_from_jsonl, batch_to_csv
from tests.governance.tryton_fake import RecordingTryton
from tests.ledger.builders import make_charge, post

LEAN = sorted(allowlist.REQUIRED | {"company"})


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[allowlist]\nfile = ["mrn"]\n', "field 'mrn' may not leave the hub"),
        ('[allowlist]\nfile = ["account", "patient_name"]\n', "'patient_name' may not leave"),
        ('[allowlist]\nsap = ["account"]\n', "unknown destination"),
        ('[allowlist]\ntryton = ["account", "debit", "credit"]\n', "must include currency"),
        ('[allowlist]\nrest = "account"\n', "list of field names"),
    ],
)
def test_bad_allowlists_are_refused_at_load(tmp_path: Path, table: str, message: str) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text(table)
    with pytest.raises(ConfigError, match=message):
        load_settings(conf, data_dir=tmp_path)


def _batch() -> JournalBatch:
    entries = [
        post(make_charge("120.00", txn=f"T{i}"), key=f"evt-{i}:charge", token=f"tok-{i}")
        for i in range(3)
    ]
    return build_batch("JB-mllp-1", entries, policy="detailed", channel="mllp")


def test_restrict_blanks_withheld_fields_and_keeps_the_money() -> None:
    batch = _batch()
    assert any(x.dims.account_token for x in batch.lines)
    assert "tok-0" in batch_to_csv(batch) and "CC10" in batch_to_csv(batch)
    lean = restrict(batch, allowlist.OPTIONAL - set(LEAN))
    assert lean.control == batch.control and len(lean.lines) == len(batch.lines)
    for a, b in zip(lean.lines, batch.lines, strict=True):
        assert (a.account, a.debit, a.credit, a.currency, a.posted_on) == (
            b.account,
            b.debit,
            b.credit,
            b.currency,
            b.posted_on,
        )
        assert a.dims.company == b.dims.company == "C1"
        assert a.dims.account_token == a.dims.cost_center == a.dims.service_line == ""
        assert a.source_entries == ()
    assert lean.entry_keys == () and lean.correlation_ids == ()
    assert restrict(batch, frozenset()) is batch


def _queued(batch: JournalBatch) -> QueuedBatch:
    """The batch as the dispatcher hands it over, read back from its outbox row."""
    return batch_codec.decode(*batch_codec.encode(batch))


def test_the_file_destination_gets_only_allowed_fields(tmp_path: Path) -> None:
    batch = _batch()
    sink = guarded(ErpFileSink(tmp_path), allowlist.OPTIONAL - set(LEAN))
    sink.deliver(_queued(batch))
    csv_text = (tmp_path / f"{batch.batch_id}.csv").read_text()
    jsonl_text = (tmp_path / f"{batch.batch_id}.jsonl").read_text()
    for text in (csv_text, jsonl_text):
        assert "tok-0" not in text and "CC10" not in text and "Cardiology" not in text
        assert "evt-0:charge" not in text
    for back in (batch_from_csv(csv_text), batch_from_jsonl(jsonl_text)):
        assert back.control == batch.control
        assert [x.debit for x in back.lines] == [x.debit for x in batch.lines]
    assert json.loads(jsonl_text.splitlines()[1])["dims"]["company"] == "C1"


def test_the_tryton_destination_gets_only_allowed_fields() -> None:
    batch = _batch()
    accounts = sorted({x.account for x in batch.lines})
    full, lean = RecordingTryton(accounts, ["CC10"]), RecordingTryton(accounts, ["CC10"])
    for fake, withheld in ((full, frozenset[str]()), (lean, allowlist.OPTIONAL - set(LEAN))):
        sink = guarded(ErpBatchSink(fake.erp()), withheld)
        sink.deliver(_queued(batch))
        assert fake.created == 1, fake.sent()
    assert "tok-0" in full.sent() and "Cardiology" in full.sent()  # the fake sees it all
    assert "tok-0" not in lean.sent() and "Cardiology" not in lean.sent()
    assert '"analytic_lines"' not in lean.sent()  # no cost center: no analytic lines


def test_the_allowlist_restricts_the_typed_batch_the_sink_gets() -> None:
    """No text is read back or rewritten: the inner sink gets the same QueuedBatch with its
    batch restricted, whatever outbox form it came from."""
    batch = _batch()
    got: list[QueuedBatch] = []

    class Inner:
        def deliver(self, queued: QueuedBatch) -> None:
            got.append(queued)

    withheld = allowlist.OPTIONAL - set(LEAN)
    old = batch_codec.decode("csv", batch_to_csv(batch).encode())
    for queued in (_queued(batch), old):
        guarded(Inner(), withheld).deliver(queued)
    assert got == [
        QueuedBatch(batch=restrict(batch, withheld)),
        QueuedBatch(batch=restrict(batch, withheld), files=("csv",), post=False),
    ]


def test_the_configured_sink_is_behind_the_allowlist(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text(f"[allowlist]\nfile = {json.dumps(LEAN)}\n")
    s = load_settings(conf, data_dir=tmp_path)
    sink = erp_sink(s, tmp_path / "exports")
    assert isinstance(sink, AllowListSink)
    assert sink.withheld == allowlist.OPTIONAL - set(LEAN)
    assert isinstance(erp_sink(load_settings(None, data_dir=tmp_path), tmp_path), ErpFileSink)
