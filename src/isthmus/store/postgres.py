"""Scale-out store on PostgreSQL: the same port and contract as the embedded SQLite store.

In scale-out mode several processes on several machines (listeners, workers, API) share one
store, so the database, not a file lock, arbitrates: the unique constraints of
postgres_schema.py make every effect idempotent (`INSERT ... ON CONFLICT DO NOTHING`), and
READ COMMITTED makes a second writer of the same key wait for the first one's outcome, then
see its row. `accept` stores a whole batch in one transaction (group commit) and sends its
statements in one pipeline, so a batch costs a few network round trips, not one per message.

Connections come from a small pool of `pool_size` (autocommit; every unit of work opens an
explicit BEGIN ... COMMIT, so no connection sits idle in a transaction). A thread that is
inside `transaction()` keeps its connection, so reads it makes meanwhile see its own writes.
Connection and server failures leave as `StorageUnavailable`: retry later or stop.
Every other statement is the shared SQL of sql_store.py in PostgreSQL's dialect.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Final, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

from isthmus.errors import StorageUnavailable
from isthmus.ledger.journal import JournalEntry
from isthmus.store.ports import Accepted, Inbound
from isthmus.store.postgres_schema import migrate
from isthmus.store.sql_dialect import POSTGRES
from isthmus.store.sql_inbox import duplicate, open_hold
from isthmus.store.sql_journal import ENTRY_COLS
from isthmus.store.sql_store import SqlStore, SqlTx, statements

Conn = psycopg.Connection[TupleRow]
T = TypeVar("T")
_Q: Final = statements(POSTGRES)
_t = POSTGRES.text
# A store-level write that lost a deadlock is rerun whole. Two batches holding the same
# control ids in opposite orders can deadlock on the inbox's unique index (ids must grow in
# batch order, so the rows cannot be sorted); PostgreSQL aborts one and the rerun finds the
# other's rows committed.
_ATTEMPTS = 5
_RERUN_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure
_CONNECT_TIMEOUT = 5  # seconds, unless the DSN says otherwise
_CHECKOUT_TIMEOUT = 30.0  # seconds to wait for a free pooled connection


class _Pool:
    """At most `size` connections, each lent to one thread at a time.

    A thread asking again while it holds one (inside a transaction) gets the same one.
    A connection that comes back broken or inside a transaction is closed, not reused.
    """

    def __init__(self, conninfo: str, schema: str, size: int) -> None:
        self._conninfo = conninfo
        self._search_path = sql.SQL("SET search_path TO {}").format(sql.Identifier(schema))
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[tuple[int, Conn]] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        self._generation = 0  # bumped by close(): older connections are closed on return
        # Set by close(): a thread still running when the hub stopped (a cancelled task's
        # to_thread call) closes what it opens instead of leaving it idle in a closed pool.
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[Conn]:
        held: Conn | None = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        if not self._slots.acquire(timeout=_CHECKOUT_TIMEOUT):
            raise StorageUnavailable(f"no free PostgreSQL connection in {_CHECKOUT_TIMEOUT}s")
        try:
            with self._lock:
                gen, conn = self._idle.pop() if self._idle else (self._generation, None)
            if conn is None:
                conn = self._open()
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None
                self._give_back(gen, conn)
        finally:
            self._slots.release()

    def _open(self) -> Conn:
        conn = psycopg.connect(self._conninfo, autocommit=True)
        try:
            conn.execute(self._search_path)
        except BaseException:
            conn.close()
            raise
        return conn

    def _give_back(self, gen: int, conn: Conn) -> None:
        with self._lock:
            if (
                not self._closed
                and gen == self._generation
                and not conn.closed
                and conn.info.transaction_status == TransactionStatus.IDLE
            ):
                self._idle.append((gen, conn))
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            self._generation += 1
            self._closed = True
        for _, conn in idle:
            conn.close()


class PostgresTx(SqlTx):
    """Effects inside one BEGIN ... COMMIT on one connection."""

    _d = POSTGRES
    _q = _Q

    def __init__(self, conn: Conn) -> None:
        self._c = conn

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        with self._c.transaction():  # nested: SAVEPOINT, ROLLBACK TO + RELEASE on error
            yield


class PostgresStore(SqlStore):
    """The store on PostgreSQL, in one schema, over a small connection pool."""

    _d = POSTGRES
    _q = _Q

    def __init__(self, dsn: str, *, schema: str = "isthmus", pool_size: int = 4) -> None:
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {pool_size}")
        params = conninfo_to_dict(dsn)
        extra = {} if "connect_timeout" in params else {"connect_timeout": _CONNECT_TIMEOUT}
        # where, for messages: never the password
        self.where = (
            f"{params.get('host', 'localhost')}:{params.get('port', 5432)}"
            f"/{params.get('dbname', '')} schema {schema}"
        )
        self.schema = schema
        self._pool = _Pool(make_conninfo(dsn, **extra), schema, pool_size)
        try:
            self.migrate()
        except BaseException:  # an old schema (SchemaNotCurrent) or no server
            self._pool.close()
            raise

    def migrate(self) -> int:
        """Create the schema at the head revision if missing; return its revision.
        SchemaNotCurrent for an older one (`isthmus migrate` upgrades it)."""
        return self._run(lambda c: migrate(c, self.schema))

    # plumbing ------------------------------------------------------------
    @contextmanager
    def _use(self) -> Iterator[Conn]:
        """A connection for one call; driver failures leave as StorageUnavailable."""
        try:
            with self._pool.connection() as c:
                yield c
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise StorageUnavailable(f"PostgreSQL at {self.where}: {exc}") from exc

    def _run(self, work: Callable[[Conn], T]) -> T:
        """Run `work` in a transaction of its own, again if it lost a deadlock."""
        attempt = 1
        while True:
            try:
                with self._use() as c, c.transaction():
                    return work(c)
            except StorageUnavailable as exc:
                lost = isinstance(exc.__cause__, psycopg.Error) and (
                    exc.__cause__.sqlstate in _RERUN_SQLSTATES
                )
                if attempt >= _ATTEMPTS or not lost:
                    raise
                time.sleep(random.uniform(0.01, 0.05) * attempt)  # let the winner commit
                attempt += 1

    def _rows(self, query: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._use() as c:
            return c.execute(query, args).fetchall()

    def _one(self, query: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        with self._use() as c:
            return c.execute(query, args).fetchone()

    def _tx(self, conn: Any) -> PostgresTx:
        return PostgresTx(conn)

    def transaction(self) -> AbstractContextManager[PostgresTx]:
        @contextmanager
        def tx() -> Iterator[PostgresTx]:
            with self._use() as c, c.transaction():
                yield PostgresTx(c)

        return tx()

    # inbox ---------------------------------------------------------------
    def accept(self, batch: Sequence[Inbound]) -> list[Accepted]:
        return self._run(lambda c: self._accept(c, batch)) if batch else []

    @staticmethod
    def _accept(c: Conn, batch: Sequence[Inbound]) -> list[Accepted]:
        insert, first = _Q["inbox_insert"] + " RETURNING id", _Q["inbox_first"]
        with c.pipeline():  # one round trip for the inserts, one for the duplicates
            inserted = [
                c.execute(
                    insert,
                    (
                        _t(m.channel),
                        _t(m.control_id),
                        m.received_at,
                        _t(m.peer),
                        _t(m.message_type),
                        m.status,
                        m.ack_code,
                        _t(m.error),
                        m.raw,
                        m.events,
                        not m.events,
                        _t(m.digest),
                    ),
                )
                for m in batch
            ]
            ids = [cur.fetchone() for cur in inserted]
            taken = {
                i: c.execute(first, (_t(m.channel), _t(m.control_id)))
                for i, (m, r) in enumerate(zip(batch, ids, strict=True))
                if r is None
            }
            out = [
                Accepted(int(r[0]), False, m.ack_code, m.status, m.error)
                if r is not None
                else duplicate(m, taken[i].fetchone(), _t)
                for i, (m, r) in enumerate(zip(batch, ids, strict=True))
            ]
        tx = PostgresTx(c)
        for m, r in zip(batch, ids, strict=True):
            if r is not None and m.hold is not None:  # a new held message: its work item
                open_hold(tx, m, _t)
        return out

    def mark_published(self, ids: Sequence[int]) -> None:
        if ids:
            self._run(
                lambda c: c.execute(
                    "UPDATE inbox SET published = TRUE WHERE id = ANY(%s)", (list(ids),)
                )
            )

    _SETTLE_WAIT_S = 2.0

    def _settled(
        self, table: str, column: str, cols: str, after: int, limit: int
    ) -> list[tuple[Any, ...]]:
        """Rows of `table` (`cols`, the identity `column` first) above `after`, as far as
        no transaction still in flight can commit one below the last. Identities are
        handed out before commit (a conflict or a rollback leaves a hole for good), so: note
        the last identity handed out and the writers of this database in flight, wait (at
        most `_SETTLE_WAIT_S`) until those writers end, then every identity up to the
        noted one is final, a row or a hole for good. When they do not end in time, only
        the gapless run after `after` is returned (the rest waits for the next read)."""
        writers = (
            "SELECT coalesce(array_agg(backend_xid::text), '{}') FROM "
            "pg_stat_activity WHERE datname = current_database() AND backend_xid IS "
            "NOT NULL AND pid <> pg_backend_pid()"
        )
        with self._use() as c:  # autocommit: each statement sees what is committed now
            found = c.execute(
                f"SELECT pg_sequence_last_value(pg_get_serial_sequence("
                f"'{table}', '{column}')), ({writers})"
            ).fetchone()
            last, xids = (found[0], list(found[1])) if found else (None, [])
            deadline = time.monotonic() + self._SETTLE_WAIT_S
            while xids and time.monotonic() < deadline:
                time.sleep(0.005)
                row = c.execute(writers + " AND backend_xid::text = ANY(%s)", (xids,)).fetchone()
                xids = list(row[0]) if row else []
            if last is None:
                return []
            bound = int(last) if not xids else after + limit
            rows = c.execute(
                f"SELECT {cols} FROM {table} WHERE {column} > %s AND "
                f"{column} <= %s ORDER BY {column} LIMIT %s",
                (after, bound, limit),
            ).fetchall()
        if not xids:
            return rows
        run: list[tuple[Any, ...]] = []
        for r in rows:
            if int(r[0]) != after + len(run) + 1:
                break
            run.append(r)
        return run

    def inbox_after(self, after: int, limit: int = 10_000) -> list[tuple[int, str, float, bytes]]:
        rows = self._settled("inbox", "id", "id, status, received_at, events", after, limit)
        return [(int(i), str(st), float(t), bytes(ev)) for i, st, t, ev in rows]

    def journal_after(self, after: int, limit: int = 10_000) -> list[tuple[int, JournalEntry]]:
        rows = self._settled("journal_entries", "seq", f"seq, {ENTRY_COLS}", after, limit)
        return list(zip((int(r[0]) for r in rows), self.with_lines(rows, at=1), strict=True))

    def close(self) -> None:
        self._pool.close()
