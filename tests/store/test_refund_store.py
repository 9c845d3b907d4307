"""The refund register on every store adapter: add once, read back exactly, pending per
account, decide only from pending (compare-and-set), undone with its transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from isthmus.store.memory import MemoryStore
from isthmus.store.ports import RefundRecord, Store
from isthmus.store.sqlite import SqliteStore
from tests.services import POSTGRES, require


def refund(
    rid: str, token: str = "PA-1", amount: str = "125.50", status: str = "pending"
) -> RefundRecord:
    return RefundRecord(
        id=rid,
        idempotency_key=f"key-{rid}",
        account_number="A1",
        account_token=token,
        company="C100",
        amount=Decimal(amount),
        currency="USD",
        reason="overpaid",
        status=status,
        requested_by="alice",
        requested_at=1000.5,
    )


class RefundRegisterContract:
    def test_add_once_and_read_back_exactly(self, store: Store) -> None:
        r = refund("RF-1")
        with store.transaction() as tx:
            assert tx.add_refund(r)
            assert not tx.add_refund(refund("RF-1", amount="1.00"))
            assert tx.get_refund("RF-1") == r
        assert store.refund("RF-1") == r and store.refund("RF-2") is None
        assert store.refund("RF-1").amount.as_tuple().exponent == -2  # type: ignore[union-attr]

    def test_pending_per_account_and_decide_once(self, store: Store) -> None:
        with store.transaction() as tx:
            tx.lock_refunds("PA-1")
            for r in (refund("RF-1"), refund("RF-2"), refund("RF-3", token="PA-2")):
                tx.add_refund(r)
            assert [r.id for r in tx.pending_refunds("PA-1")] == ["RF-1", "RF-2"]
            assert tx.decide_refund(
                "RF-1",
                status="posted",
                decided_by="bob",
                decided_at=2000.0,
                note="ok",
                entry_key="refund/RF-1",
            )
            assert not tx.decide_refund(
                "RF-1", status="rejected", decided_by="carol", decided_at=2001.0, note="late"
            )
            assert not tx.decide_refund(
                "RF-9", status="posted", decided_by="bob", decided_at=1.0, note=""
            )
            assert [r.id for r in tx.pending_refunds("PA-1")] == ["RF-2"]
        got = store.refund("RF-1")
        assert got is not None and (
            got.status,
            got.decided_by,
            got.decided_at,
            got.note,
            got.entry_key,
        ) == ("posted", "bob", 2000.0, "ok", "refund/RF-1")
        assert [r.id for r in store.refunds()] == ["RF-1", "RF-2", "RF-3"]
        assert [r.id for r in store.refunds("pending", limit=1)] == ["RF-2"]

    def test_undone_with_its_transaction(self, store: Store) -> None:
        with store.transaction() as tx:
            tx.add_refund(refund("RF-1"))
        with pytest.raises(RuntimeError), store.transaction() as tx:
            tx.add_refund(refund("RF-2"))
            tx.decide_refund("RF-1", status="rejected", decided_by="bob", decided_at=1.0, note="no")
            raise RuntimeError
        assert [(r.id, r.status) for r in store.refunds()] == [("RF-1", "pending")]


class TestMemory(RefundRegisterContract):
    @pytest.fixture
    def store(self) -> Iterator[Store]:
        s = MemoryStore()
        yield s
        s.close()


class TestSqlite(RefundRegisterContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        s = SqliteStore(tmp_path / "store.db", synchronous="NORMAL")
        yield s
        s.close()


@pytest.mark.service
class TestPostgres(RefundRegisterContract):
    @pytest.fixture
    def store(self) -> Iterator[Store]:
        require("PostgreSQL", *POSTGRES)
        from isthmus.store.postgres import PostgresStore  # noqa: PLC0415 - scale-out only

        dsn = f"postgresql://postgres@{POSTGRES[0]}:{POSTGRES[1]}/test"
        schema = f"t_{uuid.uuid4().hex}"
        s = PostgresStore(dsn, schema=schema)
        try:
            yield s
        finally:
            s.close()
            with psycopg.connect(dsn, autocommit=True) as c:
                c.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )
