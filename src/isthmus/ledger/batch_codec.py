"""The outbox form of a journal batch: typed once, encoded once, decoded once.

A sealed batch is queued as ONE outbox row (`BATCH_FORMAT`, the row's `fmt`): the
`JournalBatch` itself, msgspec JSON (amounts as exact decimal strings, dates ISO 8601,
no PHI: the batch holds none, ledger/batch.py), stored once: the store keeps this encoding
as the batch's body and the row refers to it (`store.ports_journal.BATCH_BODY`), reading it
back as the row's payload. The dispatcher decodes the row once into a
`QueuedBatch` and each sink renders it as its ERP wants it: CSV and JSON Lines files
(connectors/erp_file.py), Tryton JSON-RPC (connectors/erp_tryton.py), REST
(connectors/erp_rest.py), after its allow-list left out what that destination may not
receive (connectors/erp_allowlist.py), on the typed value.

The format is versioned by name: a change to the encoding gets a new name, and the
decoder keeps reading every name it ever wrote. The version before this one queued each
file format as its own row (`csv`, `jsonl`, the texts of `batch_to_csv`/`batch_to_jsonl`):
such a row still drains, as the file it stands for, and its `jsonl` twin is the one an ERP
with an API posts (the `csv` row is the same batch again).
"""

from __future__ import annotations

import msgspec

from isthmus.ledger.batch import JournalBatch
from isthmus.ledger.batch_file import batch_from_csv, batch_from_jsonl
from isthmus.ledger.errors import InvalidBatch

BATCH_FORMAT = "batch.v1"  # one row per batch: msgspec JSON of the JournalBatch
FILE_FORMATS = ("csv", "jsonl")  # what a file drop writes for one batch, in this order
POSTING_FORMATS = frozenset({BATCH_FORMAT, "jsonl"})  # rows an ERP with an API posts

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(JournalBatch)


class QueuedBatch(msgspec.Struct, frozen=True, kw_only=True):
    """One outbox row, decoded: the batch, the files it stands for, whether it is posted.

    A `BATCH_FORMAT` row stands for every file and is posted; a row of the previous
    version stands for its one file, and only its `jsonl` row is posted."""

    batch: JournalBatch
    files: tuple[str, ...] = FILE_FORMATS
    post: bool = True


def encode(batch: JournalBatch) -> tuple[str, bytes]:
    """The outbox row of a batch: (fmt, payload)."""
    return BATCH_FORMAT, _encoder.encode(batch)


def decode(fmt: str, payload: bytes) -> QueuedBatch:
    """Read an outbox row back; raises InvalidBatch for an unknown format or a bad body."""
    if fmt == BATCH_FORMAT:
        try:
            return QueuedBatch(batch=_decoder.decode(payload))
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise InvalidBatch(f"{fmt} batch is malformed: {exc}") from exc
    read = {"csv": batch_from_csv, "jsonl": batch_from_jsonl}.get(fmt)
    if read is None:
        raise InvalidBatch(f"outbox format {fmt!r} is not a journal batch this version reads")
    try:
        text = payload.decode()
    except UnicodeDecodeError as exc:
        raise InvalidBatch(f"{fmt} batch is not UTF-8 text") from exc
    return QueuedBatch(batch=read(text), files=(fmt,), post=fmt in POSTING_FORMATS)


__all__ = ["BATCH_FORMAT", "FILE_FORMATS", "POSTING_FORMATS", "QueuedBatch", "decode", "encode"]
