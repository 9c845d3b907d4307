"""The store contract, one suite subclassed per adapter (memory, SQLite, PostgreSQL).

`StoreContract` is the union of every aggregate's suite (contract_inbox, contract_accounts,
contract_journal, contract_work, contract_outbox, contract_flow_state) and the checks that
cross aggregates (transactions, counts). Each adapter's suite overrides the `store` fixture
and the two `*_row` peeks: the port has no reader for encounters and billing accounts, so
the suite asks the adapter directly what it stored. Everything else goes through the port.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from isthmus.store.ports import Store
from tests.store.builders import (
    AR,
    FILES,
    REVENUE,
    Boom,
    charge_record,
    detailed,
    entry,
    inbound,
    message_ids,
    patient,
    post,
    work,
)
from tests.store.contract_accounts import AccountsContract
from tests.store.contract_flow_state import FlowStateContract
from tests.store.contract_inbox import InboxContract
from tests.store.contract_journal import JournalContract
from tests.store.contract_outbox import OutboxContract
from tests.store.contract_work import WorkContract

__all__ = [
    "AR",
    "FILES",
    "REVENUE",
    "Boom",
    "StoreContract",
    "charge_record",
    "detailed",
    "entry",
    "inbound",
    "message_ids",
    "patient",
    "post",
    "work",
]


class StoreContract(
    InboxContract,
    AccountsContract,
    JournalContract,
    WorkContract,
    OutboxContract,
    FlowStateContract,
):
    @pytest.fixture
    def store(self) -> Iterator[Store]:
        raise NotImplementedError

    # transactions ----------------------------------------------------------------------------

    def test_transaction_commits_every_effect(self, store: Store) -> None:
        with store.transaction() as tx:
            tx.put_patient(patient("HOSP|1"))
            assert tx.record_charge(charge_record("ev1"))
            assert tx.insert_entry(entry("E1"))
            assert (
                tx.add_work_item(
                    kind="k",
                    queue="q",
                    key="x",
                    event_id="ev1",
                    correlation_id="corr-1",
                    detail="d",
                    envelope=b"",
                    now=1.0,
                )
                is not None
            )
            assert tx.get_patient("HOSP|1") == patient("HOSP|1")  # reads its own writes
        with store.transaction() as tx:
            assert tx.get_patient("HOSP|1") == patient("HOSP|1")
        assert [e.entry_key for e in store.entries()] == ["E1"]
        c = store.counts()
        assert (
            c["patients"],
            c["charges"],
            c["journal_entries"],
            c["journal_lines"],
            c["open_work_items"],
        ) == (1, 1, 1, 2, 1)

    def test_transaction_rolls_back_everything_on_exception(self, store: Store) -> None:
        with pytest.raises(Boom), store.transaction() as tx:
            tx.put_patient(patient("HOSP|1"))
            tx.record_charge(charge_record("ev1"))
            tx.insert_entry(entry("E1"))
            tx.add_work_item(
                kind="k",
                queue="q",
                key="x",
                event_id="ev1",
                correlation_id="corr-1",
                detail="d",
                envelope=b"",
                now=1.0,
            )
            raise Boom
        assert store.entries() == [] and list(store.journal_lines()) == []
        assert store.work_items() == []
        assert all(v == 0 for v in store.counts().values())
        with store.transaction() as tx:  # the keys were not consumed by the failed attempt
            assert tx.get_patient("HOSP|1") is None
            assert tx.record_charge(charge_record("ev1")) is True
            assert tx.insert_entry(entry("E1")) is True
            assert (
                tx.add_work_item(
                    kind="k",
                    queue="q",
                    key="x",
                    event_id="ev1",
                    correlation_id="corr-1",
                    detail="d",
                    envelope=b"",
                    now=1.0,
                )
                is not None
            )

    def test_rollback_keeps_what_was_committed_before(self, store: Store) -> None:
        post(store, entry("E1"))
        with pytest.raises(Boom), store.transaction() as tx:
            tx.insert_entry(entry("E2"))
            raise Boom
        assert [e.entry_key for e in store.entries()] == ["E1"]

    def test_savepoint_isolates_a_failing_step(self, store: Store) -> None:
        with store.transaction() as tx:
            with tx.savepoint():
                tx.insert_entry(entry("E1"))
            with pytest.raises(Boom), tx.savepoint():
                tx.insert_entry(entry("E2"))
                tx.record_charge(charge_record("ev2"))
                tx.put_patient(patient("HOSP|2"))
                raise Boom
            with tx.savepoint():
                tx.insert_entry(entry("E3"))
            assert tx.get_patient("HOSP|2") is None  # undone at once, not only at commit
        assert [e.entry_key for e in store.entries()] == ["E1", "E3"]
        c = store.counts()
        assert (c["charges"], c["patients"], c["journal_lines"]) == (0, 0, 4)

    def test_nested_savepoint_failure_keeps_the_outer_step(self, store: Store) -> None:
        with store.transaction() as tx, tx.savepoint():
            tx.insert_entry(entry("E1"))
            with pytest.raises(Boom), tx.savepoint():
                tx.insert_entry(entry("E2"))
                raise Boom
            tx.insert_entry(entry("E3"))
        assert [e.entry_key for e in store.entries()] == ["E1", "E3"]

    def test_released_savepoint_is_undone_by_its_failing_transaction(self, store: Store) -> None:
        with pytest.raises(Boom), store.transaction() as tx:
            with tx.savepoint():
                tx.insert_entry(entry("E1"))
            raise Boom
        assert store.entries() == []

    # counts ----------------------------------------------------------------------------------

    def test_counts_of_an_empty_store(self, store: Store) -> None:
        assert store.counts() == {
            "messages": 0,
            "rejected": 0,
            "unpublished": 0,
            "patients": 0,
            "charges": 0,
            "journal_entries": 0,
            "journal_lines": 0,
            "open_work_items": 0,
            "batches": 0,
            "outbox_pending": 0,
            "held": 0,
        }

    def test_counts_follow_every_table(self, store: Store) -> None:
        store.accept(
            [
                inbound("C1"),
                inbound("C2", status="rejected", ack_code="AR", events=b""),
                inbound("C3"),
            ]
        )
        with store.transaction() as tx:
            tx.put_patient(patient("HOSP|1"))
            tx.record_charge(charge_record("ev1"))
            tx.record_charge(charge_record("ev2"))
            tx.insert_entry(entry("E1"))
            tx.insert_entry(entry("E2"))
        w = work(store, "ev1")
        work(store, "ev2")
        assert w is not None
        store.set_work_item_status(w, "resolved", "", now=1.0)
        store.mark_published([store.unpublished(1)[0].id])
        store.record_batch(detailed("B1", [entry("E1")]), FILES, now=1.0)
        [first, _] = store.outbox_items()
        store.outbox_settle(first.id, status="sent", visible_at=2.0)
        assert store.counts() == {
            "messages": 3,
            "rejected": 1,
            "unpublished": 1,
            "patients": 1,
            "charges": 2,
            "journal_entries": 2,
            "journal_lines": 4,
            "open_work_items": 1,
            "batches": 1,
            "outbox_pending": 1,
            "held": 0,
        }
