"""How every embedded-mode SQLite connection is opened: WAL, a busy timeout, synchronous=FULL.

WAL lets readers (CLI commands, the console) run while `serve` writes. synchronous=FULL
makes a commit durable across power loss, not only across a process crash; group commit
(many rows per transaction) is what keeps that affordable. See https://sqlite.org/wal.html.
The database, its -wal and -shm files and its directory are private (0600/0700, whatever
the umask: store.private_files): they hold raw messages, names and birth dates included.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from isthmus.errors import StorageUnavailable
from isthmus.store.private_files import private_database, private_dir


def connect(path: Path, *, synchronous: str = "FULL", readonly: bool = False) -> sqlite3.Connection:
    """Open a SQLite connection: a private file, busy timeout 30 s, foreign keys on, and
    unless read-only WAL and the given synchronous level; StorageUnavailable on failure."""
    try:
        private_dir(path.parent)
        if readonly:
            conn = sqlite3.connect(
                f"file:{path}?mode=ro",
                uri=True,
                timeout=30.0,
                check_same_thread=False,
                isolation_level=None,
            )
        else:
            private_database(path)
            conn = sqlite3.connect(
                path, timeout=30.0, check_same_thread=False, isolation_level=None
            )
        conn.execute("PRAGMA busy_timeout=30000")
        if not readonly:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'FULL' else 'NORMAL'}")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn
    except sqlite3.Error as exc:
        raise StorageUnavailable(f"cannot open {path}: {exc}") from exc
    except OSError as exc:
        raise StorageUnavailable(f"cannot open {path}: {exc.strerror}") from exc


__all__ = ["StorageUnavailable", "connect"]  # StorageUnavailable: isthmus.errors, re-exported
