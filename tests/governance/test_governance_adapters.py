"""The governance contract against the embedded adapters, and tampering caught in SQLite."""

from __future__ import annotations

import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest

from isthmus.governance import audit
from isthmus.governance.ports import GovernanceStore
from isthmus.store.memory_governance import MemoryGovernance
from isthmus.store.sqlite_governance import SqliteGovernance
from tests.governance.contract import GovernanceContract


class TestMemoryGovernance(GovernanceContract):
    @pytest.fixture
    def gov(self) -> GovernanceStore:
        return MemoryGovernance()


class TestSqliteGovernance(GovernanceContract):
    @pytest.fixture
    def gov(self, tmp_path: Path) -> GovernanceStore:
        return SqliteGovernance(tmp_path / "governance.db")


def _chain(path: Path, n: int = 6) -> SqliteGovernance:
    gov = SqliteGovernance(path)
    for i in range(n):
        audit.record(gov, "admin", "cli workitems resolve", str(i), mapping={"k": i})
    assert audit.verify(gov.audit_rows(), gov.audit_head()) is None
    return gov


def _sql(path: Path, *statements: str) -> None:
    with closing(sqlite3.connect(path)) as c:
        for s in statements:
            c.execute(s)
        c.commit()


def test_file_is_owner_only(tmp_path: Path) -> None:
    SqliteGovernance(tmp_path / "governance.db")
    assert stat.S_IMODE((tmp_path / "governance.db").stat().st_mode) == 0o600


def test_triggers_refuse_update_and_delete(tmp_path: Path) -> None:
    path = tmp_path / "governance.db"
    _chain(path)
    for stmt in (
        "UPDATE gov_audit SET actor = 'x' WHERE seq = 2",
        "DELETE FROM gov_audit WHERE seq = 2",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            _sql(path, stmt)


@pytest.mark.parametrize(
    ("column", "value"),
    [("actor", "'mallory'"), ("detail", "'{}'"), ("outcome", "'denied'"), ("at", "'2020'")],
)
def test_verify_catches_an_edited_row(tmp_path: Path, column: str, value: str) -> None:
    path = tmp_path / "governance.db"
    gov = _chain(path)
    _sql(
        path,
        "DROP TRIGGER gov_audit_no_update",
        f"UPDATE gov_audit SET {column} = {value} WHERE seq = 3",
    )
    fault = audit.verify(gov.audit_rows(), gov.audit_head())
    assert fault is not None and fault.seq == 3 and "edited" in fault.reason


def test_verify_catches_a_rehashed_row(tmp_path: Path) -> None:
    """Editing a row and recomputing its own hash breaks the next row's link."""
    path = tmp_path / "governance.db"
    gov = _chain(path)
    row = gov.audit_rows()[2]
    forged = audit.AuditEvent(
        row.event.at,
        "mallory",
        row.event.action,
        row.event.target,
        row.event.outcome,
        row.event.detail,
    )
    new_hash = audit.chain_hash(row.prev_hash, row.seq, forged)
    _sql(
        path,
        "DROP TRIGGER gov_audit_no_update",
        f"UPDATE gov_audit SET actor = 'mallory', hash = '{new_hash}' WHERE seq = 3",
    )
    fault = audit.verify(gov.audit_rows(), gov.audit_head())
    assert fault is not None and fault.seq == 4 and "prev_hash" in fault.reason


def test_verify_catches_a_deleted_row(tmp_path: Path) -> None:
    path = tmp_path / "governance.db"
    gov = _chain(path)
    _sql(path, "DROP TRIGGER gov_audit_no_delete", "DELETE FROM gov_audit WHERE seq = 2")
    fault = audit.verify(gov.audit_rows(), gov.audit_head())
    assert fault is not None and fault.seq == 2 and "deleted" in fault.reason


def test_verify_catches_deleted_rows_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "governance.db"
    gov = _chain(path)
    _sql(path, "DROP TRIGGER gov_audit_no_delete", "DELETE FROM gov_audit WHERE seq >= 5")
    fault = audit.verify(gov.audit_rows(), gov.audit_head())
    assert fault is not None and fault.seq == 5 and "end" in fault.reason
