"""The `file` destination: a run of deliveries written as one file with control totals, in
a local (or mounted) folder (issue 18, "files with control totals").

Why: a finance peer that loads files (a lockbox, a collections agency, an ERP without an
API, a shared folder an interface engine watches) checks each file against its control
record before it loads it.

The file has the format the `sftp` destination uploads (connectors/dest_sftp.py): JSON
lines, one delivery per line (a JSON object body as is, compacted; any other body wrapped
as `{"body": "<text>"}`), then one control record `{"control": {"count": n, "amounts":
{"<currency>": "<sum>"}, "first": k1, "last": kn}}`: the number of records and, per
currency, the Decimal sum of the top-level `amount` fields. Its name comes from the run's
first and last idempotency keys, so a retry of a run rewrites the same file, never a
second one.

Written atomically (POSIX rename(2) over the target, after fsync of the file and then of
the folder): a reader sees the whole file or none, and a crash leaves at most a `.part`.
A full disk or an unreachable mount is `DestinationUnavailable`; a folder the hub may not
write is `DestinationRejected` (a person must fix the permissions), as for SFTP.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from isthmus.config.destinations import DestinationSettings
from isthmus.ports.destination import (
    Answer,
    DestinationRejected,
    DestinationUnavailable,
    Outgoing,
)

_REFUSED = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR}


def file_name(destination: str, items: Sequence[Outgoing]) -> str:
    """The run's file name, the same for every retry of the same run."""
    ident = f"{items[0].idempotency_key}\n{items[-1].idempotency_key}\n{len(items)}"
    digest = hashlib.sha256(ident.encode()).hexdigest()[:20]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in destination)
    return f"{safe}-{digest}.jsonl"


def _record(item: Outgoing) -> tuple[dict[str, Any], Decimal | None, str]:
    try:
        value = json.loads(item.body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict):
        return {"body": item.body.decode("utf-8", "replace")}, None, ""
    amount: Decimal | None = None
    raw = value.get("amount")
    if raw is not None and not isinstance(raw, bool):
        with contextlib.suppress(InvalidOperation):
            amount = Decimal(str(raw))
    return value, amount, str(value.get("currency") or "")


def control_file(items: Sequence[Outgoing]) -> bytes:
    """The file for a run: JSON lines plus the control record (count, amount sums)."""
    if not items:
        raise ValueError("a control file needs at least one delivery")
    lines: list[str] = []
    sums: dict[str, Decimal] = {}
    for item in items:
        record, amount, currency = _record(item)
        if amount is not None:
            sums[currency] = sums.get(currency, Decimal(0)) + amount
        lines.append(json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str))
    control = {
        "count": len(items),
        "amounts": {c: str(v) for c, v in sorted(sums.items())},
        "first": items[0].idempotency_key,
        "last": items[-1].idempotency_key,
    }
    lines.append(json.dumps({"control": control}, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode()


class FileDestination:
    """The `file` destination: each run of deliveries written into the folder as one JSON lines
    file with its control record."""

    def __init__(self, name: str, folder: Path, *, batch: int = 100) -> None:
        self.name, self.folder, self.batch = name, folder, max(1, batch)

    def send(self, items: Sequence[Outgoing]) -> Answer:
        target = self.folder / file_name(self.name, items)
        part = target.with_name(target.name + ".part")
        data = control_file(items)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(part, target)
            dir_fd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                part.unlink()
            why = f"{errno.errorcode.get(exc.errno or 0, 'OSError')}: {exc.strerror or exc}"
            if exc.errno in _REFUSED:
                raise DestinationRejected(Answer("refused", f"{why} ({self.folder})")) from exc
            raise DestinationUnavailable(f"cannot write {self.folder}: {why}") from exc
        return Answer("written", f"{target.name} ({len(items)} records)")

    def close(self) -> None:
        return None


def open_destination(s: DestinationSettings, nats_servers: str = "") -> FileDestination:
    """The adapter for `[destinations.<name>] kind = "file"` (`path`, `batch`)."""
    del nats_servers
    return FileDestination(s.name, Path(s.path), batch=s.batch)
