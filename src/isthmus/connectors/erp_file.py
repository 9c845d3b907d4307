"""ERP file export: journal batches dropped as CSV and JSON Lines files into a folder.

For ERPs without an API. Each file is written to a temporary name, fsynced, then renamed,
so the ERP's import job never sees half a file; delivering the same batch again rewrites
identical bytes, so a retried delivery is harmless.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from isthmus.flows.export import ErpUnavailable
from isthmus.store.ports import OutboxItem


class ErpFileSink:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def deliver(self, item: OutboxItem) -> None:
        target = self.folder / f"{item.batch_id}.{item.fmt}"
        tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(item.payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise ErpUnavailable(f"cannot write {target}: {exc.strerror}") from exc
