"""ERP file export: journal batches dropped as CSV and JSON Lines files into a folder.

For ERPs without an API. Each file is written to a temporary name, fsynced, then renamed,
so the ERP's import job never sees half a file; delivering the same batch again rewrites
identical bytes, so a retried delivery is harmless. The folder is 0700 and the files 0600
whatever the umask (store.private_files): the ERP's import job runs as the hub's user, or
is given access by the operator (an ACL), never by a world-readable mode.
"""

from __future__ import annotations

from pathlib import Path

from isthmus.flows.export import ErpUnavailable
from isthmus.store.ports import OutboxItem
from isthmus.store.private_files import write_private


class ErpFileSink:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def deliver(self, item: OutboxItem) -> None:
        target = self.folder / f"{item.batch_id}.{item.fmt}"
        try:
            write_private(target, item.payload)
        except OSError as exc:
            raise ErpUnavailable(f"cannot write {target}: {exc.strerror}") from exc
