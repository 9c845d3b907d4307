"""Run the store contract against every embedded adapter, plus what only SQLite can show."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import cast

import pytest

from isthmus.store.memory import MemoryStore
from isthmus.store.ports import Patient, Store
from isthmus.store.sqlite import SqliteStore
from tests.store.contract import FILES, StoreContract, detailed, entry, inbound, post
from tests.store.contract_channels import ChannelContract
from tests.store.contract_find import FindContract


class TestMemoryStore(StoreContract, FindContract, ChannelContract):
    @pytest.fixture
    def store(self) -> Iterator[Store]:
        s = MemoryStore()
        yield s
        s.close()

    def encounter_row(
        self, store: Store, visit_number: str
    ) -> tuple[str, str, str, str, str] | None:
        return cast(MemoryStore, store).encounter(visit_number)

    def billing_account_row(self, store: Store, account_number: str) -> tuple[str, str] | None:
        return cast(MemoryStore, store).billing_account(account_number)


def _row(path: Path, query: str, key: str) -> tuple[str, ...] | None:
    """Read what is committed in the file, through a connection of its own."""
    with closing(sqlite3.connect(path)) as c:
        r = c.execute(query, (key,)).fetchone()
    return tuple(r) if r else None


class TestSqliteStore(StoreContract, FindContract, ChannelContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        s = SqliteStore(tmp_path / "store.db", synchronous="NORMAL")
        yield s
        s.close()

    def encounter_row(
        self, store: Store, visit_number: str
    ) -> tuple[str, str, str, str, str] | None:
        r = _row(
            cast(SqliteStore, store).path,
            "SELECT patient_key, facility, patient_class, status, updated_at "
            "FROM encounters WHERE visit_number=?",
            visit_number,
        )
        return None if r is None else (r[0], r[1], r[2], r[3], r[4])

    def billing_account_row(self, store: Store, account_number: str) -> tuple[str, str] | None:
        r = _row(
            cast(SqliteStore, store).path,
            "SELECT patient_key, facility FROM billing_accounts WHERE account_number=?",
            account_number,
        )
        return None if r is None else (r[0], r[1])


# --- SQLite only: durability and several connections on one file ---------------------------


def test_sqlite_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    s = SqliteStore(path)
    [a] = s.accept([inbound("C1")])
    e1, e2 = entry("E1"), entry("E2")
    post(s, e1, e2)
    with s.transaction() as tx:
        tx.put_patient(Patient(key="HOSP|1", mrn="1", authority="HOSP", token="PA-1"))
        tx.add_work_item(
            kind="k",
            queue="q",
            key="x",
            event_id="ev1",
            correlation_id="c",
            detail="d",
            envelope=b"e",
            now=1.0,
        )
    s.set_mapping_override("charge_codes", "99999", "4010")
    s.record_batch(detailed("B1", [e1]), FILES, now=5.0)
    before = s.counts()
    s.close()

    again = SqliteStore(path)
    try:
        assert again.counts() == before
        [dup] = again.accept([inbound("C1", ack_code="AR")])
        assert dup.duplicate and dup.message_id == a.message_id and dup.ack_code == "AA"
        assert again.entries() == [e1, e2]
        assert again.entry_batches(["E1", "E2"]) == {"E1": "B1"}
        with again.transaction() as tx:
            assert tx.get_patient("HOSP|1") is not None
            assert tx.mapping_override("charge_codes", "99999") == "4010"
            assert tx.insert_entry(e1) is False
        assert [o.fmt for o in again.outbox_due("erp", 10.0, 10)] == ["csv", "jsonl"]
    finally:
        again.close()


def test_sqlite_two_stores_on_one_file_see_each_others_commits(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    a, b = SqliteStore(path), SqliteStore(path)  # as two processes would
    try:
        [first] = a.accept([inbound("C1")])
        [dup] = b.accept([inbound("C1", ack_code="AE", error="late")])
        assert dup.duplicate and dup.message_id == first.message_id and dup.ack_code == "AA"
        e1 = entry("E1")
        with a.transaction() as tx:
            tx.insert_entry(e1)
            assert b.entries() == []  # not committed yet: b does not see it
        assert b.entries() == [e1]
        with b.transaction() as tx:
            assert tx.insert_entry(e1) is False  # the key a committed holds for b too
        assert b.record_batch(detailed("B1", [e1]), FILES, now=1.0)
        assert a.record_batch(detailed("B1", [e1]), FILES, now=2.0) is False
        assert a.unbatched_channels() == []
        [item, _] = a.outbox_due("erp", 5.0, 10)
        b.outbox_settle(item.id, status="sent", visible_at=5.0)
        assert [o.id for o in a.outbox_items("sent")] == [item.id]
    finally:
        a.close()
        b.close()


def test_sqlite_rollback_is_invisible_to_another_store(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    a, b = SqliteStore(path), SqliteStore(path)
    try:
        with pytest.raises(RuntimeError), a.transaction() as tx:
            tx.insert_entry(entry("E1"))
            raise RuntimeError("step failed")
        assert b.entries() == [] and b.counts()["journal_lines"] == 0
    finally:
        a.close()
        b.close()


def test_sqlite_concurrent_accept_across_stores_and_threads(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    stores = [SqliteStore(path), SqliteStore(path)]
    answers: list[tuple[str, int, bool]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def run(n: int) -> None:
        s = stores[n % 2]
        try:
            start.wait()
            for i in range(0, 60, 6):
                batch = [inbound(f"C{j}") for j in range(i, i + 6)]
                got = s.accept(batch)
                with lock:
                    answers.extend(
                        (m.control_id, a.message_id, a.duplicate)
                        for m, a in zip(batch, got, strict=True)
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert len(answers) == 240
        assert sorted(c for c, _, dup in answers if not dup) == sorted(f"C{j}" for j in range(60))
        by_control: dict[str, set[int]] = {}
        for control_id, message_id, _ in answers:
            by_control.setdefault(control_id, set()).add(message_id)
        assert all(len(ids) == 1 for ids in by_control.values())
        assert stores[0].counts()["messages"] == 60
        assert len(stores[1].messages(limit=1000)) == 60
    finally:
        for s in stores:
            s.close()
