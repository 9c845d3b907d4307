"""Watched drop folder: the SFTP drop pattern for X12, HL7 v2, FHIR and CSV files.

A sender (or its SFTP server) writes files into `<root>/inbound/`. A file is taken only once
it is complete (`connectors.settled`): renamed into place from an in-flight name, or
unchanged over the quiet period `[reliability] drop_quiet_period_s`, and in both cases not
open for writing. Only then is it moved atomically (rename, same file system) into
`<root>/processing/`, checked to be the same file at the same size, and handed to the intake
through the `Intake` port (`flows.file_intake.FileIntake`: idempotent on control numbers
and content hash, so a file dropped twice changes nothing). It then goes to `<root>/done/`
or, when anything in it was refused or unreadable, to `<root>/failed/` with a
`<name>.error.txt` (JSON, mode 0600) beside it; a file that changed while it was being read
goes to `failed/` saying so. Files left in `processing/` by a crash are taken again at start:
taking is idempotent.

Never taken, never moved: in-flight names (dot files, `*.part`, `*.filepart`, `*.tmp`,
`*~`) and sub-folders. Refused into `failed/` with the reason, unread: symbolic links (the
link itself is moved; its target is never opened nor resolved), FIFOs, sockets, devices,
and settled files that have other hard links (another name, maybe outside the folder, for
the same content). Names are the bytes they are (`os.fsdecode`, surrogateescape, kept so
from listing to rename): a name that is not UTF-8 is moved under its own bytes and shown in
reports, logs and the inbox with those bytes escaped (`caf\\xe9.835`); a name too long to
carry `.error.txt` within NAME_MAX (255 bytes) is shortened in `failed/` and `done/`,
keeping a hash of the whole name.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Protocol

from isthmus.config.settings import Settings
from isthmus.connectors.settled import (
    PROC,
    Inode,
    Seen,
    in_flight,
    inode,
    observe,
    open_for_writing,
    renamed_into_place,
    same_content,
    stable,
)

log = logging.getLogger(__name__)
NAME_MAX: Final = 255  # bytes in one file name (Linux, macOS)
ERROR_SUFFIX: Final = ".error.txt"
_RESERVE: Final = len(ERROR_SUFFIX) + 24  # the error suffix and a collision tag
_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)

Stats = dict[str, os.stat_result]


def shown(name: str) -> str:
    """A file name as reports, logs and the inbox show it: UTF-8, printable; bytes that are
    not UTF-8 and control characters escaped."""
    text = os.fsencode(name).decode("utf-8", "backslashreplace")
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


def leaves(name: str) -> bool:
    """A name that would not stay one entry of the folder it is joined to."""
    return (
        name in ("", ".", "..")
        or "/" in name
        or "\0" in name
        or (os.altsep is not None and os.altsep in name)
    )


def fitted(name: str, reserve: int = _RESERVE) -> str:
    """`name`, shortened when it and `reserve` more bytes would exceed NAME_MAX: a prefix,
    a hash of the whole name, and its extension when short."""
    raw = os.fsencode(name)
    if len(raw) + reserve <= NAME_MAX:
        return name
    tag = b"~" + hashlib.sha256(raw).hexdigest()[:12].encode()
    stem, dot, ext = raw.rpartition(b".")
    suffix = b"." + ext if dot and stem and len(ext) <= 8 else b""
    return os.fsdecode(raw[: NAME_MAX - reserve - len(tag) - len(suffix)] + tag + suffix)


def refusal(st: os.stat_result) -> str | None:
    """Why an entry of the folder is refused without being read, or None."""
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        return (
            "a symbolic link: refused without following it (its target was neither "
            "read nor resolved); drop the file itself"
        )
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    kind = (
        "a FIFO"
        if stat.S_ISFIFO(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "special"
    )
    return f"not a regular file ({kind}): only files are taken"


def _write_new(path: Path, body: bytes) -> None:
    """Create `path` (never through a link, never over an existing entry), mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(body)


class Intake(Protocol):
    """The port the folder hands complete files to (`flows.file_intake.FileIntake`): it
    decodes, gates and stores them; the folder itself never writes to the store."""

    def take(self, path: Path, name: str, now: float) -> list[dict[str, Any]]:
        """Take one file; one report row per message or interchange in it."""

    def relay(self) -> int:
        """Send what was stored on to the bus; how many messages."""


class DropFolder:
    """A watched drop folder (inbound, processing, done, failed): each settled file moved to
    processing, handed to the intake, then to done or failed."""

    def __init__(
        self,
        root: Path,
        intake: Intake,
        settings: Settings,
        *,
        quiet_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        proc: Path = PROC,
    ) -> None:
        self.root, self._intake, self._settings = root, intake, settings
        self.inbound, self.processing = root / "inbound", root / "processing"
        self.done, self.failed = root / "done", root / "failed"
        for d in (self.inbound, self.processing, self.done, self.failed):
            d.mkdir(parents=True, exist_ok=True)
        self.quiet_s = settings.reliability.drop_quiet_period_s if quiet_s is None else quiet_s
        self._clock, self._proc = clock, proc
        self._seen: dict[str, Seen] = {}  # inbound names, as at the previous pass
        self._parked: dict[str, Seen] = {}  # processing/ names that we did not just move
        self._in_flight: set[Inode] = set()  # inodes under in-flight names last pass
        self._started = False
        self._blind_noted = False
        self.taken = 0

    def run_once(self, now: float | None = None) -> list[dict[str, Any]]:
        """One pass: complete inbound files into processing/, then take what is there
        (what we just moved, crash leftovers at start, anything else once settled)."""
        wall = time.time()
        now = wall if now is None else now
        mono = self._clock()
        reports: list[dict[str, Any]] = []
        moved = self._move(self._scan_inbound(mono, wall, now, reports))
        for name, st in self._scan_processing(moved, mono, wall, now, reports):
            reports.append(self._take(name, st, now))
        self._started = True
        if reports:
            self._intake.relay()
        return reports

    def _entries(self, directory: Path) -> list[tuple[str, os.stat_result]]:
        """(name, lstat) of each entry, never following a link, in byte order."""
        out = []
        for name in sorted(os.listdir(directory), key=os.fsencode):
            if leaves(name):  # no file system lists one; never joined to a path if it did
                log.error("drop folder: an entry named %r ignored", shown(name))
                continue
            try:
                out.append((name, os.lstat(directory / name)))
            except FileNotFoundError:
                continue
        return out

    def _scan_inbound(
        self, mono: float, wall: float, now: float, reports: list[dict[str, Any]]
    ) -> Stats:
        seen: dict[str, Seen] = {}
        flying: set[Inode] = set()
        ready: Stats = {}
        for name, st in self._entries(self.inbound):
            if in_flight(name):
                if stat.S_ISREG(st.st_mode):
                    flying.add(inode(st))
                continue
            reason = refusal(st)
            if reason is not None:
                reports.extend(self._refuse(self.inbound, name, reason, now))
                continue
            if stat.S_ISDIR(st.st_mode):
                continue
            prev = self._seen.get(name)
            seen[name] = observe(prev, st, mono)
            if renamed_into_place(st, self._in_flight) or stable(
                prev, st, mono, wall, self.quiet_s
            ):
                ready[name] = st
        self._seen, self._in_flight = seen, flying
        return self._complete(self.inbound, ready, now, reports)

    def _complete(
        self, directory: Path, ready: Stats, now: float, reports: list[dict[str, Any]]
    ) -> Stats:
        """Of files that look settled: hard links refused, those open for writing left."""
        for name in [n for n, st in ready.items() if st.st_nlink > 1]:
            del ready[name]
            reports.extend(
                self._refuse(
                    directory,
                    name,
                    (
                        "a file with other hard links (another name for the same content, maybe "
                        "outside the folder): refused unread; drop a file of its own"
                    ),
                    now,
                )
            )
        writers = open_for_writing({inode(st) for st in ready.values()}, self._proc)
        if writers is None:
            if not self._blind_noted:
                log.info(
                    "drop folder: open files cannot be seen here (%s); the quiet "
                    "period of %.1f s alone decides",
                    self._proc,
                    self.quiet_s,
                )
                self._blind_noted = True
            return ready
        return {n: st for n, st in ready.items() if inode(st) not in writers}

    def _move(self, ready: Stats) -> Stats:
        moved: Stats = {}
        for name, st in ready.items():
            target = self.processing / name
            if os.path.lexists(target):
                continue  # a namesake is still being taken: the next pass
            try:
                os.replace(self.inbound / name, target)  # atomic: never half-taken
            except FileNotFoundError:
                continue  # another listener on the same folder took it first
            self._seen.pop(name, None)
            try:
                after = os.lstat(target)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(after.st_mode) and same_content(st, after):
                moved[name] = after
            else:
                log.warning(
                    "drop folder: %s changed as it was moved; it waits in "
                    "processing/ until settled",
                    shown(name),
                )
        return moved

    def _scan_processing(
        self, moved: Stats, mono: float, wall: float, now: float, reports: list[dict[str, Any]]
    ) -> list[tuple[str, os.stat_result]]:
        parked: dict[str, Seen] = {}
        ready: Stats = {}
        candidates: Stats = {}
        for name, st in self._entries(self.processing):
            reason = refusal(st)
            if reason is not None:
                reports.extend(self._refuse(self.processing, name, reason, now))
                continue
            if stat.S_ISDIR(st.st_mode):
                continue
            if name in moved and same_content(moved[name], st):
                ready[name] = st  # found complete before the move
            elif not self._started:
                candidates[name] = st  # a crash leftover: it was complete when moved
            else:
                prev = self._parked.get(name)
                parked[name] = observe(prev, st, mono)
                if stable(prev, st, mono, wall, self.quiet_s):
                    candidates[name] = st
        self._parked = parked
        ready.update(self._complete(self.processing, candidates, now, reports))
        for name in ready:
            self._parked.pop(name, None)
        return sorted(ready.items(), key=lambda x: os.fsencode(x[0]))

    def _take(self, name: str, st: os.stat_result, now: float) -> dict[str, Any]:
        path, label = self.processing / name, shown(name)
        try:
            rows = self._intake.take(path, label, now)
        except Exception as exc:  # noqa: BLE001 - the file goes to failed/ with the reason
            rows = [{"file": label, "status": "error", "error": f"{type(exc).__name__}: {exc}"}]
        try:
            after = os.lstat(path)
        except FileNotFoundError:
            log.warning("drop folder: %s left processing/ while being taken", label)
            return {"file": label, "items": len(rows), "refused": 0, "moved_to": ""}
        if not same_content(st, after):
            rows.append(
                {
                    "file": label,
                    "status": "error",
                    "error": (
                        f"the file changed while it was being taken ({st.st_size} -> "
                        f"{after.st_size} bytes): what was read is stored; send the whole file "
                        "again"
                    ),
                }
            )
        bad = [r for r in rows if r.get("status") != "accepted"]
        dest = self._put(path, name, self.failed if bad else self.done, now, bad)
        if bad:
            log.warning("drop folder: %s refused (%d item(s))", label, len(bad))
        self.taken += 1
        return {
            "file": label,
            "items": len(rows),
            "refused": len(bad),
            "moved_to": shown(str(dest)),
        }

    def _refuse(self, directory: Path, name: str, reason: str, now: float) -> list[dict[str, Any]]:
        """Move an entry that is not taken to failed/, unread, with the reason beside it."""
        label = shown(name)
        try:
            dest = self._put(
                directory / name,
                name,
                self.failed,
                now,
                [{"file": label, "status": "refused", "error": reason}],
            )
        except FileNotFoundError:
            return []  # gone meanwhile
        log.warning("drop folder: %s refused: %s", label, reason)
        return [{"file": label, "items": 0, "refused": 1, "moved_to": shown(str(dest))}]

    def _put(self, src: Path, name: str, into: Path, now: float, bad: list[dict[str, Any]]) -> Path:
        """Rename `src` (the entry itself, a link is not followed) into `into` under a free
        name, with `<name>.error.txt` beside it when there is something to say."""
        dest = self._free(into, name, now, bool(bad))
        os.replace(src, dest)
        if bad:
            _write_new(
                dest.with_name(dest.name + ERROR_SUFFIX),
                json.dumps(bad, indent=2, default=str).encode(),
            )
        return dest

    @staticmethod
    def _free(into: Path, name: str, now: float, with_error: bool) -> Path:
        """A name in `into` at which neither the file nor its `.error.txt` exists yet (as
        anything: a dangling link counts): its own name when that fits, else a fitted one
        with a collision tag."""
        if leaves(name):
            raise ValueError(f"a file name that leaves the folder: {shown(name)!r}")
        extra = len(ERROR_SUFFIX) if with_error else 0
        base = Path(name if len(os.fsencode(name)) + extra <= NAME_MAX else fitted(name))
        for k in itertools.count():
            tag = "" if k == 0 else f"-{int(now)}" + ("" if k == 1 else f"-{k}")
            if k == 1:
                base = Path(fitted(name))  # room for the tag
            dest = into / (base.name if k == 0 else f"{base.stem}{tag}{base.suffix}")
            if not (os.path.lexists(dest) or os.path.lexists(f"{dest}{ERROR_SUFFIX}")):
                return dest
        raise AssertionError("unreachable")  # pragma: no cover
