"""Watched drop folder: the SFTP drop pattern for X12 and HL7 batch files.

A sender (or its SFTP server) writes files into `<root>/inbound/`. Each pass takes the files
whose size has not changed since the previous pass (still being written otherwise), moves
each atomically (rename, same file system) into `<root>/processing/`, takes it through the
inbox (`file_intake.take_file`: idempotent on control numbers and content hash, so a file
dropped twice changes nothing), then moves it to `<root>/done/` or, when anything in it
was refused or unreadable, to `<root>/failed/` with a `<name>.error.txt` beside it. Files
left in `processing/` by a crash are taken again at start: taking is idempotent.
Dot-files and `*.part`/`*.tmp` files are ignored (in-flight uploads).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from isthmus.bus.ports import Bus
from isthmus.config import Settings
from isthmus.connectors.file_intake import take_file
from isthmus.flows.inbox import relay_unpublished
from isthmus.store.ports import Store

log = logging.getLogger(__name__)
_SKIP = (".part", ".tmp", ".filepart")


class DropFolder:
    def __init__(self, root: Path, store: Store, bus: Bus, settings: Settings) -> None:
        self.root, self._store, self._bus, self._settings = root, store, bus, settings
        self.inbound, self.processing = root / "inbound", root / "processing"
        self.done, self.failed = root / "done", root / "failed"
        for d in (self.inbound, self.processing, self.done, self.failed):
            d.mkdir(parents=True, exist_ok=True)
        self._sizes: dict[str, int] = {}
        self.taken = 0

    def _ready(self) -> list[Path]:
        """Files whose size is the same as at the previous pass."""
        seen: dict[str, int] = {}
        ready = []
        for p in sorted(self.inbound.iterdir()):
            if not p.is_file() or p.name.startswith(".") or p.name.endswith(_SKIP):
                continue
            size = p.stat().st_size
            seen[p.name] = size
            if self._sizes.get(p.name) == size:
                ready.append(p)
        self._sizes = seen
        return ready

    def run_once(self, now: float | None = None) -> list[dict[str, Any]]:
        """One pass: crash leftovers in processing/ first, then settled inbound files."""
        reports: list[dict[str, Any]] = []
        leftovers = sorted(p for p in self.processing.iterdir() if p.is_file())
        moved = []
        for p in self._ready():
            target = self.processing / p.name
            try:
                os.replace(p, target)  # atomic pickup: the sender never sees it half-taken
            except FileNotFoundError:
                continue  # another listener on the same folder took it first
            moved.append(target)
        for path in leftovers + moved:
            reports.append(self._take(path, time.time() if now is None else now))
        if reports:
            relay_unpublished(self._store, self._bus)
        return reports

    def _take(self, path: Path, now: float) -> dict[str, Any]:
        try:
            rows = take_file(self._store, self._settings, path, path.name, now)
        except Exception as exc:  # noqa: BLE001 - the file goes to failed/ with the reason
            rows = [{"file": path.name, "status": "error", "error": f"{type(exc).__name__}: "
                     f"{exc}"}]
        bad = [r for r in rows if r.get("status") != "accepted"]
        dest = (self.failed if bad else self.done) / path.name
        if dest.exists():
            dest = dest.with_name(f"{dest.stem}-{int(now)}{dest.suffix}")
        os.replace(path, dest)
        if bad:
            dest.with_name(dest.name + ".error.txt").write_text(
                json.dumps(bad, indent=2, default=str))
            log.warning("drop folder: %s refused (%d item(s))", path.name, len(bad))
        self.taken += 1
        return {"file": path.name, "items": len(rows), "refused": len(bad),
                "moved_to": str(dest)}
