"""Scale-out governance store: principals, token digests and the audit chain in PostgreSQL.

The tables sit in the hub's own schema (the one PostgresStore uses, `site_name` unless
configured), prefixed `gov_`. One short connection per call: governance calls are few (a
token check per HTTP request, an audit row per admin action), and holding no pool keeps
this adapter independent of the store's. The SQL is sql_governance.py's. Appends to the
audit chain take a transaction-level advisory lock, so writers from several processes line
up and the chain stays linear. A trigger refuses UPDATE and DELETE on the audit table (a
guard against mistakes; the hash chain is what catches a superuser).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from isthmus.errors import StorageUnavailable
from isthmus.store.sql_dialect import POSTGRES
from isthmus.store.sql_governance import DDL, SqlGovernance

Conn = psycopg.Connection[TupleRow]
_DDL_LOCK = 0x15_7406  # one more than postgres_schema's migration lock
_AUDIT_LOCK = 0x15_7407
_SCHEMA: Final = (
    DDL.replace("{TIME}", "DOUBLE PRECISION").replace("{SEQ}", "BIGINT")
    + """
CREATE OR REPLACE FUNCTION gov_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END $$;
CREATE OR REPLACE TRIGGER gov_audit_append_only BEFORE UPDATE OR DELETE ON gov_audit
    FOR EACH ROW EXECUTE FUNCTION gov_audit_append_only();
"""
)


class PostgresGovernance(SqlGovernance):
    """The governance store on PostgreSQL, in the site's schema."""

    _q = SqlGovernance.dialect(POSTGRES)
    _unlimited = None

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
                conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
                yield conn
        except psycopg.OperationalError as exc:
            raise StorageUnavailable(f"PostgreSQL: {exc}") from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[Conn]:
        with self._conn() as c, c.transaction():
            yield c

    def _initializing(self, c: Any) -> None:
        c.execute("LOCK TABLE gov_meta IN EXCLUSIVE MODE")

    def _appending(self, c: Any) -> None:
        c.execute("SELECT pg_advisory_xact_lock(%s)", (_AUDIT_LOCK,))
