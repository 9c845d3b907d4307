"""The outbox form of a batch (ledger/batch_codec.py): one row that reads back as the batch
it was; the csv and jsonl rows of the previous version still read; anything else is
refused as data (InvalidBatch), never as a crash of the dispatcher."""

from __future__ import annotations

import csv

import msgspec
import pytest

from isthmus.ledger import batch_codec
from isthmus.ledger.batch import JournalBatch, build_batch
from isthmus.ledger.batch_codec import BATCH_FORMAT, FILE_FORMATS, QueuedBatch
from isthmus.ledger.batch_file import batch_from_csv, batch_to_csv, batch_to_jsonl
from isthmus.ledger.errors import InvalidBatch
from tests.ledger.builders import make_charge, post


def sample(n: int = 3, policy: str = "detailed") -> JournalBatch:
    entries = [
        post(
            make_charge(f"{10 + i % 50}.25", txn=f"T{i}"),
            key=f"evt-{i:06d}:charge",
            token=f"tok-{i % 7}",
        )
        for i in range(n)
    ]
    return build_batch(
        "JB-mllp-1",
        entries,
        policy=policy,  # type: ignore[arg-type]
        channel="mllp",
    )


@pytest.mark.parametrize("policy", ["detailed", "summary"])
def test_a_batch_row_reads_back_as_the_batch_it_was(policy: str) -> None:
    batch = sample(policy=policy)
    fmt, payload = batch_codec.encode(batch)
    assert fmt == BATCH_FORMAT == "batch.v1"
    assert batch_codec.decode(fmt, payload) == QueuedBatch(
        batch=batch, files=FILE_FORMATS, post=True
    )
    assert msgspec.json.decode(payload)["lines"][0]["debit"] == str(batch.lines[0].debit)


def test_rows_of_the_previous_version_read_as_the_file_they_stand_for() -> None:
    batch = sample()
    assert batch_codec.decode("csv", batch_to_csv(batch).encode()) == QueuedBatch(
        batch=batch, files=("csv",), post=False
    )
    assert batch_codec.decode("jsonl", batch_to_jsonl(batch).encode()) == QueuedBatch(
        batch=batch, files=("jsonl",), post=True
    )


@pytest.mark.parametrize(
    ("fmt", "payload", "message"),
    [
        (BATCH_FORMAT, b'{"batch_id": 1}', "batch.v1 batch is malformed"),
        (BATCH_FORMAT, b"not json", "batch.v1 batch is malformed"),
        ("batch.v9", b"{}", "'batch.v9' is not a journal batch"),
        ("xml", b"<batch/>", "'xml' is not a journal batch"),
        ("csv", b"\xff\xfe", "not UTF-8"),
        ("csv", b"a,b\n1,2\n", "header does not match"),
        ("jsonl", b"{}\n", "JSONL batch is malformed"),
    ],
)
def test_what_is_no_batch_is_refused_as_data(fmt: str, payload: bytes, message: str) -> None:
    with pytest.raises(InvalidBatch, match=message):
        batch_codec.decode(fmt, payload)


def test_a_big_old_csv_row_still_reads_and_the_csv_limit_is_kept() -> None:
    """The batch record of a summary over many entries holds more than the csv module's
    128 KiB field limit (the previous version's allow-list could not read it back)."""
    batch = sample(6000, "summary")
    text = batch_to_csv(batch)
    assert len(text.splitlines()[1]) > csv.field_size_limit()  # the batch record
    limit = csv.field_size_limit()
    assert batch_from_csv(text) == batch
    assert batch_codec.decode("csv", text.encode()).batch == batch
    assert csv.field_size_limit() == limit
