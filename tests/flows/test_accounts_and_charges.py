"""Patient accounts (registration, A40 merge) and charge posting (mapping, work items,
closed periods), through the worker against a real SQLite store."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from isthmus.bus.ports import Publish
from isthmus.flows.inbox import TOPIC, publications
from isthmus.ledger.periods import FiscalCalendar
from isthmus.model.envelope import decode_envelope
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
    rig.ingest([adt("R1", S, family="SMITH"), bar("R2", S), adt("R3", S, trigger="A08",
                                                               family="SMYTHE")])
    rig.drain()
    with rig.store.transaction() as tx:
        p = tx.get_patient(key(S))
    assert p is not None
    assert (p.mrn, p.authority, p.token, p.family_name) == (S, "HOSPMRN", token(S), "SMYTHE")
    assert p.token.startswith("PA-") and S not in p.token
    assert rig.store.counts()["patients"] == 1


def test_merge_moves_charges_and_reclassifies_ar(rig: Rig) -> None:
    rig.ingest([adt("M01", S), adt("M02", D), charge("M03", D, amount="100.00"),
                charge("M04", S, amount="50.00"), charge("M05", D, amount="20.00",
                                                        ttype="CD")])
    rig.drain()
    assert rig.ar() == {(token(D), "USD"): Decimal("80.00"),
                        (token(S), "USD"): Decimal("50.00")}
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
        (token(S), Decimal("80.00"), Decimal("0")), (token(D), Decimal("0"),
                                                     Decimal("80.00"))}

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
    rig.ingest([adt("W1", S), charge("W2", S, code="Z9999", amount="42.00")])
    rig.drain()
    (item,) = rig.store.work_items()
    assert (item.kind, item.queue, item.status) == ("unmapped_charge_code",
                                                    "revenue-integrity", "open")
    assert item.event_id == f"{corr('W2')}/0" and item.correlation_id == corr("W2")
    assert "Z9999" in item.detail
    assert rig.entry_keys() == [] and rig.ar() == {}

    # resubmitting before the fix neither posts nor opens a second item
    env = decode_envelope(item.envelope)
    rig.bus.replay([Publish(env.event_id, TOPIC, env.key, item.envelope)])
    rig.drain()
    assert len(rig.store.work_items()) == 1 and rig.entry_keys() == []

    rig.store.set_mapping_override("charge_codes", "Z9999", json.dumps(
        {"revenue_account": "4999", "service_line": "Misc"}))
    for _ in range(2):  # resubmitted twice: posted once
        rig.bus.replay([Publish(env.event_id, TOPIC, env.key, item.envelope)])
        rig.drain()
    assert rig.entry_keys() == [f"{corr('W2')}/0"]
    (entry,) = rig.store.entries()
    revenue = next(ln for ln in entry.lines if ln.account == "4999")
    assert revenue.credit == Decimal("42.00") and revenue.dims.service_line == "Misc"
    assert rig.ar() == {(token(S), "USD"): Decimal("42.00")}
    assert rig.balanced()
    (item,) = rig.store.work_items()
    assert item.status == "resolved"


@pytest.mark.parametrize(("kw", "kind", "queue"), [
    ({"dept": "NOPE"}, "unmapped_department", "finance-master-data"),
    ({"code": "Q0000"}, "unmapped_charge_code", "revenue-integrity"),
])
def test_each_missing_mapping_goes_to_its_owner(rig: Rig, kw: dict[str, str], kind: str,
                                                queue: str) -> None:
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


@pytest.mark.parametrize(("closed_rig", "period"), [
    ((("2026-11",), "next_open"), "2026-12"),
    ((("2026-11", "2026-12"), "next_open"), "2027-01"),
], indirect=["closed_rig"])
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
    assert (entry.period, entry.posted_on, entry.moved_from) == ("2026-10",
                                                                 date(2026, 10, 5), None)
    assert {ln.account for ln in entry.lines} == {AR, "4200"}
