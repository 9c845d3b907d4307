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
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from decimal import Decimal
from typing import Any, TypeVar

import msgspec
import psycopg
from psycopg import sql
from psycopg.abc import Params
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow

from isthmus.ledger.batch import JournalBatch
from isthmus.ledger.journal import Dimensions, JournalEntry, JournalLine
from isthmus.store import channel_meta
from isthmus.store.claim_adapters import PostgresClaims, PostgresClaimTx
from isthmus.store.message_filter import POSTGRES, where
from isthmus.store.ports import (
    Accepted,
    BillingAccount,
    ChannelCount,
    ChannelState,
    ChargeRecord,
    ClaimRecord,
    DepositRecord,
    HeldEvent,
    HoldTotals,
    Inbound,
    MessageQuery,
    OutboxItem,
    Patient,
    PurgeRule,
    RefundRecord,
    StoredMessage,
    WorkItem,
    held_ref,
)
from isthmus.store.postgres_deliveries import PostgresDeliveries, PostgresDeliveryTx
from isthmus.store.postgres_schema import migrate
from isthmus.store.purge_filter import purge_where
from isthmus.store.sqlite_connection import StorageUnavailable

Conn = psycopg.Connection[TupleRow]
_DEP_COLS = ("event_id, side, reference, amount, currency, on_date, party, correlation_id, "
             "matched_with, entry_key")


_HE_COLS = ("ref, event_id, key, envelope, amount, currency, held_at, released_at, "
            "entry_key")


def _held(r: tuple[Any, ...]) -> HeldEvent:
    return HeldEvent(r[0], r[1], r[2], bytes(r[3]), Decimal(r[4]), r[5], r[6], r[7], r[8])


def _deposit(r: tuple[Any, ...]) -> DepositRecord:
    return DepositRecord(r[0], r[1], r[2], Decimal(r[3]), r[4], r[5], r[6], r[7], r[8], r[9])
T = TypeVar("T")

_batch_enc = msgspec.json.Encoder(decimal_format="string")
_MSG_COLS = ("id, channel, control_id, received_at, peer, message_type, status, ack_code, "
             "error, raw, events, published, digest, purged_at")
_WI_COLS = ("id, kind, queue, status, key, event_id, correlation_id, detail, created_at, "
            "updated_at, resolution, envelope")
_OB_COLS = "id, destination, batch_id, fmt, payload, status, attempts, visible_at, last_error"
_RF_COLS = ("id, idempotency_key, account_number, account_token, company, amount, currency, "
            "reason, status, requested_by, requested_at, decided_by, decided_at, note, "
            "entry_key")
_LINE_COLS = ("account, debit, credit, currency, company, cost_center, service_line, "
              "account_token")
# A store-level write that lost a deadlock is rerun whole. Two batches holding the same
# control ids in opposite orders can deadlock on the inbox's unique index (ids must grow in
# batch order, so the rows cannot be sorted); PostgreSQL aborts one and the rerun finds the
# other's rows committed.
_ATTEMPTS = 5
_RERUN_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure
_CONNECT_TIMEOUT = 5  # seconds, unless the DSN says otherwise
_CHECKOUT_TIMEOUT = 30.0  # seconds to wait for a free pooled connection


def _line(r: Sequence[Any]) -> JournalLine:
    return JournalLine(account=r[0], debit=r[1], credit=r[2], currency=r[3],
                       dims=Dimensions(company=r[4], cost_center=r[5], service_line=r[6],
                                       account_token=r[7]))


def _refund(r: Sequence[Any]) -> RefundRecord:
    return RefundRecord(r[0], r[1], r[2], r[3], r[4], Decimal(r[5]), *r[6:])


def _text(s: str) -> str:
    """PostgreSQL TEXT cannot hold NUL. A garbled message's control id or error may carry
    one; it must still be stored (and answered) rather than fail its whole batch, so NUL is
    kept as U+FFFD in the inbox's text columns. The raw bytes keep the exact content."""
    return s.replace("\x00", "\ufffd")


def _msg(r: Sequence[Any]) -> StoredMessage:
    return StoredMessage(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8],
                         bytes(r[9]), bytes(r[10]), bool(r[11]), r[12], float(r[13]))


class _AlreadySealed(Exception):
    """Internal: roll the batch back, one of its entries is sealed already."""


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
            if (not self._closed and gen == self._generation and not conn.closed
                    and conn.info.transaction_status == TransactionStatus.IDLE):
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


class PostgresTx(PostgresDeliveryTx, PostgresClaimTx):
    """Effects inside one BEGIN ... COMMIT on one connection."""

    def __init__(self, conn: Conn) -> None:
        self._c = conn

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        with self._c.transaction():  # nested: SAVEPOINT, ROLLBACK TO + RELEASE on error
            yield

    def get_patient(self, key: str) -> Patient | None:
        r = self._c.execute(
            "SELECT key, mrn, authority, token, family_name, given_name, birth_date, sex, "
            "merged_into FROM patients WHERE key = %s", (key,)).fetchone()
        return Patient(*r) if r else None

    def put_patient(self, p: Patient) -> None:
        self._c.execute(
            "INSERT INTO patients VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (key) DO "
            "UPDATE SET family_name = excluded.family_name, given_name = excluded.given_name, "
            "birth_date = excluded.birth_date, sex = excluded.sex, "
            "merged_into = excluded.merged_into",
            (p.key, p.mrn, p.authority, p.token, p.family_name, p.given_name, p.birth_date,
             p.sex, p.merged_into))

    def put_encounter(self, visit_number: str, patient_key: str, facility: str,
                      patient_class: str, status: str, at: str) -> None:
        self._c.execute(
            "INSERT INTO encounters VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (visit_number) DO "
            "UPDATE SET status = excluded.status, updated_at = excluded.updated_at, "
            "patient_class = CASE WHEN excluded.patient_class = '' "
            "THEN encounters.patient_class ELSE excluded.patient_class END",
            (visit_number, patient_key, facility, patient_class, status, at))

    def put_billing_account(self, account_number: str, patient_key: str, facility: str) -> None:
        self._c.execute(
            "INSERT INTO billing_accounts VALUES (%s,%s,%s) ON CONFLICT (account_number) DO "
            "UPDATE SET patient_key = excluded.patient_key",
            (account_number, patient_key, facility))

    def get_billing_account(self, account_number: str) -> BillingAccount | None:
        r = self._c.execute("SELECT account_number, patient_key, facility FROM "
                            "billing_accounts WHERE account_number = %s",
                            (account_number,)).fetchone()
        return BillingAccount(r[0], r[1], r[2]) if r else None

    def record_claim(self, claim: ClaimRecord) -> bool:
        return self._c.execute(
            "INSERT INTO claims (event_id, patient_control_number, payer_id, payer_claim_id, "
            "total_charge, currency) VALUES (%s,%s,%s,%s,%s,%s) "
            "ON CONFLICT (event_id) DO NOTHING",
            (claim.event_id, claim.patient_control_number, claim.payer_id,
             claim.payer_claim_id, claim.total_charge, claim.currency)).rowcount == 1

    def find_claim(self, patient_control_number: str,
                   payer_claim_id: str = "") -> ClaimRecord | None:
        cols = ("SELECT event_id, patient_control_number, payer_id, payer_claim_id, "
                "total_charge, currency FROM claims WHERE ")
        r = self._c.execute(cols + "patient_control_number = %s ORDER BY seq DESC LIMIT 1",
                            (patient_control_number,)).fetchone()
        if r is None and payer_claim_id:
            r = self._c.execute(cols + "payer_claim_id = %s ORDER BY seq DESC LIMIT 1",
                                (payer_claim_id,)).fetchone()
        return None if r is None else ClaimRecord(r[0], r[1], r[2], r[3], Decimal(r[4]), r[5])

    def merge_patient(self, merged_key: str, survivor_key: str) -> int:
        moves = (survivor_key, merged_key)
        self._c.execute("UPDATE patients SET merged_into = %s WHERE key = %s", moves)
        self._c.execute("UPDATE encounters SET patient_key = %s WHERE patient_key = %s", moves)
        self._c.execute("UPDATE billing_accounts SET patient_key = %s WHERE patient_key = %s",
                        moves)
        return self._c.execute("UPDATE charges SET patient_key = %s WHERE patient_key = %s",
                               moves).rowcount

    def record_charge(self, c: ChargeRecord) -> bool:
        return self._c.execute(
            "INSERT INTO charges VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
            "ON CONFLICT (event_id) DO NOTHING",
            (c.event_id, c.patient_key, c.account_token, c.transaction_id, c.transaction_type,
             c.charge_code, c.amount, c.currency, c.service_date, c.entry_key)).rowcount == 1

    def insert_entry(self, e: JournalEntry) -> bool:
        cur = self._c.execute(
            "INSERT INTO journal_entries (entry_key, posted_on, period, channel, memo, "
            "correlation_id, causation_id, reverses, moved_from) "
            "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (entry_key) DO NOTHING",
            (e.entry_key, e.posted_on, e.period, e.channel, e.memo, e.correlation_id,
             e.causation_id, e.reverses, e.moved_from))
        if cur.rowcount != 1:
            return False
        with self._c.cursor() as lines:
            lines.executemany(
                f"INSERT INTO journal_lines (entry_key, line_no, {_LINE_COLS}) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                [(e.entry_key, i, ln.account, ln.debit, ln.credit, ln.currency,
                  ln.dims.company, ln.dims.cost_center, ln.dims.service_line,
                  ln.dims.account_token) for i, ln in enumerate(e.lines, 1)])
        return True

    def ar_balances(self, ar_account: str, token: str) -> dict[tuple[str, str], Decimal]:
        rows = self._c.execute(
            "SELECT company, currency, sum(debit) - sum(credit) FROM journal_lines "
            "WHERE account = %s AND account_token = %s GROUP BY company, currency",
            (ar_account, token)).fetchall()
        return {(co, cur): Decimal(bal) for co, cur, bal in rows}

    def add_work_item(self, *, kind: str, queue: str, key: str, event_id: str,
                      correlation_id: str, detail: str, envelope: bytes,
                      now: float) -> int | None:
        r = self._c.execute(
            "INSERT INTO work_items (kind, queue, status, key, event_id, correlation_id, "
            "detail, created_at, updated_at, envelope) "
            "VALUES (%s,%s,'open',%s,%s,%s,%s,%s,%s,%s) "
            "ON CONFLICT (kind, event_id) DO NOTHING RETURNING id",
            (kind, queue, key, event_id, correlation_id, detail, now, now, envelope)).fetchone()
        if r is not None:
            return int(r[0])
        # seen before: reopen it only if it was resubmitted and failed again
        self._c.execute(
            "UPDATE work_items SET status = 'open', detail = %s, updated_at = %s "
            "WHERE kind = %s AND event_id = %s AND status = 'resubmitted'",
            (detail, now, kind, event_id))
        return None

    def mapping_override(self, table: str, code: str) -> str | None:
        r = self._c.execute(
            "SELECT value FROM mapping_overrides WHERE table_name = %s AND code = %s",
            (table, code)).fetchone()
        return str(r[0]) if r else None

    def set_mapping_override(self, table: str, code: str, value: str) -> None:
        self._c.execute(
            "INSERT INTO mapping_overrides VALUES (%s,%s,%s) ON CONFLICT (table_name, code) "
            "DO UPDATE SET value = excluded.value", (table, code, value))

    def close_work_items(self, event_id: str, resolution: str, now: float) -> int:
        return self._c.execute(
            "UPDATE work_items SET status = 'resolved', resolution = CASE WHEN resolution = '' "
            "THEN %s ELSE resolution END, updated_at = %s WHERE event_id = %s "
            "AND status IN ('open', 'resubmitted')", (resolution, now, event_id)).rowcount

    def hold_event(self, held: HeldEvent) -> bool:
        h = held
        return self._c.execute(
            f"INSERT INTO held_events ({_HE_COLS}) VALUES (%s,%s,%s,%s,%s,%s,%s,0,'') "
            "ON CONFLICT (ref, event_id) DO UPDATE SET released_at = 0, entry_key = '', "
            "envelope = excluded.envelope WHERE held_events.released_at <> 0",
            (h.ref, h.event_id, h.key, h.envelope, h.amount, h.currency,
             h.held_at)).rowcount == 1

    def pending_events(self, event_ids: Collection[str]) -> set[str]:
        ids = list(event_ids)
        return {r[0] for r in self._c.execute(
            "SELECT event_id FROM work_items WHERE event_id = ANY(%s) AND status IN "
            "('open', 'resubmitted') UNION SELECT event_id FROM held_events WHERE "
            "event_id = ANY(%s) AND released_at <> 0 AND entry_key = ''", (ids, ids))}

    def held_posted(self, event_id: str, entry_key: str) -> int:
        return self._c.execute(
            "UPDATE held_events SET entry_key = %s WHERE event_id = %s AND released_at <> 0 "
            "AND entry_key = ''", (entry_key, event_id)).rowcount

    # deposit matching --------------------------------------------------------
    def record_deposit(self, record: DepositRecord) -> bool:
        r = record
        return self._c.execute(
            "INSERT INTO deposits (event_id, side, reference, amount, currency, on_date, "
            "party, correlation_id, matched_with, entry_key) VALUES "
            "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (event_id) DO NOTHING",
            (r.event_id, r.side, r.reference, r.amount, r.currency, r.on_date, r.party,
             r.correlation_id, r.matched_with, r.entry_key)).rowcount == 1

    def open_deposits(self, reference: str) -> list[DepositRecord]:
        return [_deposit(r) for r in self._c.execute(
            f"SELECT {_DEP_COLS} FROM deposits WHERE reference = %s AND matched_with = '' "
            "ORDER BY seq", (reference,)).fetchall()]

    def match_deposits(self, event_id: str, other_event_id: str, entry_key: str) -> None:
        for a, b in ((event_id, other_event_id), (other_event_id, event_id)):
            self._c.execute("UPDATE deposits SET matched_with = %s, entry_key = %s "
                            "WHERE event_id = %s", (b, entry_key, a))

    # refunds -----------------------------------------------------------------
    def lock_refunds(self, account_token: str) -> None:
        """A transaction-scoped advisory lock on the account token: READ COMMITTED alone
        would let two processes check the same credit at once."""
        self._c.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                        (f"refund:{account_token}",))

    def add_refund(self, refund: RefundRecord) -> bool:
        r = refund
        return self._c.execute(
            f"INSERT INTO refunds ({_RF_COLS}) VALUES "
            "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (id) DO NOTHING",
            (r.id, r.idempotency_key, r.account_number, r.account_token, r.company,
             r.amount, r.currency, r.reason, r.status, r.requested_by, r.requested_at,
             r.decided_by, r.decided_at, r.note, r.entry_key)).rowcount == 1

    def get_refund(self, refund_id: str) -> RefundRecord | None:
        r = self._c.execute(f"SELECT {_RF_COLS} FROM refunds WHERE id = %s",
                            (refund_id,)).fetchone()
        return _refund(r) if r else None

    def pending_refunds(self, account_token: str) -> list[RefundRecord]:
        return [_refund(r) for r in self._c.execute(
            f"SELECT {_RF_COLS} FROM refunds WHERE account_token = %s AND status = 'pending' "
            "ORDER BY seq", (account_token,)).fetchall()]

    def decide_refund(self, refund_id: str, *, status: str, decided_by: str,
                      decided_at: float, note: str, entry_key: str = "") -> bool:
        return self._c.execute(
            "UPDATE refunds SET status = %s, decided_by = %s, decided_at = %s, note = %s, "
            "entry_key = %s WHERE id = %s AND status = 'pending'",
            (status, decided_by, decided_at, note, entry_key, refund_id)).rowcount == 1

    # flow state --------------------------------------------------------------
    def load_state(self, name: str) -> bytes | None:
        """A transaction-scoped advisory lock on the name first: the row may not exist yet,
        so SELECT ... FOR UPDATE alone would let two first writers in."""
        self._c.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                        (f"state:{name}",))
        row = self._c.execute("SELECT body FROM flow_state WHERE name = %s",
                              (name,)).fetchone()
        return None if row is None else bytes(row[0])

    def save_state(self, name: str, body: bytes) -> None:
        self._c.execute("INSERT INTO flow_state (name, body) VALUES (%s, %s) ON CONFLICT "
                        "(name) DO UPDATE SET body = excluded.body", (name, body))

    def applied(self, key: str) -> bytes | None:
        row = self._c.execute("SELECT body FROM applied WHERE key = %s", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def mark_applied(self, key: str, body: bytes) -> bool:
        # a racing insert of the same key waits for the other transaction, then does nothing
        return self._c.execute("INSERT INTO applied (key, body) VALUES (%s, %s) ON CONFLICT "
                               "(key) DO NOTHING", (key, body)).rowcount == 1


class PostgresStore(PostgresDeliveries, PostgresClaims):
    def __init__(self, dsn: str, *, schema: str = "isthmus", pool_size: int = 4) -> None:
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {pool_size}")
        params = conninfo_to_dict(dsn)
        extra = {} if "connect_timeout" in params else {"connect_timeout": _CONNECT_TIMEOUT}
        # where, for messages: never the password
        self.where = (f"{params.get('host', 'localhost')}:{params.get('port', 5432)}"
                      f"/{params.get('dbname', '')} schema {schema}")
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
                    exc.__cause__.sqlstate in _RERUN_SQLSTATES)
                if attempt >= _ATTEMPTS or not lost:
                    raise
                time.sleep(random.uniform(0.01, 0.05) * attempt)  # let the winner commit
                attempt += 1

    def _rows(self, query: str, args: Params = ()) -> list[tuple[Any, ...]]:
        with self._use() as c:
            return c.execute(query, args).fetchall()

    def _one(self, query: str, args: Params = ()) -> tuple[Any, ...] | None:
        with self._use() as c:
            return c.execute(query, args).fetchone()

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
        with c.pipeline():  # one round trip for the inserts, one for the duplicates
            inserted = [c.execute(
                "INSERT INTO inbox (channel, control_id, received_at, peer, message_type, "
                "status, ack_code, error, raw, events, published, digest) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
                "ON CONFLICT (channel, control_id) DO NOTHING RETURNING id",
                (_text(m.channel), _text(m.control_id), m.received_at, _text(m.peer),
                 _text(m.message_type), m.status, m.ack_code, _text(m.error), m.raw, m.events,
                 not m.events, _text(m.digest)))
                for m in batch]
            ids = [cur.fetchone() for cur in inserted]
            first = {i: c.execute(
                "SELECT id, ack_code, status, error, digest FROM inbox "
                "WHERE channel = %s AND control_id = %s", (_text(m.channel), _text(m.control_id)))
                for i, (m, r) in enumerate(zip(batch, ids, strict=True)) if r is None}
            out: list[Accepted] = []
            for i, (m, r) in enumerate(zip(batch, ids, strict=True)):
                if r is not None:
                    out.append(Accepted(int(r[0]), False, m.ack_code, m.status, m.error))
                    continue
                d = first[i].fetchone()
                if d is None:  # cannot happen: the conflicting row is committed or ours
                    raise StorageUnavailable(f"inbox row {m.channel}/{m.control_id} vanished")
                out.append(Accepted(int(d[0]), True, d[1], d[2], d[3],
                                    conflict=bool(m.digest and d[4] and _text(m.digest) != d[4])))
        tx = PostgresTx(c)
        for m, r in zip(batch, ids, strict=True):
            if r is not None and m.hold is not None:  # a new held message: its work item
                ref = _text(held_ref(m.channel, m.control_id))
                tx.add_work_item(kind=m.hold.kind, queue=m.hold.queue,
                                 key=_text(m.control_id), event_id=ref, correlation_id=ref,
                                 detail=_text(m.hold.detail), envelope=b"",
                                 now=m.received_at)
        return out

    def unpublished(self, limit: int) -> list[StoredMessage]:
        return [_msg(r) for r in self._rows(
            f"SELECT {_MSG_COLS} FROM inbox WHERE NOT published AND status <> 'held' "
            "ORDER BY id LIMIT %s", (limit,))]

    def release(self, channel: str, control_id: str, *, resolution: str,
                now: float) -> StoredMessage | None:
        def work(c: Conn) -> StoredMessage | None:
            r = c.execute(
                f"UPDATE inbox SET status = 'accepted' WHERE channel = %s AND control_id = %s "
                f"AND status = 'held' RETURNING {_MSG_COLS}",
                (_text(channel), _text(control_id))).fetchone()
            if r is None:
                return None
            PostgresTx(c).close_work_items(_text(held_ref(channel, control_id)), resolution,
                                           now)
            return _msg(r)
        return self._run(work)

    def mark_published(self, ids: Sequence[int]) -> None:
        if ids:
            self._run(lambda c: c.execute(
                "UPDATE inbox SET published = TRUE WHERE id = ANY(%s)", (list(ids),)))

    def message(self, message_id: int) -> StoredMessage | None:
        r = self._one(f"SELECT {_MSG_COLS} FROM inbox WHERE id = %s", (message_id,))
        return _msg(r) if r else None

    def message_by_control_id(self, channel: str, control_id: str) -> StoredMessage | None:
        r = self._one(f"SELECT {_MSG_COLS} FROM inbox WHERE channel = %s AND control_id = %s",
                      (_text(channel), _text(control_id)))
        return _msg(r) if r else None

    def messages(self, *, since: float | None = None, until: float | None = None,
                 status: str | None = None, limit: int = 1000) -> list[StoredMessage]:
        q = f"SELECT {_MSG_COLS} FROM inbox WHERE TRUE"
        args: list[object] = []
        for cond, val in (("received_at >= %s", since), ("received_at < %s", until),
                          ("status = %s", status)):
            if val is not None:
                q += f" AND {cond}"
                args.append(val)
        return [_msg(r) for r in self._rows(q + " ORDER BY id LIMIT %s", (*args, limit))]

    def purge_candidates(self, rule: PurgeRule, *, after: int = 0,
                         limit: int = 500) -> list[StoredMessage]:
        q, args = purge_where(rule, after, "%s", "published")
        return [_msg(r) for r in self._rows(
            f"SELECT {_MSG_COLS} FROM inbox WHERE {q} ORDER BY id LIMIT %s", (*args, limit))]

    def purge_bodies(self, ids: Sequence[int], now: float) -> int:
        return self._run(lambda c: c.execute(
            "UPDATE inbox SET raw = ''::bytea, purged_at = %s WHERE id = ANY(%s) AND "
            "purged_at = 0", (now, list(ids))).rowcount)

    def message_page(self, query: MessageQuery, *, before: int | None = None,
                     limit: int = 50) -> list[StoredMessage]:
        cond, args = where(query, before, POSTGRES)
        return [_msg(r) for r in self._rows(
            f"SELECT {_MSG_COLS} FROM inbox{cond} ORDER BY id DESC LIMIT %s", (*args, limit))]

    def message_counts(self, since: float | None = None) -> dict[tuple[str, str, str], int]:
        q = "SELECT channel, status, ack_code, count(*) FROM inbox"
        args: tuple[float, ...] = ()
        if since is not None:
            q, args = q + " WHERE received_at >= %s", (since,)
        return {(ch, st, ack): int(n) for ch, st, ack, n in
                self._rows(q + " GROUP BY channel, status, ack_code", args)}

    def accepted_events(self, since: float | None = None) -> list[tuple[float, bytes]]:
        q = "SELECT received_at, events FROM inbox WHERE status = 'accepted'"
        args: tuple[float, ...] = ()
        if since is not None:
            q, args = q + " AND received_at >= %s", (since,)
        return [(float(t), bytes(ev)) for t, ev in self._rows(q + " ORDER BY id", args)]

    _SETTLE_WAIT_S = 2.0

    def _settled(self, table: str, column: str, cols: str, after: int,
                 limit: int) -> list[tuple[Any, ...]]:
        """Rows of `table` (`cols`, the identity `column` first) above `after`, as far as
        no transaction still in flight can commit one below the last. Identities are
        handed out before commit (a conflict or a rollback leaves a hole for good), so: note
        the last identity handed out and the writers of this database in flight, wait (at
        most `_SETTLE_WAIT_S`) until those writers end, then every identity up to the
        noted one is final, a row or a hole for good. When they do not end in time, only
        the gapless run after `after` is returned (the rest waits for the next read)."""
        writers = ("SELECT coalesce(array_agg(backend_xid::text), '{}') FROM "
                   "pg_stat_activity WHERE datname = current_database() AND backend_xid IS "
                   "NOT NULL AND pid <> pg_backend_pid()")
        with self._use() as c:  # autocommit: each statement sees what is committed now
            found = c.execute(f"SELECT pg_sequence_last_value(pg_get_serial_sequence("
                              f"'{table}', '{column}')), ({writers})").fetchone()
            last, xids = (found[0], list(found[1])) if found else (None, [])
            deadline = time.monotonic() + self._SETTLE_WAIT_S
            while xids and time.monotonic() < deadline:
                time.sleep(0.005)
                row = c.execute(writers + " AND backend_xid::text = ANY(%s)",
                                (xids,)).fetchone()
                xids = list(row[0]) if row else []
            if last is None:
                return []
            bound = int(last) if not xids else after + limit
            rows = c.execute(f"SELECT {cols} FROM {table} WHERE {column} > %s AND "
                             f"{column} <= %s ORDER BY {column} LIMIT %s",
                             (after, bound, limit)).fetchall()
        if not xids:
            return rows
        run: list[tuple[Any, ...]] = []
        for r in rows:
            if int(r[0]) != after + len(run) + 1:
                break
            run.append(r)
        return run

    def inbox_after(self, after: int,
                    limit: int = 10_000) -> list[tuple[int, str, float, bytes]]:
        rows = self._settled("inbox", "id", "id, status, received_at, events", after, limit)
        return [(int(i), str(st), float(t), bytes(ev)) for i, st, t, ev in rows]

    def journal_after(self, after: int, limit: int = 10_000) -> list[tuple[int, JournalEntry]]:
        rows = self._settled(
            "journal_entries", "seq", "seq, entry_key, posted_on, period, channel, memo, "
            "correlation_id, causation_id, reverses, moved_from", after, limit)
        lines: dict[str, list[JournalLine]] = {}
        if rows:
            for r in self._rows(
                    f"SELECT entry_key, {_LINE_COLS} FROM journal_lines "
                    "WHERE entry_key = ANY(%s) ORDER BY entry_key, line_no",
                    ([r[1] for r in rows],)):
                lines.setdefault(r[0], []).append(_line(r[1:]))
        return [(int(r[0]), JournalEntry(
            entry_key=r[1], posted_on=r[2], period=r[3], channel=r[4], memo=r[5],
            lines=tuple(lines.get(r[1], ())), correlation_id=r[6], causation_id=r[7],
            reverses=r[8], moved_from=r[9])) for r in rows]

    # ledger --------------------------------------------------------------
    def journal_lines(self) -> Iterator[JournalLine]:
        for r in self._rows(f"SELECT {_LINE_COLS} FROM journal_lines"):
            yield _line(r)

    def entries(self, *, correlation_id: str | None = None,
                unbatched_channel: str | None = None, limit: int = 100_000) -> list[JournalEntry]:
        q = ("SELECT entry_key, posted_on, period, channel, memo, correlation_id, causation_id, "
             "reverses, moved_from FROM journal_entries")
        args: tuple[object, ...] = (limit,)
        if correlation_id is not None:
            q, args = q + " WHERE correlation_id = %s", (correlation_id, limit)
        elif unbatched_channel is not None:
            q, args = q + " WHERE batch_id IS NULL AND channel = %s", (unbatched_channel, limit)
        with self._use() as c:
            rows = c.execute(q + " ORDER BY seq LIMIT %s", args).fetchall()
            lines: dict[str, list[JournalLine]] = {}
            if rows:
                for r in c.execute(
                    f"SELECT entry_key, {_LINE_COLS} FROM journal_lines "
                    "WHERE entry_key = ANY(%s) ORDER BY entry_key, line_no",
                    ([r[0] for r in rows],)):
                    lines.setdefault(r[0], []).append(_line(r[1:]))
        return [JournalEntry(entry_key=r[0], posted_on=r[1], period=r[2], channel=r[3],
                             memo=r[4], lines=tuple(lines.get(r[0], ())), correlation_id=r[5],
                             causation_id=r[6], reverses=r[7], moved_from=r[8])
                for r in rows]

    def entry_batches(self, entry_keys: Sequence[str]) -> dict[str, str]:
        if not entry_keys:
            return {}
        return {str(k): str(b) for k, b in self._rows(
            "SELECT entry_key, batch_id FROM journal_entries WHERE entry_key = ANY(%s) "
            "AND batch_id IS NOT NULL", (list(entry_keys),))}

    def unbatched_channels(self) -> list[str]:
        return [str(r[0]) for r in self._rows(
            "SELECT DISTINCT channel FROM journal_entries WHERE batch_id IS NULL ORDER BY 1")]

    def record_batch(self, batch: JournalBatch, outbox: Sequence[tuple[str, str, bytes]],
                     now: float) -> bool:
        """Seal a batch: mark its entries, keep its body, queue its files. All or nothing:
        refused (False) when the batch id exists or another batch sealed one of its entries."""
        def work(c: Conn) -> bool:
            if c.execute(
                "INSERT INTO batches (batch_id, channel, policy, line_count, created_at, body) "
                "VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (batch_id) DO NOTHING",
                (batch.batch_id, batch.channel, batch.policy, len(batch.lines), now,
                 _batch_enc.encode(batch))).rowcount != 1:
                return False
            # READ COMMITTED: a racing exporter's UPDATE waits for ours, then finds these
            # rows sealed and its count short, so at most one batch ever holds an entry
            if c.execute("UPDATE journal_entries SET batch_id = %s WHERE entry_key = ANY(%s) "
                         "AND batch_id IS NULL", (batch.batch_id, list(batch.entry_keys))
                         ).rowcount != len(batch.entry_keys):
                raise _AlreadySealed
            if outbox:
                with c.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO outbox (destination, batch_id, fmt, payload, created_at) "
                        "VALUES (%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                        [(d, batch.batch_id, f, p, now) for d, f, p in outbox])
            return True
        try:
            return self._run(work)
        except _AlreadySealed:
            return False  # rolled back: another batch holds one of these entries

    def batches(self) -> list[tuple[str, str, int, float]]:
        return [(str(r[0]), str(r[1]), int(r[2]), float(r[3])) for r in self._rows(
            "SELECT batch_id, channel, line_count, created_at FROM batches "
            "ORDER BY created_at, seq")]

    def batch_body(self, batch_id: str) -> bytes | None:
        r = self._one("SELECT body FROM batches WHERE batch_id = %s", (batch_id,))
        return bytes(r[0]) if r else None

    # outbox --------------------------------------------------------------
    def outbox_due(self, destination: str, now: float, limit: int) -> list[OutboxItem]:
        return [OutboxItem(*r) for r in self._rows(
            f"SELECT {_OB_COLS} FROM outbox o WHERE destination = %(d)s AND status = 'pending' "
            "AND visible_at <= %(now)s AND NOT EXISTS (SELECT 1 FROM outbox w WHERE "  # order:
            "w.destination = %(d)s AND w.status = 'pending' AND w.visible_at > %(now)s "
            "AND w.id < o.id) ORDER BY id LIMIT %(limit)s",  # a waiting retry holds back
            {"d": destination, "now": now, "limit": limit})]  # the later rows

    def outbox_settle(self, item_id: int, *, status: str, error: str = "",
                      visible_at: float = 0.0) -> None:
        sent_at = visible_at if status == "sent" else None
        self._run(lambda c: c.execute(
            "UPDATE outbox SET status = %s, last_error = %s, visible_at = %s, "
            "attempts = attempts + 1, sent_at = %s WHERE id = %s",
            (status, error[:2000], visible_at, sent_at, item_id)))

    def outbox_items(self, status: str | None = None) -> list[OutboxItem]:
        q = f"SELECT {_OB_COLS} FROM outbox" + (" WHERE status = %s" if status else "")
        return [OutboxItem(*r) for r in self._rows(q + " ORDER BY id",
                                                   (status,) if status else ())]

    # work items ------------------------------------------------------------
    def work_items(self, status: str | None = None, limit: int = 1000,
                   after: int | None = None) -> list[WorkItem]:
        q = f"SELECT {_WI_COLS} FROM work_items WHERE id > %s" + (" AND status = %s"
                                                                  if status else "")
        args = (-1 if after is None else after, *((status,) if status else ()), limit)
        return [WorkItem(*r) for r in self._rows(q + " ORDER BY id LIMIT %s", args)]

    def work_item(self, item_id: int) -> WorkItem | None:
        r = self._one(f"SELECT {_WI_COLS} FROM work_items WHERE id = %s", (item_id,))
        return WorkItem(*r) if r else None

    def work_items_for(self, correlation_id: str) -> list[WorkItem]:
        return [WorkItem(*r) for r in self._rows(
            f"SELECT {_WI_COLS} FROM work_items WHERE correlation_id = %s ORDER BY id",
            (correlation_id,))]

    def deposit_records(self) -> list[DepositRecord]:
        return [_deposit(r) for r in self._rows(
            f"SELECT {_DEP_COLS} FROM deposits ORDER BY seq")]

    def held_events(self, ref: str, limit: int = 1000) -> list[HeldEvent]:
        return [_held(r) for r in self._rows(
            f"SELECT {_HE_COLS} FROM held_events WHERE ref = %s ORDER BY held_at, event_id "
            "LIMIT %s", (ref, limit))]

    def holds_of(self, event_ids: Sequence[str]) -> list[HeldEvent]:
        return [_held(r) for r in self._rows(
            f"SELECT {_HE_COLS} FROM held_events WHERE event_id = ANY(%s) "
            'ORDER BY ref COLLATE "C", event_id COLLATE "C"', (list(event_ids),))]

    def hold_totals(self, refs: Sequence[str]) -> dict[str, HoldTotals]:
        if not refs:
            return {}
        return {ref: HoldTotals(int(n), tuple((c, Decimal(a)) for c, a in sums), float(oldest))
                for ref, n, sums, oldest in self._rows(
                    "SELECT ref, sum(n), array_agg(ARRAY[currency, total::text] ORDER BY "
                    "currency), min(oldest) FROM (SELECT ref, currency, count(*) AS n, "
                    "sum(amount) AS total, min(held_at) AS oldest FROM held_events WHERE "
                    "released_at = 0 AND ref = ANY(%s) GROUP BY ref, currency) AS per "
                    "GROUP BY ref", (list(refs),))}

    def release_held(self, ref: str, event_ids: Sequence[str], now: float) -> int:
        return self._run(lambda c: c.execute(
            "UPDATE held_events SET released_at = %s WHERE ref = %s AND event_id = ANY(%s) "
            "AND released_at = 0", (now, ref, list(event_ids))).rowcount)

    def mapping_overrides(self, tables: Sequence[str]) -> list[tuple[str, str, str]]:
        return [(str(t), str(c), str(v)) for t, c, v in self._rows(
            "SELECT table_name, code, value FROM mapping_overrides WHERE table_name = ANY(%s) "
            "ORDER BY table_name COLLATE \"C\", code COLLATE \"C\"", (list(tables),))]

    def set_work_item_status(self, item_id: int, status: str, resolution: str,
                             now: float) -> None:
        self._run(lambda c: c.execute(
            "UPDATE work_items SET status = %s, resolution = %s, updated_at = %s WHERE id = %s",
            (status, resolution, now, item_id)))

    def set_mapping_override(self, table: str, code: str, value: str) -> None:
        self._run(lambda c: c.execute(
            "INSERT INTO mapping_overrides VALUES (%s,%s,%s) ON CONFLICT (table_name, code) "
            "DO UPDATE SET value = excluded.value", (table, code, value)))

    def channel_states(self) -> dict[str, ChannelState]:
        return channel_meta.states(self._rows(
            "SELECT name, value FROM meta WHERE name LIKE %s", (channel_meta.PREFIX + "%",)))

    def set_channel_state(self, name: str, state: str, by: str, reason: str,
                          now: float) -> ChannelState:
        out = ChannelState(state, by, reason, now)
        value = channel_meta.encode(out)
        self._run(lambda c: c.execute(
            "INSERT INTO meta(name, value) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE "
            "SET value = excluded.value", (channel_meta.key(name), value)))
        return out

    def channel_counts(self) -> list[ChannelCount]:
        return [ChannelCount(ch, st, bool(pub), int(n), float(last))
                for ch, st, pub, n, last in self._rows(
                    "SELECT channel, status, published, count(*), max(received_at) "
                    "FROM inbox GROUP BY channel, status, published")]

    def counts(self) -> dict[str, int]:
        names_and_queries = (
            ("messages", "SELECT count(*) FROM inbox"),
            ("rejected", "SELECT count(*) FROM inbox WHERE status = 'rejected'"),
            ("unpublished", "SELECT count(*) FROM inbox WHERE NOT published AND "
                            "status <> 'held'"),
            ("held", "SELECT count(*) FROM inbox WHERE status = 'held'"),
            ("patients", "SELECT count(*) FROM patients"),
            ("charges", "SELECT count(*) FROM charges"),
            ("journal_entries", "SELECT count(*) FROM journal_entries"),
            ("journal_lines", "SELECT count(*) FROM journal_lines"),
            ("open_work_items", "SELECT count(*) FROM work_items WHERE status = 'open'"),
            ("batches", "SELECT count(*) FROM batches"),
            ("outbox_pending", "SELECT count(*) FROM outbox WHERE status = 'pending'"),
        )
        [r] = self._rows("SELECT " + ", ".join(f"({q})" for _, q in names_and_queries))
        return {name: int(v) for (name, _), v in zip(names_and_queries, r, strict=True)}

    def refunds(self, status: str | None = None, limit: int = 1000,
                after: str | None = None) -> list[RefundRecord]:
        # keyset on the register's order: rows recorded after refund `after` (none if unknown)
        q = (f"SELECT {_RF_COLS} FROM refunds WHERE seq > coalesce((SELECT seq FROM refunds "
             "WHERE id = %s), %s)" + (" AND status = %s" if status else ""))
        args = (after or "", -1 if after is None else 1 << 62,
                *((status,) if status else ()), limit)
        return [_refund(r) for r in self._rows(q + " ORDER BY seq LIMIT %s", args)]

    def refund(self, refund_id: str) -> RefundRecord | None:
        r = self._one(f"SELECT {_RF_COLS} FROM refunds WHERE id = %s", (refund_id,))
        return _refund(r) if r else None

    def close(self) -> None:
        self._pool.close()
