"""Scale-out governance store: principals, token digests and the audit chain in PostgreSQL.

The tables sit in the hub's own schema (the one PostgresStore uses, `site_name` unless
configured), prefixed `gov_`. One short connection per call: governance calls are few (a
token check per HTTP request, an audit row per admin action), and holding no pool keeps
this adapter independent of the store's. Appends to the audit chain take a transaction-level
advisory lock, so writers from several processes line up and the chain stays linear.
A trigger refuses UPDATE and DELETE on the audit table (a guard against mistakes; the hash
chain is what catches a superuser).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from isthmus.governance.audit import AuditEvent, AuditRow, seal
from isthmus.governance.identity import Principal, Token
from isthmus.store.sqlite_connection import StorageUnavailable
from isthmus.store.sqlite_governance import (
    audit_params,
    principal_of,
    row_of,
    token_of,
    token_params,
)

Conn = psycopg.Connection[TupleRow]
_DDL_LOCK = 0x15_7406  # one more than postgres_schema's migration lock
_AUDIT_LOCK = 0x15_7407
# gov_tokens columns
_TCOLS = "id, principal, scopes, digest, created_at, expires_at, revoked_at, created_by"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS gov_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS gov_principals (
    name TEXT PRIMARY KEY, kind TEXT NOT NULL, roles TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS gov_tokens (
    id TEXT PRIMARY KEY, principal TEXT NOT NULL REFERENCES gov_principals(name),
    scopes TEXT NOT NULL, digest TEXT NOT NULL UNIQUE, created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION, revoked_at DOUBLE PRECISION,
    created_by TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS gov_audit (
    seq BIGINT PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    target TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE OR REPLACE FUNCTION gov_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END $$;
CREATE OR REPLACE TRIGGER gov_audit_append_only BEFORE UPDATE OR DELETE ON gov_audit
    FOR EACH ROW EXECUTE FUNCTION gov_audit_append_only();
"""


class PostgresGovernance:
    def __init__(self, dsn: str, *, schema: str) -> None:
        self.dsn = dsn
        self.schema = schema
        with self._conn() as c, c.transaction():
            c.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
            c.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            c.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
            c.execute(_SCHEMA)

    @contextlib.contextmanager
    def _conn(self) -> Iterator[Conn]:
        try:
            with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
                conn.execute(sql.SQL("SET search_path TO {}").format(
                    sql.Identifier(self.schema)))
                yield conn
        except psycopg.OperationalError as exc:
            raise StorageUnavailable(f"PostgreSQL: {exc}") from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[Conn]:
        with self._conn() as c, c.transaction():
            yield c

    def initialized(self) -> bool:
        with self._conn() as c:
            return c.execute("SELECT 1 FROM gov_meta WHERE key = 'initialized_at'"
                             ).fetchone() is not None

    def initialize(self, admin: Principal, token: Token) -> bool:
        with self._write() as c:
            c.execute("LOCK TABLE gov_meta IN EXCLUSIVE MODE")
            if c.execute("SELECT 1 FROM gov_meta WHERE key = 'initialized_at'").fetchone():
                return False
            c.execute("INSERT INTO gov_meta VALUES ('initialized_at', %s)",
                      (repr(token.created_at),))
            self._save(c, admin)
            c.execute(f"INSERT INTO gov_tokens ({_TCOLS}) VALUES "
                      "(%s,%s,%s,%s,%s,%s,%s,%s)", token_params(token))
            return True

    @staticmethod
    def _save(c: Conn, p: Principal) -> None:
        c.execute("INSERT INTO gov_principals VALUES (%s,%s,%s,%s) ON CONFLICT (name) "
                  "DO UPDATE SET roles = excluded.roles",
                  (p.name, p.kind, ",".join(p.roles), p.created_at))

    def save_principal(self, principal: Principal) -> None:
        with self._write() as c:
            self._save(c, principal)

    def principal(self, name: str) -> Principal | None:
        with self._conn() as c:
            r = c.execute("SELECT name, kind, roles, created_at FROM gov_principals "
                          "WHERE name = %s", (name,)).fetchone()
        return None if r is None else principal_of(r)

    def add_token(self, token: Token) -> None:
        with self._write() as c:
            c.execute(f"INSERT INTO gov_tokens ({_TCOLS}) VALUES "
                      "(%s,%s,%s,%s,%s,%s,%s,%s)", token_params(token))

    def token_by_digest(self, digest: str) -> Token | None:
        with self._conn() as c:
            r = c.execute(f"SELECT {_TCOLS} FROM gov_tokens WHERE digest = %s",
                          (digest,)).fetchone()
        return None if r is None else token_of(r)

    def tokens(self) -> list[Token]:
        with self._conn() as c:
            rows = c.execute(f"SELECT {_TCOLS} FROM gov_tokens ORDER BY created_at, id"
                             ).fetchall()
        return [token_of(r) for r in rows]

    def revoke_token(self, token_id: str, at: float) -> Token | None:
        with self._write() as c:
            c.execute("UPDATE gov_tokens SET revoked_at = %s WHERE id = %s AND revoked_at "
                      "IS NULL", (at, token_id))
            r = c.execute(f"SELECT {_TCOLS} FROM gov_tokens WHERE id = %s",
                          (token_id,)).fetchone()
        return None if r is None else token_of(r)

    def append_audit(self, event: AuditEvent) -> AuditRow:
        with self._write() as c:
            c.execute("SELECT pg_advisory_xact_lock(%s)", (_AUDIT_LOCK,))
            row = seal(self._head(c), event)
            c.execute("INSERT INTO gov_audit VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                      audit_params(row))
            c.execute("INSERT INTO gov_meta VALUES ('audit_head', %s) ON CONFLICT (key) "
                      "DO UPDATE SET value = excluded.value", (f"{row.seq}:{row.hash}",))
            return row

    @staticmethod
    def _head(c: Conn) -> tuple[int, str] | None:
        r: Any = c.execute("SELECT value FROM gov_meta WHERE key = 'audit_head'").fetchone()
        if r is None:
            return None
        seq, _, digest = str(r[0]).partition(":")
        return int(seq), digest

    def audit_rows(self, *, after: int = 0, limit: int | None = None) -> list[AuditRow]:
        with self._conn() as c:
            rows = c.execute("SELECT * FROM gov_audit WHERE seq > %s ORDER BY seq LIMIT %s",
                             (after, limit)).fetchall()
        return [row_of(r) for r in rows]

    def audit_head(self) -> tuple[int, str] | None:
        with self._conn() as c:
            return self._head(c)
