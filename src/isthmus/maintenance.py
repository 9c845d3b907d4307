"""The site's files that are not the store: its token key, made once, and the online backup
of an embedded data directory.

Kept apart from the composition root (`app.py`), which only chooses and wires adapters:
these are operations on the data directory that `serve`, `backup` and the console share.
Every file written is 0600 and every folder made 0700, whatever the umask
(`store.private_files`): the key signs account tokens, a backup holds patient data.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from pathlib import Path

from isthmus.store.private_files import private_database, private_dir, write_private

KEY_FILE = "token.key"
EMBEDDED_DATABASES = ("store.db", "bus.db", "governance.db")


def site_secret(data_dir: Path) -> str:
    """The per-site key for account tokens: made once, random, readable by the owner only."""
    path = data_dir / KEY_FILE
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            private_dir(data_dir)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def backup_embedded(data_dir: Path, target: Path) -> list[Path]:
    """Online backup (sqlite3 backup API) of store.db, bus.db and governance.db while `serve`
    runs, plus the token key; restore by copying the files back into an empty data
    directory. Every file written is 0600 and a folder made for them 0700, whatever the
    umask (store.private_files): a backup holds the same patient data as the hub."""
    private_dir(target)
    written = []
    for name in EMBEDDED_DATABASES:
        src = data_dir / name
        if not src.exists():
            continue
        private_database(target / name)
        with (
            contextlib.closing(sqlite3.connect(src)) as s,
            contextlib.closing(sqlite3.connect(target / name)) as d,
        ):
            s.backup(d)
        written.append(target / name)
    key = data_dir / KEY_FILE
    if key.exists():
        write_private(target / KEY_FILE, key.read_bytes())
        written.append(target / KEY_FILE)
    return written
