"""Embedded governance store: principals, token digests and the audit chain in SQLite.

Its own file, `data_dir/governance.db` (created owner-only, 0600), so it never meets the
store's migrations, and `isthmus backup` copies it with the rest. One connection per call
(WAL, synchronous=FULL, sqlite_connection.connect): calls come from CLI commands and from
the HTTP threads, are few and short, and no connection is shared between threads.

The audit table refuses UPDATE and DELETE through triggers. That stops a mistake, not an
attacker with the file (who can drop the trigger); the hash chain is what catches them.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from isthmus.governance.audit import AuditEvent, AuditRow, seal
from isthmus.governance.identity import Principal, Token
from isthmus.store.sqlite_connection import StorageUnavailable, connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS gov_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS gov_principals (
    name TEXT PRIMARY KEY, kind TEXT NOT NULL, roles TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS gov_tokens (
    id TEXT PRIMARY KEY, principal TEXT NOT NULL REFERENCES gov_principals(name),
    scopes TEXT NOT NULL, digest TEXT NOT NULL UNIQUE, created_at REAL NOT NULL,
    expires_at REAL, revoked_at REAL, created_by TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS gov_audit (
    seq INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    target TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS gov_audit_no_update BEFORE UPDATE ON gov_audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS gov_audit_no_delete BEFORE DELETE ON gov_audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
"""
# gov_tokens columns
_TCOLS = "id, principal, scopes, digest, created_at, expires_at, revoked_at, created_by"


def token_of(r: Sequence[Any]) -> Token:
    return Token(r[0], r[1], tuple(x for x in r[2].split(",") if x), r[3], float(r[4]),
                 None if r[5] is None else float(r[5]),
                 None if r[6] is None else float(r[6]), r[7])


def principal_of(r: Sequence[Any]) -> Principal:
    return Principal(r[0], r[1], tuple(x for x in r[2].split(",") if x), float(r[3]))


def row_of(r: Sequence[Any]) -> AuditRow:
    return AuditRow(int(r[0]), AuditEvent(r[1], r[2], r[3], r[4], r[5], r[6]), r[7], r[8])


def token_params(t: Token) -> tuple[Any, ...]:
    return (t.id, t.principal, ",".join(t.scopes), t.digest, t.created_at, t.expires_at,
            t.revoked_at, t.created_by)


def audit_params(row: AuditRow) -> tuple[Any, ...]:
    e = row.event
    return (row.seq, e.at, e.actor, e.action, e.target, e.outcome, e.detail, row.prev_hash,
            row.hash)


class SqliteGovernance:
    def __init__(self, path: Path) -> None:
        self.path = path
        with self._conn() as c:  # made 0600 in a 0700 directory (private_files)
            c.executescript(SCHEMA)

    @contextlib.contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = connect(self.path)
        try:
            yield conn
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"{self.path}: {exc}") from exc
        finally:
            conn.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._conn() as c:
            c.execute("BEGIN IMMEDIATE")
            try:
                yield c
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")

    def initialized(self) -> bool:
        with self._conn() as c:
            return c.execute("SELECT 1 FROM gov_meta WHERE key = 'initialized_at'"
                             ).fetchone() is not None

    def initialize(self, admin: Principal, token: Token) -> bool:
        with self._write() as c:
            if c.execute("SELECT 1 FROM gov_meta WHERE key = 'initialized_at'").fetchone():
                return False
            c.execute("INSERT INTO gov_meta VALUES ('initialized_at', ?)",
                      (repr(token.created_at),))
            self._save(c, admin)
            c.execute(f"INSERT INTO gov_tokens ({_TCOLS}) VALUES (?,?,?,?,?,?,?,?)",
                      token_params(token))
            return True

    @staticmethod
    def _save(c: sqlite3.Connection, p: Principal) -> None:
        c.execute("INSERT INTO gov_principals VALUES (?,?,?,?) ON CONFLICT (name) "
                  "DO UPDATE SET roles = excluded.roles",
                  (p.name, p.kind, ",".join(p.roles), p.created_at))

    def save_principal(self, principal: Principal) -> None:
        with self._write() as c:
            self._save(c, principal)

    def principal(self, name: str) -> Principal | None:
        with self._conn() as c:
            r = c.execute("SELECT name, kind, roles, created_at FROM gov_principals "
                          "WHERE name = ?", (name,)).fetchone()
        return None if r is None else principal_of(r)

    def add_token(self, token: Token) -> None:
        with self._write() as c:
            c.execute(f"INSERT INTO gov_tokens ({_TCOLS}) VALUES (?,?,?,?,?,?,?,?)",
                      token_params(token))

    def token_by_digest(self, digest: str) -> Token | None:
        with self._conn() as c:
            r = c.execute(f"SELECT {_TCOLS} FROM gov_tokens WHERE digest = ?",
                          (digest,)).fetchone()
        return None if r is None else token_of(r)

    def tokens(self) -> list[Token]:
        with self._conn() as c:
            rows = c.execute(f"SELECT {_TCOLS} FROM gov_tokens ORDER BY created_at, id"
                             ).fetchall()
        return [token_of(r) for r in rows]

    def revoke_token(self, token_id: str, at: float) -> Token | None:
        with self._write() as c:
            c.execute("UPDATE gov_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS "
                      "NULL", (at, token_id))
            r = c.execute(f"SELECT {_TCOLS} FROM gov_tokens WHERE id = ?",
                          (token_id,)).fetchone()
        return None if r is None else token_of(r)

    def append_audit(self, event: AuditEvent) -> AuditRow:
        with self._write() as c:
            row = seal(self._head(c), event)
            c.execute("INSERT INTO gov_audit VALUES (?,?,?,?,?,?,?,?,?)", audit_params(row))
            c.execute("INSERT INTO gov_meta VALUES ('audit_head', ?) ON CONFLICT (key) "
                      "DO UPDATE SET value = excluded.value", (f"{row.seq}:{row.hash}",))
            return row

    @staticmethod
    def _head(c: sqlite3.Connection) -> tuple[int, str] | None:
        r = c.execute("SELECT value FROM gov_meta WHERE key = 'audit_head'").fetchone()
        if r is None:
            return None
        seq, _, digest = str(r[0]).partition(":")
        return int(seq), digest

    def audit_rows(self, *, after: int = 0, limit: int | None = None) -> list[AuditRow]:
        with self._conn() as c:
            rows = c.execute("SELECT * FROM gov_audit WHERE seq > ? ORDER BY seq LIMIT ?",
                             (after, -1 if limit is None else limit)).fetchall()
        return [row_of(r) for r in rows]

    def audit_head(self) -> tuple[int, str] | None:
        with self._conn() as c:
            return self._head(c)
