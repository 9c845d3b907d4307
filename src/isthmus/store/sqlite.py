"""Embedded store on SQLite (WAL): one file, one connection per thread, group commit.

`accept` stores a whole batch of inbound messages in one transaction; that is the group
commit that lets the MLLP listener ACK thousands of messages a second with synchronous=FULL.
Every other statement is the shared SQL of sql_store.py in SQLite's dialect; this module
owns the connections, the write lock and the few writes SQLite does its own way.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Final, TypeVar

from isthmus.ledger.journal import JournalEntry
from isthmus.store.ports import Accepted, Inbound
from isthmus.store.sql_dialect import SQLITE
from isthmus.store.sql_inbox import duplicate, open_hold
from isthmus.store.sql_journal import ENTRY_COLS
from isthmus.store.sql_store import SqlStore, SqlTx, statements
from isthmus.store.sqlite_connection import StorageUnavailable, connect
from isthmus.store.sqlite_schema import prepare

T = TypeVar("T")
_Q: Final = statements(SQLITE)
_AFTER: Final = {  # one writer at a time: rowids commit in order, every committed one is final
    "inbox": "SELECT id, status, received_at, events FROM inbox WHERE id > ? ORDER BY id LIMIT ?",
    "journal": f"SELECT rowid, {ENTRY_COLS} FROM journal_entries WHERE rowid > ? "
    "ORDER BY rowid LIMIT ?",
}


class SqliteTx(SqlTx):
    """Effects inside one BEGIN IMMEDIATE ... COMMIT."""

    _d = SQLITE
    _q = _Q

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn
        self._sp = 0

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._sp += 1
        name = f"sp{self._sp}"
        self._c.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._c.execute(f"ROLLBACK TO {name}")
            self._c.execute(f"RELEASE {name}")
            raise
        self._c.execute(f"RELEASE {name}")


class SqliteStore(SqlStore):
    """The embedded store on one SQLite file (WAL), one connection per thread."""

    _d = SQLITE
    _q = _Q

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        self.path = path
        self._sync = synchronous
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # Writers of this process take turns here, woken the moment the lock is free.
        # Without it they meet in SQLite's busy handler, which sleeps 1, 2, 5, 10 ms...
        # between tries: the relay's mark_published then stalls the next group commit, and
        # with it every ACK waiting on that commit. Other processes still meet in SQLite.
        self._writing = threading.RLock()
        try:
            self.migrate()
        except BaseException:  # an old schema (SchemaNotCurrent)
            self.close()
            raise

    def migrate(self) -> int:
        """Create a new store at the head revision; SchemaNotCurrent for an older one."""
        return prepare(self._conn(), str(self.path))

    def _conn(self) -> sqlite3.Connection:
        c: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if c is None:
            c = connect(self.path, synchronous=self._sync)
            self._local.conn = c
            with self._lock:
                self._all.append(c)
        return c

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        c = self._conn()
        with self._writing:
            try:
                c.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StorageUnavailable(f"cannot write {self.path}: {exc}") from exc
            try:
                yield c
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def _rows(self, query: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn().execute(query, args).fetchall()

    def _one(self, query: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        r: tuple[Any, ...] | None = self._conn().execute(query, args).fetchone()
        return r

    def _run(self, work: Callable[[Any], T]) -> T:
        with self._write() as c:
            return work(c)

    def _tx(self, conn: Any) -> SqliteTx:
        return SqliteTx(conn)

    def transaction(self) -> AbstractContextManager[SqliteTx]:
        @contextmanager
        def tx() -> Iterator[SqliteTx]:
            with self._write() as c:
                yield SqliteTx(c)

        return tx()

    # inbox ---------------------------------------------------------------
    def accept(self, batch: Sequence[Inbound]) -> list[Accepted]:
        out: list[Accepted] = []
        insert, first = _Q["inbox_insert"], _Q["inbox_first"]
        with self._write() as c:
            for m in batch:
                cur = c.execute(
                    insert,
                    (
                        m.channel,
                        m.control_id,
                        m.received_at,
                        m.peer,
                        m.message_type,
                        m.status,
                        m.ack_code,
                        m.error,
                        m.raw,
                        m.events,
                        0 if m.events else 1,
                        m.digest,
                    ),
                )
                if cur.rowcount == 1:
                    if m.hold is not None:
                        open_hold(SqliteTx(c), m, SQLITE.text)
                    out.append(
                        Accepted(int(cur.lastrowid or 0), False, m.ack_code, m.status, m.error)
                    )
                    continue
                out.append(
                    duplicate(
                        m, c.execute(first, (m.channel, m.control_id)).fetchone(), SQLITE.text
                    )
                )
        return out

    def mark_published(self, ids: Sequence[int]) -> None:
        # Without its own fsync (synchronous=NORMAL for this commit): a flag lost to a power
        # failure only makes the relay publish those events again, which the bus drops by
        # id; the next FULL commit of any writer makes it durable with the rest of the WAL.
        c = self._conn()
        c.execute("PRAGMA synchronous=NORMAL")
        try:
            with self._write() as w:
                w.executemany("UPDATE inbox SET published=1 WHERE id=?", [(i,) for i in ids])
        finally:
            c.execute(f"PRAGMA synchronous={'FULL' if self._sync == 'FULL' else 'NORMAL'}")

    def inbox_after(self, after: int, limit: int = 10_000) -> list[tuple[int, str, float, bytes]]:
        return [
            (int(i), st, t, bytes(ev))
            for i, st, t, ev in self._rows(_AFTER["inbox"], (after, limit))
        ]

    def journal_after(self, after: int, limit: int = 10_000) -> list[tuple[int, JournalEntry]]:
        rows = self._rows(_AFTER["journal"], (after, limit))
        return list(zip((int(r[0]) for r in rows), self.with_lines(rows, at=1), strict=True))

    def close(self) -> None:
        with self._lock:
            for c in self._all:
                with contextlib.suppress(sqlite3.Error):
                    c.close()
            self._all.clear()
        self._local = threading.local()
