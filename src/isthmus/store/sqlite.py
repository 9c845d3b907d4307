"""Embedded store on SQLite (WAL): one file, one connection per thread, group commit.

`accept` stores a whole batch of inbound messages in one transaction; that is the group
commit that lets the MLLP listener ACK thousands of messages a second with synchronous=FULL.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from isthmus.ledger.batch import JournalBatch
from isthmus.ledger.journal import Dimensions, JournalEntry, JournalLine
from isthmus.store import channel_meta
from isthmus.store.claim_adapters import SqlClaimTx, SqliteClaims
from isthmus.store.message_filter import SQLITE, where
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
from isthmus.store.purge_filter import purge_where
from isthmus.store.sqlite_connection import StorageUnavailable, connect
from isthmus.store.sqlite_deliveries import SqliteDeliveries, SqliteDeliveryTx
from isthmus.store.sqlite_schema import prepare

_batch_enc = msgspec.json.Encoder(decimal_format="string")
_MSG_COLS = ("id, channel, control_id, received_at, peer, message_type, status, ack_code, "
             "error, raw, events, published, digest, purged_at")
_WI_COLS = ("id, kind, queue, status, key, event_id, correlation_id, detail, created_at, "
            "updated_at, resolution, envelope")
_OB_COLS = "id, destination, batch_id, fmt, payload, status, attempts, visible_at, last_error"
_RF_COLS = ("id, idempotency_key, account_number, account_token, company, amount, currency, "
            "reason, status, requested_by, requested_at, decided_by, decided_at, note, "
            "entry_key")


def _refund(r: tuple[Any, ...]) -> RefundRecord:
    return RefundRecord(r[0], r[1], r[2], r[3], r[4], Decimal(r[5]), *r[6:])


def _line(acc: str, debit: str, credit: str, cur: str, co: str, cc: str, sl: str,
          tok: str) -> JournalLine:
    return JournalLine(account=acc, debit=Decimal(debit), credit=Decimal(credit), currency=cur,
                       dims=Dimensions(company=co, cost_center=cc, service_line=sl,
                                       account_token=tok))


_DEP_COLS = ("event_id, side, reference, amount, currency, on_date, party, correlation_id, "
             "matched_with, entry_key")


def _deposit(r: tuple[Any, ...]) -> DepositRecord:
    return DepositRecord(r[0], r[1], r[2], Decimal(r[3]), r[4], date.fromisoformat(r[5]),
                         r[6], r[7], r[8], r[9])


_HE_COLS = ("ref, event_id, key, envelope, amount, currency, held_at, released_at, "
            "entry_key")


def _held(r: tuple[Any, ...]) -> HeldEvent:
    return HeldEvent(r[0], r[1], r[2], bytes(r[3]), Decimal(r[4]), r[5], r[6], r[7], r[8])


def hold_totals_of(rows: list[tuple[Any, ...]]) -> dict[str, HoldTotals]:
    """(ref, currency, amount text, held_at) rows -> totals per ref (amounts summed as
    Decimal here: the store keeps money as text)."""
    acc: dict[str, tuple[int, dict[str, Decimal], float]] = {}
    for ref, cur, amount, at in rows:
        n, sums, oldest = acc.get(ref, (0, {}, at))
        sums[cur] = sums.get(cur, Decimal(0)) + Decimal(amount)
        acc[ref] = (n + 1, sums, min(oldest, at))
    return {ref: HoldTotals(n, tuple(sorted(sums.items())), oldest)
            for ref, (n, sums, oldest) in acc.items()}


def _msg(r: tuple[Any, ...]) -> StoredMessage:
    return StoredMessage(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], bytes(r[9]),
                         bytes(r[10]), bool(r[11]), r[12], float(r[13]))


class _AlreadySealed(Exception):
    """Internal: roll the batch back, one of its entries is sealed already."""


class SqliteTx(SqliteDeliveryTx, SqlClaimTx):
    """Effects inside one BEGIN IMMEDIATE ... COMMIT."""

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

    def get_patient(self, key: str) -> Patient | None:
        r = self._c.execute(
            "SELECT key, mrn, authority, token, family_name, given_name, birth_date, sex, "
            "merged_into FROM patients WHERE key=?", (key,)).fetchone()
        return Patient(*r) if r else None

    def put_patient(self, p: Patient) -> None:
        self._c.execute(
            "INSERT INTO patients VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(key) DO UPDATE SET "
            "family_name=excluded.family_name, given_name=excluded.given_name, "
            "birth_date=excluded.birth_date, sex=excluded.sex, merged_into=excluded.merged_into",
            (p.key, p.mrn, p.authority, p.token, p.family_name, p.given_name, p.birth_date,
             p.sex, p.merged_into))

    def put_encounter(self, visit_number: str, patient_key: str, facility: str,
                      patient_class: str, status: str, at: str) -> None:
        self._c.execute(
            "INSERT INTO encounters VALUES (?,?,?,?,?,?) ON CONFLICT(visit_number) DO UPDATE "
            "SET status=excluded.status, updated_at=excluded.updated_at, "
            "patient_class=CASE WHEN excluded.patient_class='' THEN patient_class "
            "ELSE excluded.patient_class END",
            (visit_number, patient_key, facility, patient_class, status, at))

    def put_billing_account(self, account_number: str, patient_key: str, facility: str) -> None:
        self._c.execute(
            "INSERT INTO billing_accounts VALUES (?,?,?) ON CONFLICT(account_number) DO UPDATE "
            "SET patient_key=excluded.patient_key", (account_number, patient_key, facility))

    def get_billing_account(self, account_number: str) -> BillingAccount | None:
        r = self._c.execute("SELECT account_number, patient_key, facility FROM "
                            "billing_accounts WHERE account_number=?",
                            (account_number,)).fetchone()
        return BillingAccount(r[0], r[1], r[2]) if r else None

    def record_claim(self, claim: ClaimRecord) -> bool:
        cur = self._c.execute(
            "INSERT OR IGNORE INTO claims(event_id, patient_control_number, payer_id, "
            "payer_claim_id, total_charge, currency) VALUES (?,?,?,?,?,?)",
            (claim.event_id, claim.patient_control_number, claim.payer_id,
             claim.payer_claim_id, str(claim.total_charge), claim.currency))
        return cur.rowcount == 1

    def find_claim(self, patient_control_number: str,
                   payer_claim_id: str = "") -> ClaimRecord | None:
        cols = ("SELECT event_id, patient_control_number, payer_id, payer_claim_id, "
                "total_charge, currency FROM claims WHERE ")
        r = self._c.execute(cols + "patient_control_number=? ORDER BY rowid DESC LIMIT 1",
                            (patient_control_number,)).fetchone()
        if r is None and payer_claim_id:
            r = self._c.execute(cols + "payer_claim_id=? ORDER BY rowid DESC LIMIT 1",
                                (payer_claim_id,)).fetchone()
        return None if r is None else ClaimRecord(r[0], r[1], r[2], r[3], Decimal(r[4]), r[5])

    def merge_patient(self, merged_key: str, survivor_key: str) -> int:
        self._c.execute("UPDATE patients SET merged_into=? WHERE key=?", (survivor_key, merged_key))
        self._c.execute("UPDATE encounters SET patient_key=? WHERE patient_key=?",
                        (survivor_key, merged_key))
        self._c.execute("UPDATE billing_accounts SET patient_key=? WHERE patient_key=?",
                        (survivor_key, merged_key))
        return self._c.execute("UPDATE charges SET patient_key=? WHERE patient_key=?",
                               (survivor_key, merged_key)).rowcount

    def record_charge(self, c: ChargeRecord) -> bool:
        cur = self._c.execute(
            "INSERT OR IGNORE INTO charges VALUES (?,?,?,?,?,?,?,?,?,?)",
            (c.event_id, c.patient_key, c.account_token, c.transaction_id, c.transaction_type,
             c.charge_code, str(c.amount), c.currency, c.service_date.isoformat(), c.entry_key))
        return cur.rowcount == 1

    def insert_entry(self, e: JournalEntry) -> bool:
        cur = self._c.execute(
            "INSERT OR IGNORE INTO journal_entries VALUES (?,?,?,?,?,?,?,?,?,NULL)",
            (e.entry_key, e.posted_on.isoformat(), e.period, e.channel, e.memo,
             e.correlation_id, e.causation_id, e.reverses, e.moved_from))
        if cur.rowcount != 1:
            return False
        self._c.executemany(
            "INSERT INTO journal_lines VALUES (?,?,?,?,?,?,?,?,?,?)",
            [(e.entry_key, i, ln.account, str(ln.debit), str(ln.credit), ln.currency,
              ln.dims.company, ln.dims.cost_center, ln.dims.service_line, ln.dims.account_token)
             for i, ln in enumerate(e.lines, 1)])
        return True

    def ar_balances(self, ar_account: str, token: str) -> dict[tuple[str, str], Decimal]:
        out: dict[tuple[str, str], Decimal] = {}
        for debit, credit, cur, company in self._c.execute(
            "SELECT debit, credit, currency, company FROM journal_lines WHERE account=? AND "
            "account_token=?", (ar_account, token)):
            k = (company, cur)
            out[k] = out.get(k, Decimal(0)) + Decimal(debit) - Decimal(credit)
        return out

    def add_work_item(self, *, kind: str, queue: str, key: str, event_id: str,
                      correlation_id: str, detail: str, envelope: bytes,
                      now: float) -> int | None:
        cur = self._c.execute(
            "INSERT OR IGNORE INTO work_items(kind, queue, status, key, event_id, "
            "correlation_id, detail, created_at, updated_at, envelope) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            (kind, queue, "open", key, event_id, correlation_id, detail, now, now, envelope))
        if cur.rowcount == 1:
            return cur.lastrowid
        # seen before: reopen it only if it was resubmitted and failed again
        self._c.execute(
            "UPDATE work_items SET status='open', detail=?, updated_at=? "
            "WHERE kind=? AND event_id=? AND status='resubmitted'",
            (detail, now, kind, event_id))
        return None

    def mapping_override(self, table: str, code: str) -> str | None:
        r = self._c.execute("SELECT value FROM mapping_overrides WHERE table_name=? AND code=?",
                            (table, code)).fetchone()
        return str(r[0]) if r else None

    def set_mapping_override(self, table: str, code: str, value: str) -> None:
        self._c.execute("INSERT INTO mapping_overrides VALUES (?,?,?) ON CONFLICT DO UPDATE "
                        "SET value=excluded.value", (table, code, value))


    def close_work_items(self, event_id: str, resolution: str, now: float) -> int:
        return self._c.execute(
            "UPDATE work_items SET status='resolved', resolution=CASE WHEN resolution='' "
            "THEN ? ELSE resolution END, updated_at=? WHERE event_id=? AND status IN "
            "('open','resubmitted')", (resolution, now, event_id)).rowcount

    def hold_event(self, held: HeldEvent) -> bool:
        h = held
        return self._c.execute(
            f"INSERT INTO held_events({_HE_COLS}) VALUES (?,?,?,?,?,?,?,0,'') "
            "ON CONFLICT(ref, event_id) DO UPDATE SET released_at=0, entry_key='', "
            "envelope=excluded.envelope WHERE held_events.released_at<>0",
            (h.ref, h.event_id, h.key, h.envelope, str(h.amount), h.currency,
             h.held_at)).rowcount == 1

    def pending_events(self, event_ids: Collection[str]) -> set[str]:
        ids = list(event_ids)
        marks = ",".join("?" * len(ids))
        return {r[0] for r in self._c.execute(
            f"SELECT event_id FROM work_items WHERE event_id IN ({marks}) AND status IN "
            f"('open','resubmitted') UNION SELECT event_id FROM held_events WHERE event_id IN "
            f"({marks}) AND released_at<>0 AND entry_key=''", (*ids, *ids))}

    def held_posted(self, event_id: str, entry_key: str) -> int:
        return self._c.execute(
            "UPDATE held_events SET entry_key=? WHERE event_id=? AND released_at<>0 AND "
            "entry_key=''", (entry_key, event_id)).rowcount

    # deposit matching --------------------------------------------------------
    def record_deposit(self, record: DepositRecord) -> bool:
        r = record
        return self._c.execute(
            "INSERT OR IGNORE INTO deposits VALUES (?,?,?,?,?,?,?,?,?,?)",
            (r.event_id, r.side, r.reference, str(r.amount), r.currency,
             r.on_date.isoformat(), r.party, r.correlation_id, r.matched_with,
             r.entry_key)).rowcount == 1

    def open_deposits(self, reference: str) -> list[DepositRecord]:
        return [_deposit(r) for r in self._c.execute(
            f"SELECT {_DEP_COLS} FROM deposits WHERE reference=? AND matched_with='' "
            "ORDER BY rowid", (reference,))]

    def match_deposits(self, event_id: str, other_event_id: str, entry_key: str) -> None:
        for a, b in ((event_id, other_event_id), (other_event_id, event_id)):
            self._c.execute("UPDATE deposits SET matched_with=?, entry_key=? WHERE event_id=?",
                            (b, entry_key, a))

    # refunds -----------------------------------------------------------------
    def lock_refunds(self, account_token: str) -> None:
        """Nothing to do: BEGIN IMMEDIATE already serializes every writer."""

    def add_refund(self, refund: RefundRecord) -> bool:
        r = refund
        return self._c.execute(
            f"INSERT OR IGNORE INTO refunds({_RF_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (r.id, r.idempotency_key, r.account_number, r.account_token, r.company,
             str(r.amount), r.currency, r.reason, r.status, r.requested_by, r.requested_at,
             r.decided_by, r.decided_at, r.note, r.entry_key)).rowcount == 1

    def get_refund(self, refund_id: str) -> RefundRecord | None:
        r = self._c.execute(f"SELECT {_RF_COLS} FROM refunds WHERE id=?",
                            (refund_id,)).fetchone()
        return _refund(r) if r else None

    def pending_refunds(self, account_token: str) -> list[RefundRecord]:
        return [_refund(r) for r in self._c.execute(
            f"SELECT {_RF_COLS} FROM refunds WHERE account_token=? AND status='pending' "
            "ORDER BY rowid", (account_token,))]

    def decide_refund(self, refund_id: str, *, status: str, decided_by: str,
                      decided_at: float, note: str, entry_key: str = "") -> bool:
        return self._c.execute(
            "UPDATE refunds SET status=?, decided_by=?, decided_at=?, note=?, entry_key=? "
            "WHERE id=? AND status='pending'",
            (status, decided_by, decided_at, note, entry_key, refund_id)).rowcount == 1

    # flow state --------------------------------------------------------------
    def load_state(self, name: str) -> bytes | None:
        """BEGIN IMMEDIATE already holds every other writer off until the commit."""
        row = self._c.execute("SELECT body FROM flow_state WHERE name=?", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    def save_state(self, name: str, body: bytes) -> None:
        self._c.execute("INSERT INTO flow_state(name, body) VALUES (?,?) ON CONFLICT(name) "
                        "DO UPDATE SET body=excluded.body", (name, body))

    def applied(self, key: str) -> bytes | None:
        row = self._c.execute("SELECT body FROM applied WHERE key=?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def mark_applied(self, key: str, body: bytes) -> bool:
        return self._c.execute("INSERT OR IGNORE INTO applied(key, body) VALUES (?,?)",
                               (key, body)).rowcount == 1


class SqliteStore(SqliteDeliveries, SqliteClaims):
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

    def transaction(self) -> AbstractContextManager[SqliteTx]:
        @contextmanager
        def tx() -> Iterator[SqliteTx]:
            with self._write() as c:
                yield SqliteTx(c)
        return tx()

    # inbox ---------------------------------------------------------------
    def accept(self, batch: Sequence[Inbound]) -> list[Accepted]:
        out: list[Accepted] = []
        with self._write() as c:
            for m in batch:
                cur = c.execute(
                    "INSERT OR IGNORE INTO inbox(channel, control_id, received_at, peer, "
                    "message_type, status, ack_code, error, raw, events, published, digest) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (m.channel, m.control_id, m.received_at, m.peer, m.message_type, m.status,
                     m.ack_code, m.error, m.raw, m.events, 0 if m.events else 1, m.digest))
                if cur.rowcount == 1:
                    if m.hold is not None:
                        ref = held_ref(m.channel, m.control_id)
                        SqliteTx(c).add_work_item(
                            kind=m.hold.kind, queue=m.hold.queue, key=m.control_id,
                            event_id=ref, correlation_id=ref, detail=m.hold.detail,
                            envelope=b"", now=m.received_at)
                    out.append(Accepted(int(cur.lastrowid or 0), False, m.ack_code, m.status,
                                        m.error))
                    continue
                r = c.execute("SELECT id, ack_code, status, error, digest FROM inbox WHERE "
                              "channel=? AND control_id=?", (m.channel, m.control_id)).fetchone()
                out.append(Accepted(int(r[0]), True, r[1], r[2], r[3],
                                    conflict=bool(m.digest and r[4] and m.digest != r[4])))
        return out

    def unpublished(self, limit: int) -> list[StoredMessage]:
        rows = self._conn().execute(
            f"SELECT {_MSG_COLS} FROM inbox WHERE published=0 AND status<>'held' "
            "ORDER BY id LIMIT ?", (limit,))
        return [_msg(r) for r in rows]

    def release(self, channel: str, control_id: str, *, resolution: str,
                now: float) -> StoredMessage | None:
        with self._write() as c:
            if c.execute("UPDATE inbox SET status='accepted' WHERE channel=? AND "
                         "control_id=? AND status='held'",
                         (channel, control_id)).rowcount != 1:
                return None
            SqliteTx(c).close_work_items(held_ref(channel, control_id), resolution, now)
            r = c.execute(f"SELECT {_MSG_COLS} FROM inbox WHERE channel=? AND control_id=?",
                          (channel, control_id)).fetchone()
        return _msg(r)

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

    def message(self, message_id: int) -> StoredMessage | None:
        r = self._conn().execute(f"SELECT {_MSG_COLS} FROM inbox WHERE id=?",
                                 (message_id,)).fetchone()
        return _msg(r) if r else None

    def message_by_control_id(self, channel: str, control_id: str) -> StoredMessage | None:
        r = self._conn().execute(f"SELECT {_MSG_COLS} FROM inbox WHERE channel=? AND "
                                 "control_id=?", (channel, control_id)).fetchone()
        return _msg(r) if r else None

    def messages(self, *, since: float | None = None, until: float | None = None,
                 status: str | None = None, limit: int = 1000) -> list[StoredMessage]:
        q, args = f"SELECT {_MSG_COLS} FROM inbox WHERE 1=1", []
        for cond, val in (("received_at >= ?", since), ("received_at < ?", until),
                          ("status = ?", status)):
            if val is not None:
                q += f" AND {cond}"
                args.append(val)
        q += " ORDER BY id LIMIT ?"
        return [_msg(r) for r in self._conn().execute(q, (*args, limit))]

    def purge_candidates(self, rule: PurgeRule, *, after: int = 0,
                         limit: int = 500) -> list[StoredMessage]:
        q, args = purge_where(rule, after, "?", "published = 1")
        return [_msg(r) for r in self._conn().execute(
            f"SELECT {_MSG_COLS} FROM inbox WHERE {q} ORDER BY id LIMIT ?", (*args, limit))]

    def purge_bodies(self, ids: Sequence[int], now: float) -> int:
        with self._write() as c:
            return sum(c.execute("UPDATE inbox SET raw = x'', purged_at = ? WHERE id = ? AND "
                                 "purged_at = 0", (now, i)).rowcount for i in ids)

    def message_page(self, query: MessageQuery, *, before: int | None = None,
                     limit: int = 50) -> list[StoredMessage]:
        cond, args = where(query, before, SQLITE)
        return [_msg(r) for r in self._conn().execute(
            f"SELECT {_MSG_COLS} FROM inbox{cond} ORDER BY id DESC LIMIT ?", (*args, limit))]

    def message_counts(self, since: float | None = None) -> dict[tuple[str, str, str], int]:
        q = "SELECT channel, status, ack_code, count(*) FROM inbox"
        args: tuple[float, ...] = ()
        if since is not None:
            q, args = q + " WHERE received_at >= ?", (since,)
        return {(ch, st, ack): int(n) for ch, st, ack, n in
                self._conn().execute(q + " GROUP BY channel, status, ack_code", args)}

    def accepted_events(self, since: float | None = None) -> list[tuple[float, bytes]]:
        q = "SELECT received_at, events FROM inbox WHERE status='accepted'"
        args: tuple[float, ...] = ()
        if since is not None:
            q, args = q + " AND received_at >= ?", (since,)
        return [(t, bytes(ev)) for t, ev in self._conn().execute(q + " ORDER BY id", args)]

    def inbox_after(self, after: int,
                    limit: int = 10_000) -> list[tuple[int, str, float, bytes]]:
        # one writer at a time: ids commit in order, so every committed id is final
        return [(int(i), st, t, bytes(ev)) for i, st, t, ev in self._conn().execute(
            "SELECT id, status, received_at, events FROM inbox WHERE id > ? "
            "ORDER BY id LIMIT ?", (after, limit))]

    def journal_after(self, after: int, limit: int = 10_000) -> list[tuple[int, JournalEntry]]:
        c = self._conn()
        rows = c.execute(
            "SELECT rowid, entry_key, posted_on, period, channel, memo, correlation_id, "
            "causation_id, reverses, moved_from FROM journal_entries WHERE rowid > ? "
            "ORDER BY rowid LIMIT ?", (after, limit)).fetchall()
        lines: dict[str, list[JournalLine]] = {}
        if rows:  # the lines of the same rowid range, in one pass
            for ek, acc, debit, credit, cur, co, cc, sl, tok in c.execute(
                "SELECT l.entry_key, l.account, l.debit, l.credit, l.currency, l.company, "
                "l.cost_center, l.service_line, l.account_token FROM journal_entries e "
                "JOIN journal_lines l ON l.entry_key = e.entry_key WHERE e.rowid > ? AND "
                "e.rowid <= ? ORDER BY e.rowid, l.line_no", (after, rows[-1][0])):
                lines.setdefault(ek, []).append(
                    _line(acc, debit, credit, cur, co, cc, sl, tok))
        return [(int(r[0]), JournalEntry(
            entry_key=r[1], posted_on=date.fromisoformat(r[2]), period=r[3], channel=r[4],
            memo=r[5], lines=tuple(lines.get(r[1], ())), correlation_id=r[6],
            causation_id=r[7], reverses=r[8], moved_from=r[9])) for r in rows]

    # ledger --------------------------------------------------------------
    def journal_lines(self) -> Iterator[JournalLine]:
        for acc, debit, credit, cur, co, cc, sl, tok in self._conn().execute(
            "SELECT account, debit, credit, currency, company, cost_center, service_line, "
            "account_token FROM journal_lines"):
            yield _line(acc, debit, credit, cur, co, cc, sl, tok)

    def entries(self, *, correlation_id: str | None = None,
                unbatched_channel: str | None = None, limit: int = 100_000) -> list[JournalEntry]:
        q = ("SELECT entry_key, posted_on, period, channel, memo, correlation_id, causation_id, "
             "reverses, moved_from FROM journal_entries")
        if correlation_id is not None:
            rows = self._conn().execute(q + " WHERE correlation_id=? ORDER BY rowid LIMIT ?",
                                        (correlation_id, limit)).fetchall()
        elif unbatched_channel is not None:
            rows = self._conn().execute(
                q + " WHERE batch_id IS NULL AND channel=? ORDER BY rowid LIMIT ?",
                (unbatched_channel, limit)).fetchall()
        else:
            rows = self._conn().execute(q + " ORDER BY rowid LIMIT ?", (limit,)).fetchall()
        lines: dict[str, list[JournalLine]] = {}
        keys = [r[0] for r in rows]
        c = self._conn()
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            for ek, acc, debit, credit, cur, co, cc, sl, tok in c.execute(
                "SELECT entry_key, account, debit, credit, currency, company, cost_center, "
                f"service_line, account_token FROM journal_lines WHERE entry_key IN "
                f"({','.join('?' * len(chunk))}) ORDER BY entry_key, line_no", chunk):
                lines.setdefault(ek, []).append(
                    _line(acc, debit, credit, cur, co, cc, sl, tok))
        return [JournalEntry(entry_key=r[0], posted_on=date.fromisoformat(r[1]), period=r[2],
                             channel=r[3], memo=r[4], lines=tuple(lines.get(r[0], ())),
                             correlation_id=r[5], causation_id=r[6], reverses=r[7],
                             moved_from=r[8])
                for r in rows]

    def entry_batches(self, entry_keys: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for k in entry_keys:
            r = self._conn().execute("SELECT batch_id FROM journal_entries WHERE entry_key=?",
                                     (k,)).fetchone()
            if r and r[0]:
                out[k] = r[0]
        return out

    def unbatched_channels(self) -> list[str]:
        return [r[0] for r in self._conn().execute(
            "SELECT DISTINCT channel FROM journal_entries WHERE batch_id IS NULL ORDER BY 1")]

    def record_batch(self, batch: JournalBatch, outbox: Sequence[tuple[str, str, bytes]],
                     now: float) -> bool:
        """Seal a batch: mark its entries, keep its body, queue its files. All or nothing."""
        try:
            with self._write() as c:
                cur = c.execute("INSERT OR IGNORE INTO batches VALUES (?,?,?,?,?,?)",
                                (batch.batch_id, batch.channel, batch.policy, len(batch.lines),
                                 now, _batch_enc.encode(batch)))
                if cur.rowcount != 1:
                    return False
                sealed = c.executemany(
                    "UPDATE journal_entries SET batch_id=? WHERE entry_key=? AND batch_id IS "
                    "NULL", [(batch.batch_id, k) for k in batch.entry_keys]).rowcount
                if sealed != len(batch.entry_keys):
                    raise _AlreadySealed
                c.executemany(
                    "INSERT OR IGNORE INTO outbox(destination, batch_id, fmt, payload, "
                    "created_at) VALUES (?,?,?,?,?)",
                    [(d, batch.batch_id, f, p, now) for d, f, p in outbox])
        except _AlreadySealed:
            return False  # rolled back: another batch holds one of these entries
        return True

    def batches(self) -> list[tuple[str, str, int, float]]:
        return [(str(r[0]), str(r[1]), int(r[2]), float(r[3])) for r in self._conn().execute(
            "SELECT batch_id, channel, line_count, created_at FROM batches ORDER BY created_at")]

    def batch_body(self, batch_id: str) -> bytes | None:
        r = self._conn().execute("SELECT body FROM batches WHERE batch_id=?",
                                 (batch_id,)).fetchone()
        return bytes(r[0]) if r else None

    # outbox --------------------------------------------------------------
    def outbox_due(self, destination: str, now: float, limit: int) -> list[OutboxItem]:
        return [OutboxItem(*r) for r in self._conn().execute(
            f"SELECT {_OB_COLS} FROM outbox WHERE destination=? AND status='pending' "
            "AND visible_at<=? AND id < coalesce((SELECT min(id) FROM outbox WHERE "
            "destination=? AND status='pending' AND visible_at>?), 1<<62) "  # keep order
            "ORDER BY id LIMIT ?", (destination, now, destination, now, limit))]

    def outbox_settle(self, item_id: int, *, status: str, error: str = "",
                      visible_at: float = 0.0) -> None:
        with self._write() as c:
            c.execute("UPDATE outbox SET status=?, last_error=?, visible_at=?, "
                      "attempts=attempts+1, sent_at=CASE WHEN ?='sent' THEN ? END WHERE id=?",
                      (status, error[:2000], visible_at, status, visible_at, item_id))

    def outbox_items(self, status: str | None = None) -> list[OutboxItem]:
        q = f"SELECT {_OB_COLS} FROM outbox" + (" WHERE status=?" if status else "")
        return [OutboxItem(*r) for r in self._conn().execute(q + " ORDER BY id",
                                                            (status,) if status else ())]

    # work items ------------------------------------------------------------
    def work_items(self, status: str | None = None, limit: int = 1000,
                   after: int | None = None) -> list[WorkItem]:
        q = f"SELECT {_WI_COLS} FROM work_items WHERE id > ?" + (" AND status=?" if status
                                                                 else "")
        args = (-1 if after is None else after, *((status,) if status else ()), limit)
        return [WorkItem(*r) for r in self._conn().execute(q + " ORDER BY id LIMIT ?", args)]

    def work_item(self, item_id: int) -> WorkItem | None:
        r = self._conn().execute(f"SELECT {_WI_COLS} FROM work_items WHERE id=?",
                                 (item_id,)).fetchone()
        return WorkItem(*r) if r else None

    def work_items_for(self, correlation_id: str) -> list[WorkItem]:
        return [WorkItem(*r) for r in self._conn().execute(
            f"SELECT {_WI_COLS} FROM work_items WHERE correlation_id=? ORDER BY id",
            (correlation_id,))]

    def held_events(self, ref: str, limit: int = 1000) -> list[HeldEvent]:
        return [_held(r) for r in self._conn().execute(
            f"SELECT {_HE_COLS} FROM held_events WHERE ref=? ORDER BY held_at, event_id "
            "LIMIT ?", (ref, limit))]

    def holds_of(self, event_ids: Sequence[str]) -> list[HeldEvent]:
        rows: list[tuple[Any, ...]] = []
        for i in range(0, len(event_ids), 500):
            chunk = list(event_ids[i:i + 500])
            rows += self._conn().execute(
                f"SELECT {_HE_COLS} FROM held_events WHERE event_id IN "
                f"({','.join('?' * len(chunk))})", chunk).fetchall()
        return sorted((_held(r) for r in rows), key=lambda h: (h.ref, h.event_id))

    def hold_totals(self, refs: Sequence[str]) -> dict[str, HoldTotals]:
        rows: list[tuple[Any, ...]] = []
        for i in range(0, len(refs), 500):
            chunk = list(refs[i:i + 500])
            rows += self._conn().execute(
                "SELECT ref, currency, amount, held_at FROM held_events WHERE released_at=0 "
                f"AND ref IN ({','.join('?' * len(chunk))})", chunk).fetchall()
        return hold_totals_of(rows)

    def release_held(self, ref: str, event_ids: Sequence[str], now: float) -> int:
        with self._write() as c:
            return c.executemany(
                "UPDATE held_events SET released_at=? WHERE ref=? AND event_id=? AND "
                "released_at=0", [(now, ref, e) for e in event_ids]).rowcount

    def mapping_overrides(self, tables: Sequence[str]) -> list[tuple[str, str, str]]:
        if not tables:
            return []
        return [(str(t), str(c), str(v)) for t, c, v in self._conn().execute(
            "SELECT table_name, code, value FROM mapping_overrides WHERE table_name IN "
            f"({','.join('?' * len(tables))}) ORDER BY table_name, code", list(tables))]

    def deposit_records(self) -> list[DepositRecord]:
        return [_deposit(r) for r in self._conn().execute(
            f"SELECT {_DEP_COLS} FROM deposits ORDER BY rowid")]

    def set_work_item_status(self, item_id: int, status: str, resolution: str,
                             now: float) -> None:
        with self._write() as c:
            c.execute("UPDATE work_items SET status=?, resolution=?, updated_at=? WHERE id=?",
                      (status, resolution, now, item_id))

    def set_mapping_override(self, table: str, code: str, value: str) -> None:
        with self._write() as c:
            c.execute("INSERT INTO mapping_overrides VALUES (?,?,?) ON CONFLICT DO UPDATE SET "
                      "value=excluded.value", (table, code, value))

    def channel_states(self) -> dict[str, ChannelState]:
        return channel_meta.states(self._conn().execute(
            "SELECT name, value FROM meta WHERE name LIKE ?", (channel_meta.PREFIX + "%",)))

    def set_channel_state(self, name: str, state: str, by: str, reason: str,
                          now: float) -> ChannelState:
        out = ChannelState(state, by, reason, now)
        with self._write() as c:
            c.execute("INSERT INTO meta(name, value) VALUES (?,?) ON CONFLICT(name) DO "
                      "UPDATE SET value=excluded.value",
                      (channel_meta.key(name), channel_meta.encode(out)))
        return out

    def channel_counts(self) -> list[ChannelCount]:
        return [ChannelCount(ch, st, bool(pub), int(n), float(last))
                for ch, st, pub, n, last in self._conn().execute(
                    "SELECT channel, status, published, count(*), max(received_at) "
                    "FROM inbox GROUP BY channel, status, published")]

    def counts(self) -> dict[str, int]:
        c = self._conn()
        out = {}
        for name, q in (
            ("messages", "SELECT count(*) FROM inbox"),
            ("rejected", "SELECT count(*) FROM inbox WHERE status='rejected'"),
            ("unpublished", "SELECT count(*) FROM inbox WHERE published=0 AND "
                            "status<>'held'"),
            ("held", "SELECT count(*) FROM inbox WHERE status='held'"),
            ("patients", "SELECT count(*) FROM patients"),
            ("charges", "SELECT count(*) FROM charges"),
            ("journal_entries", "SELECT count(*) FROM journal_entries"),
            ("journal_lines", "SELECT count(*) FROM journal_lines"),
            ("open_work_items", "SELECT count(*) FROM work_items WHERE status='open'"),
            ("batches", "SELECT count(*) FROM batches"),
            ("outbox_pending", "SELECT count(*) FROM outbox WHERE status='pending'"),
        ):
            out[name] = int(c.execute(q).fetchone()[0])
        return out

    def refunds(self, status: str | None = None, limit: int = 1000,
                after: str | None = None) -> list[RefundRecord]:
        # keyset on the register's order: rows recorded after refund `after` (none if unknown)
        q = (f"SELECT {_RF_COLS} FROM refunds WHERE rowid > coalesce((SELECT rowid FROM "
             "refunds WHERE id=?), ?)" + (" AND status=?" if status else ""))
        args = (after or "", -1 if after is None else 1 << 62,
                *((status,) if status else ()), limit)
        return [_refund(r) for r in self._conn().execute(q + " ORDER BY rowid LIMIT ?", args)]

    def refund(self, refund_id: str) -> RefundRecord | None:
        r = self._conn().execute(f"SELECT {_RF_COLS} FROM refunds WHERE id=?",
                                 (refund_id,)).fetchone()
        return _refund(r) if r else None

    def close(self) -> None:
        with self._lock:
            for c in self._all:
                with contextlib.suppress(sqlite3.Error):
                    c.close()
            self._all.clear()
        self._local = threading.local()
