"""When a dropped file is complete: the settledness rules of the watched drop folder.

A sender's file is complete when one of these holds (issue 14, item 6):

* it was renamed into place from an in-flight name (`x.part`, `.x`, `x.tmp`, `x~`): the
  watcher saw the same inode (`st_dev`, `st_ino`) under the in-flight name at the previous
  pass, and the rename is the sender's word that the upload is over;
* or it is stable: size, mtime and ctime unchanged since the previous pass, and nothing
  written or changed for the quiet period (`[reliability] drop_quiet_period_s`) measured on
  this process's monotonic clock since the content was first seen, or on the wall clock
  since its ctime (which no one can set back, so a restart does not restart the wait);

and, in both cases, no process holds it open for writing. On Linux that is read from
`/proc/<pid>/fd` (links compared by device and inode, `fdinfo` flags O_WRONLY/O_RDWR); it
is checked only for the few files that already look settled, once per pass. Where `/proc`
cannot be read, or the writer runs as another user whose descriptors are hidden, the quiet
period alone decides: it must then exceed the sender's longest pause.

In-flight names (dot files and `.part`, `.filepart`, `.tmp`, `~` endings) are never taken.
Decisions are plain functions over `os.stat_result` values; only `open_for_writing` reads.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

IN_FLIGHT_ENDINGS: Final = (".part", ".filepart", ".tmp", "~")
PROC: Final = Path("/proc")
_WRITE_MODES: Final = (os.O_WRONLY, os.O_RDWR)

Inode = tuple[int, int]  # (st_dev, st_ino): a file, whatever its name
Signature = tuple[int, int, int, int, int]  # inode + size, mtime_ns, ctime_ns


def in_flight(name: str) -> bool:
    """A name an upload in progress wears: ignored, never taken nor refused."""
    return name.startswith(".") or name.endswith(IN_FLIGHT_ENDINGS)


def inode(st: os.stat_result) -> Inode:
    """A file's identity whatever its name: (st_dev, st_ino)."""
    return st.st_dev, st.st_ino


def signature(st: os.stat_result) -> Signature:
    """What changes when anyone writes to the file, truncates it, or swaps it."""
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def same_content(a: os.stat_result, b: os.stat_result) -> bool:
    """Same file, same size and mtime (ctime left out: our own rename changes it)."""
    return (inode(a), a.st_size, a.st_mtime_ns) == (inode(b), b.st_size, b.st_mtime_ns)


@dataclass(frozen=True)
class Seen:
    """How a name looked when its current content was first seen (monotonic seconds)."""

    signature: Signature
    since: float


def observe(prev: Seen | None, st: os.stat_result, now: float) -> Seen:
    """The record to keep for a name after this pass."""
    sig = signature(st)
    return prev if prev is not None and prev.signature == sig else Seen(sig, now)


def stable(prev: Seen | None, st: os.stat_result, now: float, wall: float, quiet_s: float) -> bool:
    """Unchanged since the previous pass, and quiet for `quiet_s` seconds: on the monotonic
    clock since first seen like this, or on the wall clock since the file's ctime."""
    if prev is None or prev.signature != signature(st):
        return False
    return now - prev.since >= quiet_s or wall - st.st_ctime_ns / 1e9 >= quiet_s


def renamed_into_place(st: os.stat_result, was_in_flight: set[Inode]) -> bool:
    """The file seen under an in-flight name at the previous pass now wears its final name."""
    return stat.S_ISREG(st.st_mode) and inode(st) in was_in_flight


def open_for_writing(files: Iterable[Inode], proc: Path = PROC) -> set[Inode] | None:
    """Those of `files` that some visible process holds open for writing; None when this
    system shows no open files at all (no /proc): then the caller cannot tell."""
    wanted = set(files)
    if not wanted:
        return set()
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return None
    if not (proc / "self" / "fd").is_dir():
        return None
    found: set[Inode] = set()
    for pid in pids:
        fd_dir = proc / pid / "fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone since, or another user's process: hidden from us
        for fd in fds:
            try:
                st = os.stat(fd_dir / fd)
            except OSError:
                continue
            key = inode(st)
            if key in wanted and _writable(proc / pid / "fdinfo" / fd):
                found.add(key)
    return found


def _writable(fdinfo: Path) -> bool:
    """The descriptor's access mode (`flags:` in octal) allows writing; unknown counts as
    writable, so a file is never taken on a guess."""
    try:
        text = fdinfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return True
    for line in text.splitlines():
        if line.startswith("flags:"):
            try:
                return (int(line.split()[1], 8) & os.O_ACCMODE) in _WRITE_MODES
            except (IndexError, ValueError):
                return True
    return True
