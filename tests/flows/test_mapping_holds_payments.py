"""One work item per missing mapping for payments too (issue 15, item 4).

An 835 claim payment, a card payment from a settlement file and an FT1 payment all need
their facility's ERP company: on a site that has not mapped the facility, all of them wait
behind the ONE `unmapped_facility` item of that facility (as its charges do), with their
count and amount; resolving it releases every one at once and they post. A payee with no
company holds its PLB adjustments behind the payee's one item. Through `Hub.open`, so on
the embedded adapters and, in the scale-out pass, on PostgreSQL + NATS.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.flows import mapping_holds, workitems
from isthmus.flows.file_intake import take_file
from isthmus.flows.relay import relay_unpublished
from isthmus.ledger.balance import trial_balance
from isthmus.store.ports import WorkItem
from tests.flows.helpers import bar, dft, ft1
from tests.flows.remit.helpers import Clp, Remit
from tests.flows.settlement.files import settlement_csv


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[Hub]:
    hub = Hub.open(load_settings(None, data_dir=tmp_path / "data"))
    try:
        yield hub
    finally:
        hub.close()


def _send(hub: Hub, *files: bytes) -> None:
    for i, raw in enumerate(files):
        take_file(hub.store, hub.settings, raw, f"f{i}", time.time())
    relay_unpublished(hub.store, hub.bus)
    hub.worker().drain()


def _open(hub: Hub) -> list[WorkItem]:
    return hub.store.work_items("open")


def test_payments_of_an_unmapped_facility_wait_behind_its_one_item(bare: Hub) -> None:
    _send(bare, bar("B1", "M1"), bar("B2", "M2"))
    _send(
        bare,
        Remit([Clp(pcn="AM1", paid="40.00"), Clp(pcn="AM2", paid="60.00", icn="ICN2")]).build(),
        settlement_csv([("D1", "T1", "payment", "AM1", "25.00", "1.00")]),
        dft("P1", "M2", ft1(1, "PAY1", amount="-10.00", ttype="PY")),
    )
    [item] = _open(bare)  # four payments, three feeds, one facility: one item
    assert (item.kind, item.queue, item.key, item.event_id) == (
        "unmapped_facility",
        "finance-master-data",
        "NORTH",
        mapping_holds.ref_of("facility_company", "NORTH"),
    )
    totals = bare.store.hold_totals([item.event_id])[item.event_id]
    assert (totals.count, totals.amounts) == (4, (("USD", Decimal("135.00")),))
    payment_entries = [e for e in bare.store.entries() if e.channel != "settlement"]
    assert payment_entries == []  # nothing of the four posted

    workitems.resolve(bare.store, item.id, {"company": "C9"}, "", time.time(), bus=bare.bus)
    bare.worker().drain()
    after = bare.store.work_item(item.id)
    assert after is not None and after.status == "resolved"
    assert "released 4 held event(s) (135.00 USD)" in after.resolution
    assert mapping_holds.outcome(bare.store, item.event_id)["posted"] == 4
    assert _open(bare) == []
    ar = [
        (ln.dims.company, ln.debit - ln.credit)
        for e in bare.store.entries()
        for ln in e.lines
        if ln.account == "1200"
    ]
    assert {c for c, _ in ar} == {"C9"}
    assert sum((v for _, v in ar), Decimal(0)) == Decimal("-135.00")
    assert trial_balance(bare.store.journal_lines()).balanced


def test_plb_adjustments_of_a_payee_wait_behind_its_one_item(bare: Hub) -> None:
    _send(bare, bar("B1", "M1"))
    bare.store.set_mapping_override("facility_company", "NORTH", "C9")
    _send(
        bare,
        Remit([Clp(pcn="AM1", paid="40.00")], plb=[("WO", "5.00"), ("L6", "-1.00")]).build(),
        Remit(
            [Clp(pcn="AM1", paid="10.00", icn="ICN2")], plb=[("WO", "2.00")], icn=2, trace="EFT0002"
        ).build(),
    )
    [item] = _open(bare)
    assert (item.kind, item.event_id) == ("unmapped_payee", "mapping:payee_company/1999999984")
    assert bare.store.hold_totals([item.event_id])[item.event_id].count == 3
    workitems.resolve(bare.store, item.id, {"company": "C9"}, "", time.time(), bus=bare.bus)
    bare.worker().drain()
    assert mapping_holds.outcome(bare.store, item.event_id)["posted"] == 3
    assert _open(bare) == []
