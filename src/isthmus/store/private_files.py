"""Files that hold patient data are the hub's user's alone: directories 0700, files 0600.

The databases hold raw HL7 and FHIR messages (names, birth dates, MRNs: HIPAA 45 CFR
164.312(a)(1), access control), the token key signs account tokens, and backups and ERP
exports copy both. The process umask decides nothing here: a file is created with mode
0600 (``O_CREAT``/``O_EXCL``, never through a symbolic link) and a directory the hub makes
with 0700, so a umask of 000 or 022 gives the same modes. SQLite creates a database's
``-wal``, ``-shm`` and ``-journal`` files with the database file's own mode
(https://sqlite.org/tempfiles.html), so creating the database file first is what keeps
them private too. A database left wider by an older release is narrowed when opened.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Final

DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600
SQLITE_SIDE_FILES: Final = ("-wal", "-shm", "-journal")
_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)


def private_dir(path: Path) -> Path:
    """Make `path` and its missing parents with mode 0700; an existing one is left as is
    (`serve` refuses one that others can read: `open_to_others`)."""
    missing: list[Path] = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made by another process meanwhile: its maker chose the mode
        os.chmod(d, DIR_MODE)  # mkdir's mode is filtered by the umask: set it exactly
    return path


def create_private(path: Path) -> bool:
    """Create `path` empty with mode 0600 unless it exists; True when this call made it."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return True


def narrow(path: Path) -> None:
    """Take group and other bits off an existing file we own (an older release's 0644)."""
    with contextlib.suppress(FileNotFoundError, PermissionError):
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
            os.chmod(path, FILE_MODE)


def private_database(path: Path) -> None:
    """Before SQLite opens `path` for writing: the file exists with mode 0600, and so do
    the side files already there (new ones take the database file's mode)."""
    if not create_private(path):
        narrow(path)
    for suffix in SQLITE_SIDE_FILES:
        narrow(path.with_name(path.name + suffix))


def write_private(path: Path, body: bytes) -> None:
    """Write `path` whole, mode 0600: a temporary name, fsync, then rename over `path`, so
    a reader never sees half a file. OSError on failure (the temporary file is removed)."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), FILE_MODE)  # a leftover temporary kept its old mode
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def open_to_others(path: Path) -> str | None:
    """Why the directory `path` is not private (its mode), or None when it is (or is not
    there yet: it will be made 0700)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None
    if mode & 0o077 == 0:
        return None
    who = " and ".join(w for w, bits in (("group", 0o070), ("others", 0o007)) if mode & bits)
    return f"mode {mode:04o}: {who} can reach it"
