"""ERP file export: journal batches dropped as CSV and JSON Lines files into a folder.

For ERPs without an API. The sink renders the typed batch the dispatcher decoded
(`ledger.batch_file.batch_to_csv`, `batch_to_jsonl`: `<batch_id>.csv` then `<batch_id>.jsonl`;
an outbox row of the previous version stands for one of the two). Each file is written to
a temporary name, fsynced, then renamed, so the ERP's import job never sees half a file;
delivering the same batch again rewrites identical bytes, so a retried delivery is
harmless. The folder is 0700 and the files 0600 whatever the umask (store.private_files):
the ERP's import job runs as the hub's user, or is given access by the operator (an ACL),
never by a world-readable mode.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from isthmus.ledger.batch import JournalBatch
from isthmus.ledger.batch_codec import QueuedBatch
from isthmus.ledger.batch_file import batch_to_csv, batch_to_jsonl
from isthmus.ports.erp import ErpUnavailable
from isthmus.store.private_files import write_private

RENDER: dict[str, Callable[[JournalBatch], str]] = {"csv": batch_to_csv, "jsonl": batch_to_jsonl}


class ErpFileSink:
    """The ERP sink for file drops: each batch written as `<batch_id>.csv` and/or
    `<batch_id>.jsonl`, atomically, mode 0600."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def deliver(self, queued: QueuedBatch) -> None:
        for fmt in queued.files:
            target = self.folder / f"{queued.batch.batch_id}.{fmt}"
            try:
                write_private(target, RENDER[fmt](queued.batch).encode())
            except OSError as exc:
                raise ErpUnavailable(f"cannot write {target}: {exc.strerror}") from exc
