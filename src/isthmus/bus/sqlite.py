"""Embedded bus: the event log as a SQLite table in WAL mode.

One row per message; `part` is the partition of its key. Retry state (attempts, visible_at,
last_error) lives in the row, so a restart resumes exactly where the process died.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from isthmus.bus.ports import DeadLetter, Delivery, Publish, once_per_id, partition_of
from isthmus.store.sqlite_connection import connect

READY, DONE, DEAD = 0, 1, 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bus (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  msg_id TEXT NOT NULL UNIQUE,
  topic TEXT NOT NULL,
  key TEXT NOT NULL,
  part INTEGER NOT NULL,
  body BLOB NOT NULL,
  status INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  visible_at REAL NOT NULL DEFAULT 0,
  last_error TEXT,
  published_at REAL NOT NULL,
  settled_at REAL
);
CREATE INDEX IF NOT EXISTS bus_ready ON bus(part, status, seq);
CREATE TABLE IF NOT EXISTS leases (
  name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL
);
"""


class SqliteBus:
    """The bus port on one SQLite file: durable across restarts, for a single host."""

    def __init__(self, path: Path, *, partitions: int = 2, synchronous: str = "FULL") -> None:
        self.partitions = partitions
        self._conn = connect(path, synchronous=synchronous)
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def _tx(self, sql: str, rows: Sequence[tuple[object, ...]]) -> int:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.executemany(sql, rows)
                n = cur.rowcount
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            return n

    def publish(self, items: Sequence[Publish]) -> None:
        now = time.time()
        self._tx(
            "INSERT OR IGNORE INTO bus(msg_id, topic, key, part, body, published_at) "
            "VALUES (?,?,?,?,?,?)",
            [
                (p.msg_id, p.topic, p.key, partition_of(p.key, self.partitions), p.body, now)
                for p in items
            ],
        )

    def fetch(self, partition: int, limit: int, now: float) -> list[Delivery]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, msg_id, topic, key, body, attempts, visible_at FROM bus "
                "WHERE part=? AND status=0 ORDER BY seq LIMIT ?",
                (partition, limit * 4),
            ).fetchall()
        out: list[Delivery] = []
        blocked: set[str] = set()
        for seq, msg_id, topic, key, body, attempts, visible_at in rows:
            if key in blocked:
                continue
            if visible_at > now:
                blocked.add(key)
                continue
            out.append(Delivery(seq, msg_id, topic, key, body, attempts))
            if len(out) >= limit:
                break
        return out

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        now = time.time()
        self._tx(
            "UPDATE bus SET status=1, settled_at=? WHERE seq=?", [(now, d.seq) for d in deliveries]
        )

    def nak(self, delivery: Delivery, error: str, visible_at: float) -> None:
        self._tx(
            "UPDATE bus SET attempts=attempts+1, visible_at=?, last_error=? WHERE seq=?",
            [(visible_at, error[:2000], delivery.seq)],
        )

    def dead(self, delivery: Delivery, reason: str, now: float) -> None:
        self._tx(
            "UPDATE bus SET status=2, attempts=attempts+1, last_error=?, settled_at=? WHERE seq=?",
            [(reason[:2000], now, delivery.seq)],
        )

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, msg_id, topic, key, attempts, coalesce(last_error,''), "
                "coalesce(settled_at,0), body FROM bus WHERE status=2 ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [DeadLetter(*r) for r in rows]

    def replay(self, items: Sequence[Publish]) -> int:
        """Put messages back at the end of the log under the same id (delete, then insert)."""
        items = once_per_id(items)
        now = time.time()
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.executemany("DELETE FROM bus WHERE msg_id=?", [(p.msg_id,) for p in items])
                cur.executemany(
                    "INSERT INTO bus(msg_id, topic, key, part, body, published_at) "
                    "VALUES (?,?,?,?,?,?)",
                    [
                        (
                            p.msg_id,
                            p.topic,
                            p.key,
                            partition_of(p.key, self.partitions),
                            p.body,
                            now,
                        )
                        for p in items
                    ],
                )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return len(items)

    def replay_dead(self, seqs: Sequence[int] | None = None) -> int:
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, msg_id, topic, key, body FROM bus WHERE status=2 ORDER BY seq"
            ).fetchall()
        wanted = None if seqs is None else set(seqs)
        items = [Publish(m, t, k, b) for s, m, t, k, b in rows if wanted is None or s in wanted]
        return self.replay(items) if items else 0

    def pending(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT count(*) FROM bus WHERE status=0").fetchone()
        return int(row[0])

    def claim(self, name: str, owner: str, ttl_s: float, now: float) -> bool:
        return (
            self._tx(
                "INSERT INTO leases VALUES (?,?,?) ON CONFLICT(name) DO UPDATE SET "
                "owner=excluded.owner, expires_at=excluded.expires_at "
                "WHERE leases.owner=excluded.owner OR leases.expires_at<=?",
                [(name, owner, now + ttl_s, now)],
            )
            == 1
        )

    def release(self, name: str, owner: str) -> None:
        self._tx("DELETE FROM leases WHERE name=? AND owner=?", [(name, owner)])

    def holders(self, prefix: str, now: float) -> int:
        with self._lock:
            row = self._conn.execute(
                "SELECT count(*) FROM leases WHERE substr(name, 1, ?)=? AND expires_at>?",
                (len(prefix), prefix, now),
            ).fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()
