"""The ERP batch files: CSV and JSON Lines, written for a file drop and read back.

A `JournalBatch` (`ledger.batch`) rendered as the file sink writes it, one file per format:
a `batch` record first, then one `line` record per batch line, then one `control` record per
currency with its totals (the columns in `CSV_COLUMNS`; amounts as exact Decimal strings,
lists as JSON arrays). The readers (`batch_from_csv`, `batch_from_jsonl`) read the files
back, and the outbox rows the previous version queued in these formats (`batch_codec`);
a malformed file raises `InvalidBatch`.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal

import msgspec

from isthmus.ledger.batch import BatchLine, ControlTotal, JournalBatch
from isthmus.ledger.errors import InvalidBatch
from isthmus.ledger.journal import Dimensions

CSV_COLUMNS = (
    "record", "batch_id", "channel", "policy", "line_no", "posted_on", "period", "account",
    "company", "cost_center", "service_line", "account_token", "currency", "debit", "credit",
    "line_count", "source_lines", "source_entries", "hash_total", "correlation_ids",
)  # fmt: skip


def batch_to_csv(batch: JournalBatch) -> str:
    """CSV with a header; a `batch` record first, then `line` records, then one `control`
    record per currency (debit/credit columns hold the totals). Lists are JSON arrays.
    Rows are written in `CSV_COLUMNS` order (a plain csv.writer: the export loop renders
    thousands of lines)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    bid, channel, policy = batch.batch_id, batch.channel, batch.policy
    writer.writerow(
        (
            "batch",
            bid,
            channel,
            policy,
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            len(batch.lines),
            "",
            json.dumps(list(batch.entry_keys)),
            "",
            json.dumps(list(batch.correlation_ids)),
        )
    )
    writer.writerows(
        (
            "line",
            bid,
            channel,
            policy,
            x.line_no,
            x.posted_on.isoformat(),
            x.period,
            x.account,
            x.dims.company,
            x.dims.cost_center,
            x.dims.service_line,
            x.dims.account_token,
            x.currency,
            str(x.debit),
            str(x.credit),
            "",
            x.source_lines,
            json.dumps(list(x.source_entries)),
            "",
            "",
        )
        for x in batch.lines
    )
    writer.writerows(
        (
            "control",
            bid,
            channel,
            policy,
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            c.currency,
            str(c.debit_total),
            str(c.credit_total),
            c.line_count,
            "",
            "",
            c.hash_total,
            "",
        )
        for c in batch.control
    )
    return buf.getvalue()


def batch_from_csv(text: str) -> JournalBatch:
    """Read back a file written by `batch_to_csv`; raises InvalidBatch if malformed.

    A batch of many entries has fields longer than the csv module's field limit (128 KiB:
    the entry keys), so the limit is raised to the text's length while it is read."""
    limit = csv.field_size_limit()
    try:
        csv.field_size_limit(max(limit, len(text)))
        reader = csv.DictReader(io.StringIO(text))
        if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
            raise InvalidBatch("CSV header does not match the batch columns")
        rows = list(reader)
    except csv.Error as exc:
        raise InvalidBatch(f"CSV batch is malformed: {exc}") from exc
    finally:
        csv.field_size_limit(limit)
    try:
        head, body = rows[0], rows[1:]
        lines = tuple(
            BatchLine(
                line_no=int(r["line_no"]),
                posted_on=date.fromisoformat(r["posted_on"]),
                period=r["period"],
                account=r["account"],
                dims=Dimensions(
                    company=r["company"],
                    cost_center=r["cost_center"],
                    service_line=r["service_line"],
                    account_token=r["account_token"],
                ),
                currency=r["currency"],
                debit=Decimal(r["debit"]),
                credit=Decimal(r["credit"]),
                source_entries=tuple(json.loads(r["source_entries"])),
                source_lines=int(r["source_lines"]),
            )
            for r in body
            if r["record"] == "line"
        )
        control = tuple(
            ControlTotal(
                currency=r["currency"],
                line_count=int(r["line_count"]),
                debit_total=Decimal(r["debit"]),
                credit_total=Decimal(r["credit"]),
                hash_total=r["hash_total"],
            )
            for r in body
            if r["record"] == "control"
        )
        return _assemble(
            record=head["record"],
            batch_id=head["batch_id"],
            channel=head["channel"],
            policy=head["policy"],
            lines=lines,
            control=control,
            entry_keys=json.loads(head["source_entries"]),
            correlation_ids=json.loads(head["correlation_ids"]),
            line_count=int(head["line_count"]),
        )
    except (KeyError, IndexError, ValueError, ArithmeticError, TypeError) as exc:
        raise InvalidBatch(f"CSV batch is malformed: {exc}") from exc


def batch_to_jsonl(batch: JournalBatch) -> str:
    """JSON Lines: a `batch` record, one `line` record per line, one `control` per currency.
    Amounts are strings (exact Decimals); key order follows the struct field order: each
    record is the struct's own JSON behind its `record` and `batch_id` keys."""
    encode = _json.encode
    head = encode(
        {
            "record": "batch",
            "batch_id": batch.batch_id,
            "channel": batch.channel,
            "policy": batch.policy,
            "line_count": len(batch.lines),
            "entry_keys": batch.entry_keys,
            "correlation_ids": batch.correlation_ids,
        }
    )
    bid = encode(batch.batch_id)
    line, control = (
        b'{"record":"line","batch_id":' + bid + b",",
        b'{"record":"control","batch_id":' + bid + b",",
    )
    out = [head, b"\n"]
    for x in batch.lines:
        out += (line, encode(x)[1:], b"\n")
    for c in batch.control:
        out += (control, encode(c)[1:], b"\n")
    return b"".join(out).decode()


_json = msgspec.json.Encoder()


def batch_from_jsonl(text: str) -> JournalBatch:
    """Read back a file written by `batch_to_jsonl`; raises InvalidBatch if malformed."""
    try:
        records = [msgspec.json.decode(row) for row in text.splitlines() if row.strip()]
        head, body = records[0], records[1:]
        strip = ("record", "batch_id")
        lines = tuple(
            msgspec.convert({k: v for k, v in r.items() if k not in strip}, BatchLine)
            for r in body
            if r["record"] == "line"
        )
        control = tuple(
            msgspec.convert({k: v for k, v in r.items() if k not in strip}, ControlTotal)
            for r in body
            if r["record"] == "control"
        )
        return _assemble(
            record=head["record"],
            batch_id=head["batch_id"],
            channel=head["channel"],
            policy=head["policy"],
            lines=lines,
            control=control,
            entry_keys=head["entry_keys"],
            correlation_ids=head["correlation_ids"],
            line_count=head["line_count"],
        )
    except (
        KeyError,
        IndexError,
        TypeError,
        AttributeError,
        msgspec.ValidationError,
        msgspec.DecodeError,
    ) as exc:
        raise InvalidBatch(f"JSONL batch is malformed: {exc}") from exc


def _assemble(
    *,
    record: str,
    batch_id: str,
    channel: str,
    policy: str,
    lines: tuple[BatchLine, ...],
    control: tuple[ControlTotal, ...],
    entry_keys: list[str],
    correlation_ids: list[str],
    line_count: int,
) -> JournalBatch:
    if record != "batch" or policy not in ("detailed", "summary"):
        raise InvalidBatch("the first record must be the batch record")
    if line_count != len(lines):
        raise InvalidBatch(f"batch record announces {line_count} lines, file has {len(lines)}")
    return JournalBatch(
        batch_id=batch_id,
        channel=channel,
        policy="detailed" if policy == "detailed" else "summary",
        lines=lines,
        control=control,
        entry_keys=tuple(entry_keys),
        correlation_ids=tuple(correlation_ids),
    )
