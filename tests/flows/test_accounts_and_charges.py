"""Patient accounts (registration, A40 merge) and charge posting (mapping, work items,
closed periods), through the worker against a real SQLite store."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from isthmus.bus.ports import Publish
from isthmus.flows import mapping_holds, workitems
from isthmus.flows.relay import TOPIC, publications
from isthmus.ledger.periods import FiscalCalendar
from tests.flows.helpers import (
    AR,
    CHANNEL,
    Rig,
    adt,
    bar,
    charge,
    corr,
    ident,
    key,
    make_rig,
    merge,
    token,
)

S, D = "MS100", "MD200"  # survivor and duplicate MRNs


def charges_of(rig: Rig) -> dict[str, str]:
    """charge event id -> patient key, read from the adapter's table (no port for it)."""
    with sqlite3.connect(rig.store.path) as c:
        return dict(c.execute("SELECT event_id, patient_key FROM charges"))


def test_registration_creates_one_account_per_authority_and_mrn(rig: Rig) -> None:
    rig.ingest(
        [adt("R1", S, family="SMITH"), bar("R2", S), adt("R3", S, trigger="A08", family="SMYTHE")]
    )
    rig.drain()
    with rig.store.transaction() as tx:
        p = tx.get_patient(key(S))
    assert p is not None
    assert (p.mrn, p.authority, p.token, p.family_name) == (S, "HOSPMRN", token(S), "SMYTHE")
    assert p.token.startswith("PA-") and S not in p.token
    assert rig.store.counts()["patients"] == 1


def test_merge_moves_charges_and_reclassifies_ar(rig: Rig) -> None:
    rig.ingest(
        [
            adt("M01", S),
            adt("M02", D),
            charge("M03", D, amount="100.00"),
            charge("M04", S, amount="50.00"),
            charge("M05", D, amount="20.00", ttype="CD"),
        ]
    )
    rig.drain()
    assert rig.ar() == {(token(D), "USD"): Decimal("80.00"), (token(S), "USD"): Decimal("50.00")}
    rig.ingest([merge("M06", S, D)])
    rig.drain()
    ar = rig.ar()
    assert ar[(token(D), "USD")] == 0
    assert ar[(token(S), "USD")] == Decimal("130.00")
    assert rig.balanced()
    assert set(charges_of(rig).values()) == {key(S)}
    with rig.store.transaction() as tx:
        merged = tx.get_patient(key(D))
    assert merged is not None and merged.merged_into == key(S)
    reclass = rig.store.entries(correlation_id=corr("M06"))
    assert len(reclass) == 1 and len(reclass[0].lines) == 2
    assert {(ln.dims.account_token, ln.debit, ln.credit) for ln in reclass[0].lines} == {
        (token(S), Decimal("80.00"), Decimal("0")),
        (token(D), Decimal("0"), Decimal("80.00")),
    }

    # a later charge for the merged MRN lands on the survivor
    rig.ingest([charge("M07", D, amount="25.00")])
    rig.drain()
    ar = rig.ar()
    assert ar[(token(D), "USD")] == 0
    assert ar[(token(S), "USD")] == Decimal("155.00")
    assert charges_of(rig)[f"{corr('M07')}/0"] == key(S)
    assert rig.balanced()

    # replaying the merge moves nothing twice
    entries = rig.entry_keys()
    stored = rig.store.message_by_control_id(CHANNEL, ident("M06"))
    assert stored is not None
    rig.bus.replay(publications(stored.events))
    rig.drain()
    assert rig.entry_keys() == entries
    assert rig.ar()[(token(S), "USD")] == Decimal("155.00")


def test_merge_before_the_duplicates_charges_arrive(rig: Rig) -> None:
    rig.ingest([adt("K1", S), merge("K2", S, D), charge("K3", D, amount="70.00")])
    rig.drain()
    ar = rig.ar()
    assert (token(D), "USD") not in ar
    assert ar[(token(S), "USD")] == Decimal("70.00")
    assert rig.balanced()


def test_merge_into_itself_is_a_no_op(rig: Rig) -> None:
    rig.ingest([adt("Z1", S), charge("Z2", S), merge("Z3", S, S)])
    rig.drain()
    assert rig.ar() == {(token(S), "USD"): Decimal("100.00")}
    with rig.store.transaction() as tx:
        p = tx.get_patient(key(S))
    assert p is not None and p.merged_into == ""


def test_unmapped_code_waits_in_its_queue_then_posts_once_after_the_fix(rig: Rig) -> None:
    rig.ingest(
        [
            adt("W1", S),
            charge("W2", S, code="Z9999", amount="42.00"),
            charge("W3", S, code="Z9999", amount="8.00"),
        ]
    )
    rig.drain()
    (item,) = rig.store.work_items()  # one item for the missing code, not one per charge
    assert (item.kind, item.queue, item.status) == (
        "unmapped_charge_code",
        "revenue-integrity",
        "open",
    )
    assert item.event_id == "mapping:charge_codes/Z9999" and item.key == "Z9999"
    assert "Z9999" in item.detail
    assert rig.entry_keys() == [] and rig.ar() == {}
    totals = rig.store.hold_totals([item.event_id])[item.event_id]
    assert totals.count == 2 and totals.amounts == (("USD", Decimal("50.00")),)

    # resubmitting before the fix neither posts nor opens a second item
    workitems.resubmit(rig.store, rig.bus, item.id, "", 1.0)
    rig.drain()
    (again,) = rig.store.work_items()
    assert again.status == "open" and rig.entry_keys() == []

    workitems.resolve(
        rig.store,
        item.id,
        {"revenue_account": "4999", "service_line": "Misc"},
        "",
        2.0,
        bus=rig.bus,
    )
    rig.drain()
    assert sorted(rig.entry_keys()) == [f"{corr('W2')}/0", f"{corr('W3')}/0"]
    assert rig.ar() == {(token(S), "USD"): Decimal("50.00")}
    assert rig.balanced()
    (item,) = rig.store.work_items()
    assert item.status == "resolved" and "released 2 held event(s) (50.00 USD)" in item.resolution
    assert mapping_holds.outcome(rig.store, item.event_id)["posted"] == 2
    # the same events again (a replay) post nothing twice
    for h in rig.store.held_events(item.event_id):
        rig.bus.replay([Publish(h.event_id, TOPIC, h.key, h.envelope)])
    rig.drain()
    assert len(rig.entry_keys()) == 2


@pytest.mark.parametrize(
    ("kw", "kind", "queue"),
    [
        ({"dept": "NOPE"}, "unmapped_department", "finance-master-data"),
        ({"code": "Q0000"}, "unmapped_charge_code", "revenue-integrity"),
    ],
)
def test_each_missing_mapping_goes_to_its_owner(
    rig: Rig, kw: dict[str, str], kind: str, queue: str
) -> None:
    rig.ingest([charge("U1", S, **kw)])
    rig.drain()
    (item,) = rig.store.work_items()
    assert (item.kind, item.queue) == (kind, queue)
    assert rig.entry_keys() == []


@pytest.fixture
def closed_rig(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Rig]:
    closed, policy = request.param
    r = make_rig(tmp_path, calendar=FiscalCalendar(closed=frozenset(closed), policy=policy))
    yield r
    r.store.close()


@pytest.mark.parametrize("closed_rig", [(("2026-11",), "reject")], indirect=True)
def test_closed_period_reject_opens_a_finance_close_item(closed_rig: Rig) -> None:
    closed_rig.ingest([charge("P1", S, amount="10.00")])
    closed_rig.drain()
    (item,) = closed_rig.store.work_items()
    assert (item.kind, item.queue, item.status) == ("closed_period", "finance-close", "open")
    assert "2026-11" in item.detail
    assert closed_rig.entry_keys() == []
    assert closed_rig.bus.dead_letters() == []


@pytest.mark.parametrize(
    ("closed_rig", "period"),
    [
        ((("2026-11",), "next_open"), "2026-12"),
        ((("2026-11", "2026-12"), "next_open"), "2027-01"),
    ],
    indirect=["closed_rig"],
)
def test_closed_period_next_open_moves_the_posting(closed_rig: Rig, period: str) -> None:
    closed_rig.ingest([charge("P2", S, amount="10.00")])
    closed_rig.drain()
    assert closed_rig.store.work_items() == []
    (entry,) = closed_rig.store.entries()
    assert entry.period == period
    assert entry.posted_on == date(int(period[:4]), int(period[5:]), 1)
    assert entry.moved_from == "2026-11"
    assert closed_rig.ar() == {(token(S), "USD"): Decimal("10.00")}


def test_open_period_posts_on_the_service_date(rig: Rig) -> None:
    rig.ingest([charge("P3", S, when="20261005")])
    rig.drain()
    (entry,) = rig.store.entries()
    assert (entry.period, entry.posted_on, entry.moved_from) == ("2026-10", date(2026, 10, 5), None)
    assert {ln.account for ln in entry.lines} == {AR, "4200"}
