"""The governance contract against PostgreSQL, and tampering caught there too.

Every test gets a schema of its own in database `test`, dropped afterwards. Needs a server
at tests.services.POSTGRES (skipped locally without one, a failure under CI=true).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from isthmus.governance import audit
from isthmus.governance.ports import GovernanceStore
from isthmus.store.postgres_governance import PostgresGovernance
from tests.governance.contract import GovernanceContract
from tests.services import POSTGRES, require

pytestmark = pytest.mark.service

HOST, PORT = POSTGRES
DSN = f"postgresql://postgres@{HOST}:{PORT}/test"


@pytest.fixture
def schema() -> Iterator[str]:
    require("PostgreSQL", *POSTGRES)
    name = f"g_{uuid.uuid4().hex}"
    yield name
    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


class TestPostgresGovernance(GovernanceContract):
    @pytest.fixture
    def gov(self, schema: str) -> GovernanceStore:
        return PostgresGovernance(DSN, schema=schema)


def test_reopening_keeps_everything(schema: str) -> None:
    gov = PostgresGovernance(DSN, schema=schema)
    audit.record(gov, "admin", "cli backup")
    again = PostgresGovernance(DSN, schema=schema)
    assert again.audit_rows() == gov.audit_rows() and again.audit_head() is not None


def test_edit_and_delete_are_caught(schema: str) -> None:
    gov = PostgresGovernance(DSN, schema=schema)
    for i in range(5):
        audit.record(gov, "admin", "cli replay", str(i))
    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            c.execute("UPDATE gov_audit SET actor = 'mallory' WHERE seq = 2")
        c.execute("ALTER TABLE gov_audit DISABLE TRIGGER gov_audit_append_only")
        c.execute("UPDATE gov_audit SET actor = 'mallory' WHERE seq = 2")
    fault = audit.verify(gov.audit_rows(), gov.audit_head())
    assert fault is not None and fault.seq == 2 and "edited" in fault.reason
    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        c.execute("UPDATE gov_audit SET actor = 'admin' WHERE seq = 2")
        c.execute("DELETE FROM gov_audit WHERE seq = 4")
    fault = audit.verify(gov.audit_rows(), gov.audit_head())
    assert fault is not None and fault.seq == 4 and "deleted" in fault.reason
