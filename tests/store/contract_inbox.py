"""The inbox aggregate's contract: idempotent accept with the first answer, holds with their
work item, publication order and the inbox reads (ports_inbox)."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace

from isthmus.store.ports import (
    HELD,
    Hold,
    Store,
    held_ref,
)
from tests.store.builders import (
    inbound,
    message_ids,
)


class InboxContract:
    """Mixed into StoreContract (contract.py), which gives the `store` fixture."""

    # inbox ---------------------------------------------------------------------------------

    def test_accept_stores_the_message_with_its_answer(self, store: Store) -> None:
        m = inbound("C1", ack_code="AA", received_at=123.5)
        [a] = store.accept([m])
        assert (a.duplicate, a.ack_code, a.status, a.error) == (False, "AA", "accepted", "")
        got = store.message(a.message_id)
        assert got is not None
        assert (
            got.id,
            got.channel,
            got.control_id,
            got.received_at,
            got.peer,
            got.message_type,
            got.status,
            got.ack_code,
            got.error,
            got.raw,
            got.events,
            got.published,
        ) == (
            a.message_id,
            "adt",
            "C1",
            123.5,
            m.peer,
            "ADT^A01",
            "accepted",
            "AA",
            "",
            b"MSH|C1",
            b'[{"e":1}]',
            False,
        )

    def test_duplicate_gets_the_first_answer_and_the_same_id(self, store: Store) -> None:
        [first] = store.accept(
            [inbound("C1", status="rejected", ack_code="AE", error="PID-3 missing", events=b"")]
        )
        [again] = store.accept([inbound("C1", status="accepted", ack_code="AA", raw=b"MSH|other")])
        assert again.duplicate is True
        assert (again.message_id, again.ack_code, again.status, again.error) == (
            first.message_id,
            "AE",
            "rejected",
            "PID-3 missing",
        )
        stored = store.message(first.message_id)
        assert stored is not None and stored.raw == b"MSH|C1"  # the duplicate stored nothing
        assert store.counts()["messages"] == 1

    def test_duplicate_inside_one_batch(self, store: Store) -> None:
        a, b, c = store.accept(
            [
                inbound("C1", error="first"),
                inbound("C2"),
                inbound("C1", ack_code="AR", error="second"),
            ]
        )
        assert (a.duplicate, b.duplicate, c.duplicate) == (False, False, True)
        assert c.message_id == a.message_id and a.message_id != b.message_id
        assert (c.ack_code, c.error) == ("AA", "first")
        assert store.counts()["messages"] == 2

    def test_same_control_id_other_content_is_a_conflict(self, store: Store) -> None:
        (first,) = store.accept([replace(inbound("C9"), digest="aaa")])
        (same,) = store.accept([replace(inbound("C9"), digest="aaa")])
        (other,) = store.accept([replace(inbound("C9", raw=b"other"), digest="bbb")])
        assert (same.duplicate, same.conflict) == (True, False)
        assert (other.duplicate, other.conflict, other.message_id) == (True, True, first.message_id)
        stored = store.message(first.message_id)
        assert stored is not None and stored.digest == "aaa" and stored.raw == b"MSH|C9"
        assert len(store.messages()) == 1

    def test_control_id_is_scoped_by_channel(self, store: Store) -> None:
        a, b = store.accept([inbound("C1", channel="adt"), inbound("C1", channel="dft")])
        assert not a.duplicate and not b.duplicate and a.message_id != b.message_id
        found = store.message_by_control_id("dft", "C1")
        assert found is not None and found.id == b.message_id
        assert store.message_by_control_id("bar", "C1") is None
        assert store.message_by_control_id("adt", "C9") is None
        assert store.message(a.message_id + b.message_id + 1000) is None

    def test_ids_grow_in_batch_order(self, store: Store) -> None:
        ids = [a.message_id for a in store.accept([inbound(f"C{i}") for i in range(5)])]
        ids += [a.message_id for a in store.accept([inbound("C9")])]
        assert ids == sorted(ids) and len(set(ids)) == 6

    def test_rejected_message_is_kept_but_never_published(self, store: Store) -> None:
        [bad] = store.accept(
            [inbound("C1", status="rejected", ack_code="AR", error="not HL7", events=b"")]
        )
        [good] = store.accept([inbound("C2")])
        kept = store.message(bad.message_id)
        assert kept is not None and kept.published and kept.error == "not HL7"
        assert [m.id for m in store.unpublished(10)] == [good.message_id]
        assert store.counts()["rejected"] == 1

    def test_held_message_is_kept_with_its_work_item_and_never_published(
        self, store: Store
    ) -> None:
        hold = Hold("unbalanced_remittance", "cash-posting", "BPR02 100.00 out by 5.00")
        [before] = store.accept([inbound("C0")])
        [held] = store.accept(
            [replace(inbound("H1", channel="x12", status=HELD, ack_code="999-E"), hold=hold)]
        )
        [after] = store.accept([inbound("C2")])
        assert held.status == HELD and not held.duplicate
        kept = store.message(held.message_id)
        assert kept is not None and kept.status == HELD and not kept.published
        assert kept.events == b'[{"e":1}]'  # its events are kept, waiting
        assert [m.id for m in store.unpublished(10)] == [before.message_id, after.message_id]
        [item] = store.work_items_for(held_ref("x12", "H1"))
        assert (item.kind, item.queue, item.status, item.key, item.event_id, item.detail) == (
            "unbalanced_remittance",
            "cash-posting",
            "open",
            "H1",
            "x12/H1",
            "BPR02 100.00 out by 5.00",
        )
        counts = store.counts()
        assert counts["held"] == 1 and counts["unpublished"] == 2
        assert [m.id for m in store.messages(status=HELD)] == [held.message_id]

    def test_held_duplicate_gets_the_first_answer_and_no_second_item(self, store: Store) -> None:
        m = replace(
            inbound("H1", channel="x12", status=HELD, ack_code="999-E"),
            hold=Hold("unbalanced_remittance", "cash-posting", "out"),
        )
        [first] = store.accept([m])
        [again] = store.accept([m])
        assert again.duplicate and again.message_id == first.message_id
        assert (again.status, again.ack_code) == (HELD, "999-E")
        assert len(store.work_items_for(held_ref("x12", "H1"))) == 1

    def test_release_moves_a_held_message_to_accepted_and_resolves_its_item(
        self, store: Store
    ) -> None:
        store.accept(
            [
                replace(
                    inbound("H1", channel="x12", status=HELD, ack_code="999-E"),
                    hold=Hold("unbalanced_remittance", "cash-posting", "out"),
                )
            ]
        )
        [other] = store.accept([inbound("C1")])
        done = store.release("x12", "H1", resolution="released by pat: payer confirmed", now=200.0)
        assert done is not None and done.status == "accepted" and not done.published
        assert [m.id for m in store.unpublished(10)] == sorted([done.id, other.message_id])
        [item] = store.work_items_for(held_ref("x12", "H1"))
        assert (item.status, item.resolution, item.updated_at) == (
            "resolved",
            "released by pat: payer confirmed",
            200.0,
        )
        assert store.counts()["held"] == 0
        # released already, never held, unknown: no change
        assert store.release("x12", "H1", resolution="again", now=300.0) is None
        assert store.release("adt", "C1", resolution="x", now=300.0) is None
        assert store.release("x12", "nope", resolution="x", now=300.0) is None
        [item] = store.work_items_for(held_ref("x12", "H1"))
        assert item.resolution == "released by pat: payer confirmed"

    def test_unpublished_in_order_and_mark_published(self, store: Store) -> None:
        ids = [a.message_id for a in store.accept([inbound(f"C{i}") for i in range(5)])]
        assert [m.id for m in store.unpublished(3)] == ids[:3]
        store.mark_published(ids[:2])
        store.mark_published([])
        store.mark_published([max(ids) + 1000])  # unknown id: nothing happens
        assert [m.id for m in store.unpublished(10)] == ids[2:]
        first = store.message(ids[0])
        assert first is not None and first.published
        third = store.message(ids[2])
        assert third is not None and not third.published

    def test_messages_filters_since_until_status_limit(self, store: Store) -> None:
        got = store.accept(
            [
                inbound("A", received_at=10.0),
                inbound("B", received_at=20.0, status="rejected", ack_code="AE", events=b""),
                inbound("C", received_at=30.0),
                inbound("D", received_at=40.0, status="rejected", ack_code="AR", events=b""),
            ]
        )
        a, b, c, d = (x.message_id for x in got)
        assert message_ids(store.messages()) == [a, b, c, d]
        assert message_ids(store.messages(since=20.0)) == [b, c, d]  # since is inclusive
        assert message_ids(store.messages(until=30.0)) == [a, b]  # until is exclusive
        assert message_ids(store.messages(since=15.0, until=40.0)) == [b, c]
        assert message_ids(store.messages(status="rejected")) == [b, d]
        assert message_ids(store.messages(status="accepted", since=20.0)) == [c]
        assert message_ids(store.messages(limit=2)) == [a, b]
        assert store.messages(since=50.0) == []

    def test_message_counts_per_channel_status_and_ack(self, store: Store) -> None:
        store.accept(
            [
                inbound("A", received_at=10.0),
                inbound("B", received_at=20.0, status="rejected", ack_code="AE", events=b""),
                inbound("C", received_at=30.0),
                inbound("D", received_at=40.0, status="rejected", ack_code="AR", events=b""),
                inbound("E", channel="x12", received_at=50.0),
            ]
        )
        assert store.message_counts() == {
            ("adt", "accepted", "AA"): 2,
            ("adt", "rejected", "AE"): 1,
            ("adt", "rejected", "AR"): 1,
            ("x12", "accepted", "AA"): 1,
        }
        assert store.message_counts(since=30.0) == {
            ("adt", "accepted", "AA"): 1,
            ("adt", "rejected", "AR"): 1,
            ("x12", "accepted", "AA"): 1,
        }
        assert store.message_counts(since=60.0) == {}

    def test_accepted_events_in_inbox_order_without_rejected(self, store: Store) -> None:
        store.accept(
            [
                inbound("A", received_at=10.0, events=b'[{"a":1}]'),
                inbound("B", received_at=20.0, status="rejected", ack_code="AE", events=b""),
                inbound("C", received_at=30.0, events=b'[{"c":1}]'),
            ]
        )
        assert store.accepted_events() == [(10.0, b'[{"a":1}]'), (30.0, b'[{"c":1}]')]
        assert store.accepted_events(since=30.0) == [(30.0, b'[{"c":1}]')]
        assert store.accepted_events(since=31.0) == []

    def test_concurrent_accept_stores_each_message_once(self, store: Store) -> None:
        results: list[list[tuple[str, int, bool]]] = [[] for _ in range(4)]
        errors: list[BaseException] = []
        start = threading.Barrier(4)

        def run(n: int) -> None:
            try:
                start.wait()
                for i in range(0, 40, 8):  # every thread sends the same 40, in batches of 8
                    batch = [inbound(f"C{j}") for j in range(i, i + 8)]
                    for m, a in zip(batch, store.accept(batch), strict=True):
                        results[n].append((m.control_id, a.message_id, a.duplicate))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert store.counts()["messages"] == 40
        ids: dict[str, set[int]] = {}
        fresh: Counter[str] = Counter()
        for rows in results:
            assert len(rows) == 40
            for control_id, message_id, duplicate in rows:
                ids.setdefault(control_id, set()).add(message_id)
                fresh[control_id] += not duplicate
        assert all(len(v) == 1 for v in ids.values())  # every thread got the same id
        assert fresh == Counter({f"C{j}": 1 for j in range(40)})  # stored exactly once
