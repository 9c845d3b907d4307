"""The governance aggregate on SQL (SQLite and PostgreSQL): principals, token digests and
the hash-chained audit trail, written once (governance.ports.GovernanceStore).

The tables are prefixed `gov_`; the DDL is one text with the dialect's types (`{TIME}`
epoch seconds, `{SEQ}` the audit sequence) and its own append-only trigger. The adapters
(sqlite_governance.py, postgres_governance.py) give a connection per call (`_conn`), a
write transaction (`_write`), and their locks: who initializes first (`_initializing`) and
one audit writer at a time (`_appending`), so the chain stays linear.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Final

from isthmus.governance.audit import AuditEvent, AuditRow, seal
from isthmus.governance.identity import Principal, Token
from isthmus.store.sql_dialect import Dialect

DDL: Final = """
CREATE TABLE IF NOT EXISTS gov_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS gov_principals (
    name TEXT PRIMARY KEY, kind TEXT NOT NULL, roles TEXT NOT NULL, created_at {TIME} NOT NULL);
CREATE TABLE IF NOT EXISTS gov_tokens (
    id TEXT PRIMARY KEY, principal TEXT NOT NULL REFERENCES gov_principals(name),
    scopes TEXT NOT NULL, digest TEXT NOT NULL UNIQUE, created_at {TIME} NOT NULL,
    expires_at {TIME}, revoked_at {TIME}, created_by TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS gov_audit (
    seq {SEQ} PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    target TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
"""
_TCOLS: Final = "id, principal, scopes, digest, created_at, expires_at, revoked_at, created_by"
_AUDIT: Final = "seq, at, actor, action, target, outcome, detail, prev_hash, hash"
SQL: Final = {
    "initialized": "SELECT 1 FROM gov_meta WHERE key = 'initialized_at'",
    "meta_put": "INSERT INTO gov_meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
    "DO UPDATE SET value = excluded.value",
    "principal_put": "INSERT INTO gov_principals (name, kind, roles, created_at) "
    "VALUES (?,?,?,?) ON CONFLICT (name) DO UPDATE SET roles = excluded.roles",
    "principal_get": "SELECT name, kind, roles, created_at FROM gov_principals WHERE name = ?",
    "token_add": f"INSERT INTO gov_tokens ({_TCOLS}) VALUES (?,?,?,?,?,?,?,?)",
    "token_by_digest": f"SELECT {_TCOLS} FROM gov_tokens WHERE digest = ?",
    "token_by_id": f"SELECT {_TCOLS} FROM gov_tokens WHERE id = ?",
    "tokens": f"SELECT {_TCOLS} FROM gov_tokens ORDER BY created_at, id",
    "token_revoke": "UPDATE gov_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
    "audit_add": f"INSERT INTO gov_audit ({_AUDIT}) VALUES (?,?,?,?,?,?,?,?,?)",
    "audit_head": "SELECT value FROM gov_meta WHERE key = 'audit_head'",
    "audit_after": f"SELECT {_AUDIT} FROM gov_audit WHERE seq > ? ORDER BY seq LIMIT ?",
}


def token_of(r: Sequence[Any]) -> Token:
    """A Token from a `gov_tokens` row (scopes comma-separated)."""
    return Token(
        r[0],
        r[1],
        tuple(x for x in r[2].split(",") if x),
        r[3],
        float(r[4]),
        None if r[5] is None else float(r[5]),
        None if r[6] is None else float(r[6]),
        r[7],
    )


def principal_of(r: Sequence[Any]) -> Principal:
    """A Principal from a `gov_principals` row (roles comma-separated)."""
    return Principal(r[0], r[1], tuple(x for x in r[2].split(",") if x), float(r[3]))


def row_of(r: Sequence[Any]) -> AuditRow:
    """An AuditRow from a `gov_audit` row."""
    return AuditRow(int(r[0]), AuditEvent(r[1], r[2], r[3], r[4], r[5], r[6]), r[7], r[8])


def token_params(t: Token) -> tuple[Any, ...]:
    """The parameters that insert a token (scopes comma-separated)."""
    return (
        t.id,
        t.principal,
        ",".join(t.scopes),
        t.digest,
        t.created_at,
        t.expires_at,
        t.revoked_at,
        t.created_by,
    )


def audit_params(row: AuditRow) -> tuple[Any, ...]:
    """The parameters that append an audit row."""
    e = row.event
    return (
        row.seq,
        e.at,
        e.actor,
        e.action,
        e.target,
        e.outcome,
        e.detail,
        row.prev_hash,
        row.hash,
    )


class SqlGovernance:
    """The GovernanceStore methods on the adapter's `_conn`/`_write` connections."""

    _q: dict[str, str]
    _unlimited: int | None  # what LIMIT takes for "no limit"

    @classmethod
    def dialect(cls, d: Dialect) -> dict[str, str]:
        return d.compile(SQL)

    def _conn(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _initializing(self, c: Any) -> None:
        """Hold other initializers off until this transaction ends."""

    def _appending(self, c: Any) -> None:
        """Hold other audit writers off until this transaction ends."""

    def initialized(self) -> bool:
        with self._conn() as c:
            return c.execute(self._q["initialized"]).fetchone() is not None

    def initialize(self, admin: Principal, token: Token) -> bool:
        with self._write() as c:
            self._initializing(c)
            if c.execute(self._q["initialized"]).fetchone():
                return False
            c.execute(self._q["meta_put"], ("initialized_at", repr(token.created_at)))
            self._save(c, admin)
            c.execute(self._q["token_add"], token_params(token))
            return True

    def _save(self, c: Any, p: Principal) -> None:
        c.execute(self._q["principal_put"], (p.name, p.kind, ",".join(p.roles), p.created_at))

    def save_principal(self, principal: Principal) -> None:
        with self._write() as c:
            self._save(c, principal)

    def principal(self, name: str) -> Principal | None:
        with self._conn() as c:
            r = c.execute(self._q["principal_get"], (name,)).fetchone()
        return None if r is None else principal_of(r)

    def add_token(self, token: Token) -> None:
        with self._write() as c:
            c.execute(self._q["token_add"], token_params(token))

    def token_by_digest(self, digest: str) -> Token | None:
        with self._conn() as c:
            r = c.execute(self._q["token_by_digest"], (digest,)).fetchone()
        return None if r is None else token_of(r)

    def tokens(self) -> list[Token]:
        with self._conn() as c:
            rows = c.execute(self._q["tokens"]).fetchall()
        return [token_of(r) for r in rows]

    def revoke_token(self, token_id: str, at: float) -> Token | None:
        with self._write() as c:
            c.execute(self._q["token_revoke"], (at, token_id))
            r = c.execute(self._q["token_by_id"], (token_id,)).fetchone()
        return None if r is None else token_of(r)

    def append_audit(self, event: AuditEvent) -> AuditRow:
        with self._write() as c:
            self._appending(c)
            row = seal(self._head(c), event)
            c.execute(self._q["audit_add"], audit_params(row))
            c.execute(self._q["meta_put"], ("audit_head", f"{row.seq}:{row.hash}"))
            return row

    def _head(self, c: Any) -> tuple[int, str] | None:
        r = c.execute(self._q["audit_head"]).fetchone()
        if r is None:
            return None
        seq, _, digest = str(r[0]).partition(":")
        return int(seq), digest

    def audit_rows(self, *, after: int = 0, limit: int | None = None) -> list[AuditRow]:
        with self._conn() as c:
            rows = c.execute(
                self._q["audit_after"], (after, self._unlimited if limit is None else limit)
            ).fetchall()
        return [row_of(r) for r in rows]

    def audit_head(self) -> tuple[int, str] | None:
        with self._conn() as c:
            return self._head(c)
