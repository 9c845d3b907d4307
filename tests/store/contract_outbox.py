"""The outbox aggregate's contract: due files in order per destination, retries, dead
letters (ports_outbox)."""

from __future__ import annotations

from isthmus.store.ports import Store
from tests.store.builders import (
    detailed,
    entry,
    post,
)


class OutboxContract:
    """Mixed into StoreContract (contract.py), which gives the `store` fixture."""

    # outbox ----------------------------------------------------------------------------------

    def _queue(self, store: Store, n: int, files: list[tuple[str, str, bytes]]) -> None:
        es = [entry(f"E{i}") for i in range(n)]
        post(store, *es)
        for i, e in enumerate(es):
            store.record_batch(detailed(f"B{i}", [e]), files, now=float(i))

    def test_outbox_due_by_destination_in_order_with_limit(self, store: Store) -> None:
        self._queue(store, 3, [("erp", "csv", b"c"), ("archive", "csv", b"a")])
        due = store.outbox_due("erp", now=0.0, limit=10)
        assert [(o.destination, o.batch_id) for o in due] == [
            ("erp", "B0"),
            ("erp", "B1"),
            ("erp", "B2"),
        ]
        assert [o.batch_id for o in store.outbox_due("erp", now=0.0, limit=2)] == ["B0", "B1"]
        assert [o.destination for o in store.outbox_due("archive", 0.0, 10)] == ["archive"] * 3
        assert store.outbox_due("billing", 0.0, 10) == []

    def test_outbox_retry_waits_until_visible_then_sends(self, store: Store) -> None:
        self._queue(store, 2, [("erp", "csv", b"c")])
        first, second = store.outbox_due("erp", 100.0, 10)
        store.outbox_settle(first.id, status="pending", error="ERP 503", visible_at=160.0)
        assert first.id not in [o.id for o in store.outbox_due("erp", 159.0, 10)]
        later = store.outbox_due("erp", 160.0, 10)  # visible_at is inclusive
        assert [o.id for o in later] == [first.id, second.id]
        assert (later[0].status, later[0].attempts, later[0].visible_at, later[0].last_error) == (
            "pending",
            1,
            160.0,
            "ERP 503",
        )
        store.outbox_settle(first.id, status="sent", visible_at=170.0)
        assert [o.id for o in store.outbox_due("erp", 1e12, 10)] == [second.id]
        [sent] = store.outbox_items("sent")
        assert (sent.id, sent.status, sent.attempts, sent.last_error) == (first.id, "sent", 2, "")
        assert [o.id for o in store.outbox_items("pending")] == [second.id]
        assert store.counts()["outbox_pending"] == 1

    def test_outbox_due_keeps_destination_order_behind_a_waiting_retry(self, store: Store) -> None:
        """An outbox is drained in order: a row waiting for its retry holds back the later
        rows of its destination (not other destinations); a dead row holds back nothing."""
        self._queue(store, 3, [("erp", "csv", b"c"), ("archive", "csv", b"a")])
        first, second, third = store.outbox_due("erp", 100.0, 10)
        store.outbox_settle(first.id, status="pending", error="ERP 503", visible_at=160.0)
        assert store.outbox_due("erp", 159.0, 10) == []
        assert [o.batch_id for o in store.outbox_due("archive", 159.0, 10)] == ["B0", "B1", "B2"]
        assert [o.id for o in store.outbox_due("erp", 160.0, 10)] == [first.id, second.id, third.id]
        store.outbox_settle(first.id, status="dead", error="400 bad account")
        store.outbox_settle(third.id, status="pending", error="ERP 503", visible_at=200.0)
        assert [o.id for o in store.outbox_due("erp", 160.0, 10)] == [second.id]

    def test_outbox_dead_is_never_due_and_keeps_its_reason(self, store: Store) -> None:
        self._queue(store, 1, [("erp", "csv", b"c")])
        [item] = store.outbox_due("erp", 0.0, 10)
        store.outbox_settle(item.id, status="dead", error="400 invalid account 9999")
        store.outbox_settle(item.id + 1000, status="dead", error="unknown id: no-op")
        assert store.outbox_due("erp", 1e12, 10) == []
        [dead] = store.outbox_items("dead")
        assert (dead.id, dead.attempts, dead.last_error) == (item.id, 1, "400 invalid account 9999")
        assert store.outbox_items("sent") == []
        assert [o.id for o in store.outbox_items()] == [item.id]
        assert store.counts()["outbox_pending"] == 0

    def test_outbox_error_is_bounded(self, store: Store) -> None:
        self._queue(store, 1, [("erp", "csv", b"c")])
        [item] = store.outbox_due("erp", 0.0, 10)
        store.outbox_settle(item.id, status="pending", error="x" * 5000, visible_at=1.0)
        [kept] = store.outbox_items()
        assert kept.last_error == "x" * 2000
