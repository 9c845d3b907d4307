"""The work-item aggregate's contract: work items once per kind and event, their life, and
the mapping overrides (ports_work)."""

from __future__ import annotations

import pytest

from isthmus.store.ports import Store
from tests.store.builders import (
    Boom,
    work,
)


class WorkContract:
    """Mixed into StoreContract (contract.py), which gives the `store` fixture."""

    # work items ------------------------------------------------------------------------------

    def test_add_work_item_returns_an_id_once_per_kind_and_event(self, store: Store) -> None:
        first = work(store, "ev1", detail="first", now=10.0)
        assert first is not None
        assert work(store, "ev1", detail="again", now=20.0) is None
        other = work(store, "ev1", kind="unmapped_facility", now=30.0)
        assert other is not None and other != first
        item = store.work_item(first)
        assert item is not None
        assert (
            item.id,
            item.kind,
            item.queue,
            item.status,
            item.key,
            item.event_id,
            item.correlation_id,
            item.detail,
            item.created_at,
            item.updated_at,
            item.resolution,
            item.envelope,
        ) == (
            first,
            "unmapped_code",
            "charge-master",
            "open",
            "acct-1",
            "ev1",
            "corr-1",
            "first",
            10.0,
            10.0,
            "",
            b"env-ev1",
        )
        assert store.work_item(first + other + 1000) is None
        assert len(store.work_items()) == 2

    def test_add_work_item_reopens_a_resubmitted_item(self, store: Store) -> None:
        wid = work(store, "ev1", detail="first", now=10.0)
        assert wid is not None
        store.set_work_item_status(wid, "resubmitted", "fixed the map", now=15.0)
        assert work(store, "ev1", detail="failed again", now=20.0) is None
        item = store.work_item(wid)
        assert item is not None
        assert (item.status, item.detail, item.created_at, item.updated_at) == (
            "open",
            "failed again",
            10.0,
            20.0,
        )
        assert store.counts()["open_work_items"] == 1

    def test_add_work_item_leaves_open_and_resolved_items_alone(self, store: Store) -> None:
        a = work(store, "ev1", detail="a", now=10.0)
        b = work(store, "ev2", detail="b", now=10.0)
        assert a is not None and b is not None
        store.set_work_item_status(b, "resolved", "written off", now=11.0)
        assert work(store, "ev1", detail="a2", now=20.0) is None
        assert work(store, "ev2", detail="b2", now=20.0) is None
        ia, ib = store.work_item(a), store.work_item(b)
        assert ia is not None and (ia.status, ia.detail, ia.updated_at) == ("open", "a", 10.0)
        assert ib is not None and (ib.status, ib.detail, ib.updated_at, ib.resolution) == (
            "resolved",
            "b",
            11.0,
            "written off",
        )

    def test_work_items_filter_by_status_in_id_order_with_limit(self, store: Store) -> None:
        ids = [work(store, f"ev{i}") for i in range(5)]
        assert all(i is not None for i in ids)
        w = [i for i in ids if i is not None]
        store.set_work_item_status(w[1], "resolved", "ok", now=50.0)
        store.set_work_item_status(w[3], "resubmitted", "retry", now=50.0)
        assert [x.id for x in store.work_items()] == w
        assert [x.id for x in store.work_items(limit=2)] == w[:2]
        assert [x.id for x in store.work_items("open")] == [w[0], w[2], w[4]]
        assert [x.id for x in store.work_items("open", limit=2)] == [w[0], w[2]]
        assert [x.id for x in store.work_items("resolved")] == [w[1]]
        assert store.work_items("nope") == []
        assert store.counts()["open_work_items"] == 3

    def test_set_work_item_status(self, store: Store) -> None:
        wid = work(store, "ev1", now=10.0)
        assert wid is not None
        store.set_work_item_status(wid, "resolved", "mapped 99999 -> 4010", now=42.0)
        store.set_work_item_status(wid + 1000, "resolved", "nothing", now=43.0)  # unknown: no-op
        item = store.work_item(wid)
        assert item is not None
        assert (item.status, item.resolution, item.updated_at, item.created_at) == (
            "resolved",
            "mapped 99999 -> 4010",
            42.0,
            10.0,
        )
        assert store.counts()["open_work_items"] == 0
        assert len(store.work_items()) == 1

    def test_close_work_items_resolves_open_and_resubmitted_items_of_the_event(
        self, store: Store
    ) -> None:
        a = work(store, "ev1", kind="unmapped_code", now=10.0)
        b = work(store, "ev1", kind="unmapped_facility", now=10.0)
        c = work(store, "ev1", kind="unmapped_department", now=10.0)
        d = work(store, "ev1", kind="bad_amount", now=10.0)
        other = work(store, "ev2", now=10.0)
        assert a and b and c and d and other
        store.set_work_item_status(b, "resubmitted", "mapped F9 -> C1", now=11.0)
        store.set_work_item_status(c, "resolved", "written off", now=12.0)
        store.set_work_item_status(d, "dismissed", "duplicate report", now=13.0)
        with store.transaction() as tx:
            assert tx.close_work_items("ev1", "posted after the fix", now=20.0) == 2
        got = {i: store.work_item(i) for i in (a, b, c, d, other)}
        summary = {
            i: None if w is None else (w.status, w.resolution, w.updated_at) for i, w in got.items()
        }
        assert summary == {
            a: ("resolved", "posted after the fix", 20.0),
            b: ("resolved", "mapped F9 -> C1", 20.0),  # a resolution already given stands
            c: ("resolved", "written off", 12.0),  # already closed: untouched
            d: ("dismissed", "duplicate report", 13.0),
            other: ("open", "", 10.0),
        }
        with store.transaction() as tx:
            assert tx.close_work_items("ev1", "again", now=30.0) == 0
            assert tx.close_work_items("ev-none", "x", now=30.0) == 0
        assert store.counts()["open_work_items"] == 1

    def test_close_work_items_is_undone_with_its_transaction(self, store: Store) -> None:
        wid = work(store, "ev1", now=10.0)
        assert wid is not None
        with pytest.raises(Boom), store.transaction() as tx:
            tx.close_work_items("ev1", "posted", now=20.0)
            raise Boom
        item = store.work_item(wid)
        assert item is not None and (item.status, item.updated_at) == ("open", 10.0)

    def test_work_items_for_a_correlation_id(self, store: Store) -> None:
        a = work(store, "ev1", corr="m1")
        work(store, "ev2", corr="m2")
        b = work(store, "ev3", corr="m1", kind="unmapped_facility")
        assert [x.id for x in store.work_items_for("m1")] == [a, b]
        assert store.work_items_for("m3") == []

    # mappings --------------------------------------------------------------------------------

    def test_mapping_overrides(self, store: Store) -> None:
        with store.transaction() as tx:
            assert tx.mapping_override("charge_codes", "99999") is None
        store.set_mapping_override("charge_codes", "99999", "4010")
        store.set_mapping_override("facility_company", "99999", "C7")
        with store.transaction() as tx:
            assert tx.mapping_override("charge_codes", "99999") == "4010"
            assert tx.mapping_override("facility_company", "99999") == "C7"
            assert tx.mapping_override("charge_codes", "11111") is None
        store.set_mapping_override("charge_codes", "99999", "4020")
        with store.transaction() as tx:
            assert tx.mapping_override("charge_codes", "99999") == "4020"
            assert tx.mapping_override("facility_company", "99999") == "C7"
