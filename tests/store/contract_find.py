"""The store contract for issue 15's reads and holds, run on memory, SQLite and PostgreSQL.

Mixed into each adapter's suite (tests/store/test_store_adapters.py, test_store_postgres.py)
beside `StoreContract`, through the port only:
- `message_page`: newest first, each filter of `MessageQuery` (status, channel, type and
  type prefix, sender, control id or MSH-10, since inclusive, until exclusive), keyset
  paging that stays continuous while messages arrive, the limit.
- held events: `hold_event` once per (ref, event id), `hold_totals` of what is still held,
  `release_held`, `held_posted`, held again after a release, `holds_of`, all or nothing
  inside a transaction.
- `mapping_overrides`: the rows of the tables asked for, by table and code.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from isthmus.flows.inbox import message_by_msh10
from isthmus.store.ports import HeldEvent, MessageQuery, Store, StoredMessage
from tests.store.contract import Boom, inbound


def _ids(found: list[StoredMessage]) -> list[str]:
    return [m.control_id for m in found]


def _seed(store: Store) -> None:
    """Six messages, received at 100..105, in this order."""
    store.accept(
        [
            inbound("EHR^NORTH:1", channel="mllp", message_type="ADT^A01", received_at=100.0),
            inbound("EHR^NORTH:2", channel="mllp", message_type="DFT^P03", received_at=101.0),
            inbound(
                "EHR^NORTHX:3",
                channel="mllp",
                message_type="ADT^A08",
                received_at=102.0,
                status="rejected",
                ack_code="AR",
                error="bad",
                events=b"",
            ),
            inbound("LAB^SOUTH:2", channel="mllp", message_type="ADTX^Z01", received_at=103.0),
            inbound("ISA06:000000123", channel="x12", message_type="X12", received_at=104.0),
            inbound(
                "EHR^NORTH:5",
                channel="mllp",
                message_type="ADT",
                received_at=105.0,
                status="ignored",
                events=b"",
            ),
        ]
    )


def held(
    ref: str, event_id: str, *, amount: str = "10.50", currency: str = "USD", at: float = 100.0
) -> HeldEvent:
    return HeldEvent(
        ref=ref,
        event_id=event_id,
        key=f"key-{event_id}",
        envelope=f'{{"id":"{event_id}"}}'.encode(),
        amount=Decimal(amount),
        currency=currency,
        held_at=at,
    )


A, B = "mapping:charge_codes/Z1", "mapping:facility_company/EAST"


class FindContract:
    @pytest.fixture
    def store(self) -> Iterator[Store]:
        raise NotImplementedError

    # message_page ----------------------------------------------------------------------------

    def test_a_page_is_newest_first(self, store: Store) -> None:
        _seed(store)
        found = store.message_page(MessageQuery())
        assert [m.id for m in found] == sorted((m.id for m in found), reverse=True)
        assert _ids(found)[0] == "EHR^NORTH:5" and len(found) == 6

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            (MessageQuery(status="rejected"), ["EHR^NORTHX:3"]),
            (MessageQuery(status="ignored"), ["EHR^NORTH:5"]),
            (MessageQuery(channel="x12"), ["ISA06:000000123"]),
            # a bare type is every trigger of it (and itself), never another type's prefix
            (MessageQuery(message_type="ADT"), ["EHR^NORTH:5", "EHR^NORTHX:3", "EHR^NORTH:1"]),
            (MessageQuery(message_type="ADT^A08"), ["EHR^NORTHX:3"]),
            # a sender is MSH-3^MSH-4 whole: EHR^NORTH is not EHR^NORTHX
            (MessageQuery(sender="EHR^NORTH"), ["EHR^NORTH:5", "EHR^NORTH:2", "EHR^NORTH:1"]),
            (MessageQuery(sender="EHR^NORTHX"), ["EHR^NORTHX:3"]),
            # MSH-10 alone finds it from every sender; the whole identity finds one
            (MessageQuery(control_id="2"), ["LAB^SOUTH:2", "EHR^NORTH:2"]),
            (MessageQuery(control_id="EHR^NORTH:2"), ["EHR^NORTH:2"]),
            (MessageQuery(control_id="ISA06:000000123"), ["ISA06:000000123"]),
            (MessageQuery(since=103.0), ["EHR^NORTH:5", "ISA06:000000123", "LAB^SOUTH:2"]),
            (MessageQuery(until=101.0), ["EHR^NORTH:1"]),
            (MessageQuery(since=101.0, until=103.0), ["EHR^NORTHX:3", "EHR^NORTH:2"]),
            (
                MessageQuery(
                    channel="mllp", message_type="ADT", sender="EHR^NORTH", status="accepted"
                ),
                ["EHR^NORTH:1"],
            ),
            (MessageQuery(sender="NOBODY"), []),
        ],
    )
    def test_each_filter_finds_what_it_names(
        self, store: Store, query: MessageQuery, expected: list[str]
    ) -> None:
        _seed(store)
        assert _ids(store.message_page(query)) == expected

    @pytest.mark.parametrize(
        ("msh10", "expected"),
        [
            ("1", "EHR^NORTH:1"),  # one sender used it: found by MSH-10 alone
            ("3", "EHR^NORTHX:3"),  # a refused message too
            ("2", None),  # two senders used it: the whole identity is needed
            ("5", "EHR^NORTH:5"),  # its conflict copy (`5#<digest>`) is not a second holder
            ("5#abc", None),
            ("9", None),
            ("EHR^NORTH:1", None),
        ],
    )
    def test_a_bare_msh10_finds_the_one_message_that_has_it(
        self, store: Store, msh10: str, expected: str | None
    ) -> None:
        _seed(store)
        store.accept(
            [
                inbound(
                    "EHR^NORTH:5#0123456789abcdef",
                    channel="mllp",
                    status="rejected",
                    ack_code="AR",
                    events=b"",
                )
            ]
        )
        found = message_by_msh10(store, "mllp", msh10)
        assert (found.control_id if found is not None else None) == expected
        assert message_by_msh10(store, "x12", "1") is None

    def test_paging_stays_continuous_while_messages_arrive(self, store: Store) -> None:
        _seed(store)
        first = store.message_page(MessageQuery(), limit=2)
        assert _ids(first) == ["EHR^NORTH:5", "ISA06:000000123"]
        store.accept([inbound("EHR^NORTH:9", channel="mllp", received_at=200.0)])
        second = store.message_page(MessageQuery(), before=first[-1].id, limit=2)
        assert _ids(second) == ["LAB^SOUTH:2", "EHR^NORTHX:3"]  # no skip, no repeat
        store.accept([inbound("EHR^NORTH:10", channel="mllp", received_at=201.0)])
        rest = store.message_page(MessageQuery(), before=second[-1].id, limit=50)
        assert _ids(rest) == ["EHR^NORTH:2", "EHR^NORTH:1"]
        assert store.message_page(MessageQuery(), before=rest[-1].id) == []
        # what arrived meanwhile leads a new first page
        assert _ids(store.message_page(MessageQuery(), limit=2)) == ["EHR^NORTH:10", "EHR^NORTH:9"]

    def test_paging_keeps_the_filter(self, store: Store) -> None:
        _seed(store)
        q = MessageQuery(sender="EHR^NORTH")
        first = store.message_page(q, limit=1)
        second = store.message_page(q, before=first[0].id, limit=1)
        third = store.message_page(q, before=second[0].id, limit=5)
        assert _ids(first + second + third) == ["EHR^NORTH:5", "EHR^NORTH:2", "EHR^NORTH:1"]

    def test_the_limit_bounds_a_page(self, store: Store) -> None:
        _seed(store)
        assert len(store.message_page(MessageQuery(), limit=1)) == 1
        assert len(store.message_page(MessageQuery(), limit=4)) == 4
        assert len(store.message_page(MessageQuery(), limit=100)) == 6

    # held events -----------------------------------------------------------------------------

    def test_an_event_is_held_once_behind_its_item(self, store: Store) -> None:
        with store.transaction() as tx:
            assert tx.hold_event(held(A, "e1", at=100.0)) is True
            assert tx.hold_event(held(A, "e1", at=150.0)) is False  # held there already
            assert tx.hold_event(held(A, "e2", amount="5.25", at=90.0)) is True
            assert tx.hold_event(held(A, "e3", amount="7.00", currency="EUR")) is True
            assert tx.hold_event(held(B, "e4", amount="1.00")) is True
        totals = store.hold_totals([A, B, "mapping:charge_codes/NONE"])
        assert set(totals) == {A, B}  # a ref holding nothing is left out
        assert totals[A].count == 3 and totals[A].oldest == 90.0
        assert totals[A].amounts == (("EUR", Decimal("7.00")), ("USD", Decimal("15.75")))
        assert (totals[B].count, totals[B].amounts) == (1, (("USD", Decimal("1.00")),))
        rows = store.held_events(A)
        assert [h.event_id for h in rows] == ["e2", "e1", "e3"]  # oldest first
        assert rows[1] == held(A, "e1", at=100.0)  # every field as it was held
        assert [h.event_id for h in store.held_events(A, limit=1)] == ["e2"]

    def test_release_and_posting_are_recorded_per_event(self, store: Store) -> None:
        with store.transaction() as tx:
            for e in ("e1", "e2", "e3"):
                tx.hold_event(held(A, e))
        assert store.release_held(A, ["e1", "e2", "nope"], 500.0) == 2
        assert store.release_held(A, ["e1"], 600.0) == 0  # released already
        assert store.hold_totals([A])[A].count == 1
        by_id = {h.event_id: h for h in store.held_events(A)}
        assert (by_id["e1"].released_at, by_id["e3"].released_at) == (500.0, 0.0)
        with store.transaction() as tx:
            assert tx.held_posted("e1", "entry-e1") == 1
            assert tx.held_posted("e1", "entry-other") == 0  # its posting is recorded
            assert tx.held_posted("e3", "entry-e3") == 0  # still held: not posted
        by_id = {h.event_id: h for h in store.held_events(A)}
        assert [by_id[e].entry_key for e in ("e1", "e2", "e3")] == ["entry-e1", "", ""]
        assert [(h.ref, h.event_id) for h in store.holds_of(["e1", "e3", "zz"])] == [
            (A, "e1"),
            (A, "e3"),
        ]

    def test_pending_events_are_those_with_a_work_item_or_an_unposted_release(
        self, store: Store
    ) -> None:
        with store.transaction() as tx:
            for e in ("e1", "e2", "e3"):
                tx.hold_event(held(A, e))
            for e, kind in (("w1", "unmapped_code"), ("w2", "closed_period")):
                tx.add_work_item(
                    kind=kind,
                    queue="q",
                    key="k",
                    event_id=e,
                    correlation_id="c",
                    detail="d",
                    envelope=b"",
                    now=1.0,
                )
        store.release_held(A, ["e1", "e2"], 500.0)
        with store.transaction() as tx:
            tx.held_posted("e2", "entry-e2")
            tx.close_work_items("w2", "posted", 2.0)
            everything = ["e1", "e2", "e3", "w1", "w2", "none"]
            # e1: released, not posted; w1: open item. e2 posted, e3 still held, w2 closed.
            assert tx.pending_events(everything) == {"e1", "w1"}
            assert tx.pending_events(["e3", "none"]) == set()

    def test_a_released_event_can_be_held_again(self, store: Store) -> None:
        with store.transaction() as tx:
            tx.hold_event(held(A, "e1", at=100.0))
        store.release_held(A, ["e1"], 500.0)
        assert A not in store.hold_totals([A])
        with store.transaction() as tx:  # released, and the mapping is still missing
            assert tx.hold_event(held(A, "e1", at=700.0)) is True
        [again] = store.held_events(A)
        assert (again.released_at, again.entry_key, again.held_at) == (0.0, "", 100.0)
        assert store.hold_totals([A])[A].count == 1

    def test_a_hold_is_all_or_nothing_with_its_transaction(self, store: Store) -> None:
        with pytest.raises(Boom), store.transaction() as tx:
            tx.hold_event(held(A, "e1"))
            raise Boom
        assert store.held_events(A) == [] and store.hold_totals([A]) == {}
        assert store.holds_of(["e1"]) == []

    # mapping overrides -----------------------------------------------------------------------

    def test_mapping_overrides_lists_the_tables_asked_for(self, store: Store) -> None:
        store.set_mapping_override("facility_company", "EAST", "C300")
        store.set_mapping_override("charge_codes", "Z1", '{"revenue_account": "4999"}')
        store.set_mapping_override("charge_codes", "A9", '{"revenue_account": "4100"}')
        store.set_mapping_override("workitem_assignee", "7", "rita")
        with store.transaction() as tx:
            tx.set_mapping_override("department_cost_center", "NURS", "CC-9")
        assert store.mapping_overrides(
            ["charge_codes", "facility_company", "department_cost_center"]
        ) == [
            ("charge_codes", "A9", '{"revenue_account": "4100"}'),
            ("charge_codes", "Z1", '{"revenue_account": "4999"}'),
            ("department_cost_center", "NURS", "CC-9"),
            ("facility_company", "EAST", "C300"),
        ]
        store.set_mapping_override("facility_company", "EAST", "C301")  # replaced
        assert store.mapping_overrides(["facility_company"]) == [
            ("facility_company", "EAST", "C301")
        ]
        assert store.mapping_overrides([]) == []
