"""Safe defaults and one work item per missing mapping (issue 15, items 3 and 4).

A hub with no chart posts nothing to demonstration accounts: each charge waits behind the
ONE work item of the first mapping it lacks (facility, then department, then charge code),
with the count, amount and oldest of what it holds. Resolving an item stores the mapping
and releases every event held behind it at once; the last fix posts. `[mappings] include =
"demo"` is the demonstration chart, asked for by name. Through `Hub.open`, so on the
embedded adapters and, in the scale-out pass, on PostgreSQL + NATS.
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
from isthmus.observe.lineage import trace
from isthmus.store.ports import WorkItem
from tests.chart import demo_config
from tests.flows.helpers import adt, charge


def _open(data: Path, config: Path | None) -> Hub:
    return Hub.open(load_settings(config, data_dir=data))


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[Hub]:
    """A hub started as `serve` starts without a config: no chart at all."""
    hub = _open(tmp_path / "data", None)
    try:
        yield hub
    finally:
        hub.close()


def _send(hub: Hub, *raws: bytes) -> None:
    for i, raw in enumerate(raws):
        take_file(hub.store, hub.settings, raw, f"m{i}.hl7", time.time())
    relay_unpublished(hub.store, hub.bus)
    hub.worker().drain()


def _open_items(hub: Hub) -> list[WorkItem]:
    return hub.store.work_items("open")


def _resolve(hub: Hub, item: WorkItem, **values: str) -> str:
    workitems.resolve(hub.store, item.id, values, "", time.time(), bus=hub.bus)
    hub.worker().drain()
    after = hub.store.work_item(item.id)
    assert after is not None and after.status == "resolved"
    return after.resolution


def test_no_chart_holds_every_charge_behind_one_item_per_missing_key(bare: Hub) -> None:
    _send(
        bare,
        adt("R1", "M1"),
        adt("R2", "M2"),
        charge("C1", "M1", "100.00"),
        charge("C2", "M2", "25.50"),
        charge("C3", "M1", "4.50"),
    )
    assert bare.store.entries() == []  # nothing posts to any chart's accounts
    [item] = _open_items(bare)  # three charges, one missing facility: one item
    assert (item.kind, item.queue, item.key, item.event_id) == (
        "unmapped_facility",
        "finance-master-data",
        "NORTH",
        mapping_holds.ref_of("facility_company", "NORTH"),
    )
    totals = bare.store.hold_totals([item.event_id])[item.event_id]
    assert (totals.count, totals.amounts) == (3, (("USD", Decimal("130.00")),))
    assert totals.oldest > 0
    # the message's trace names the item it waits behind
    shown = trace(bare.store, "mllp/EHR^NORTH:C2")
    assert shown is not None and [w["id"] for w in shown["work_items"]] == [item.id]
    assert "M1" not in item.detail and "DOE" not in item.detail  # no patient field


def test_resolving_each_missing_mapping_releases_everything_and_the_last_posts(bare: Hub) -> None:
    _send(bare, adt("R1", "M1"), charge("C1", "M1", "100.00"), charge("C2", "M1", "20.00"))
    [facility] = _open_items(bare)
    assert "released 2 held event(s) (120.00 USD)" in _resolve(bare, facility, company="C9")
    [department] = _open_items(bare)  # the same charges, now missing their cost center
    assert (department.kind, department.key) == ("unmapped_department", "LAB")
    assert bare.store.hold_totals([department.event_id])[department.event_id].count == 2
    _resolve(bare, department, cost_center="CC-9")
    [code] = _open_items(bare)
    assert (code.kind, code.key) == ("unmapped_charge_code", "80053")
    with pytest.raises(workitems.ActionRefused, match="revenue account is required"):
        workitems.resolve(
            bare.store, code.id, {"service_line": "Lab"}, "", time.time(), bus=bare.bus
        )
    _resolve(bare, code, revenue_account="4999", service_line="Lab")
    assert _open_items(bare) == []
    entries = bare.store.entries()
    assert sorted(e.correlation_id for e in entries) == ["mllp/EHR^NORTH:C1", "mllp/EHR^NORTH:C2"]
    dims = {(ln.account, ln.dims.company, ln.dims.cost_center) for e in entries for ln in e.lines}
    assert ("4999", "C9", "CC-9") in dims
    done = mapping_holds.outcome(bare.store, code.event_id)
    assert (done["held"], done["posted"]) == (0, 2)
    # a charge for the same keys now posts at once, behind nothing
    _send(bare, charge("C3", "M1", "1.00"))
    assert len(bare.store.entries()) == 3 and _open_items(bare) == []
    assert sorted(r[:2] for r in bare.store.mapping_overrides(mapping_holds.TABLES)) == [
        ("charge_codes", "80053"),
        ("department_cost_center", "LAB"),
        ("facility_company", "NORTH"),
    ]


def test_a_resolved_item_releases_nothing_twice(bare: Hub) -> None:
    _send(bare, adt("R1", "M1"), charge("C1", "M1", "100.00"))
    [item] = _open_items(bare)
    _resolve(bare, item, company="C9")
    with pytest.raises(workitems.ActionRefused, match="already resolved"):
        workitems.resolve(bare.store, item.id, {"company": "C8"}, "", time.time(), bus=bare.bus)
    assert (
        workitems.resubmit(bare.store, bare.bus, item.id, "", time.time())
        == "released 0 held event(s)"
    )


def test_the_demo_chart_is_included_by_name(tmp_path: Path) -> None:
    hub = _open(tmp_path / "data", demo_config(tmp_path))
    try:
        assert hub.settings.mappings.include == "demo"
        _send(hub, adt("R1", "M1"), charge("C1", "M1", "100.00"))
        assert _open_items(hub) == []
        [e] = hub.store.entries()
        assert {ln.account for ln in e.lines} == {"1200", "4200"}  # the demo's lab revenue
    finally:
        hub.close()


def test_a_name_in_the_department_field_is_held_by_digest_and_never_mapped(tmp_path: Path) -> None:
    hub = _open(tmp_path / "data", demo_config(tmp_path))
    try:
        name = "SMITHSON, JANE"  # typed into FT1-13 instead of a department code
        _send(
            hub,
            adt("R1", "M1"),
            charge("C1", "M1", "100.00", dept=name),
            charge("C2", "M1", "5.00", dept=name),
        )
        [item] = _open_items(hub)
        assert item.kind == "unmapped_department"
        assert "SMITHSON" not in item.key + item.event_id + item.detail
        assert item.key.startswith("<not a code: 14 characters, sha256 ")
        assert hub.store.hold_totals([item.event_id])[item.event_id].count == 2
        # a cost center keyed on the digest would never match what the charges carry:
        # refused, and the charges stay held for a corrected resend
        with pytest.raises(workitems.ActionRefused, match="not a code"):
            workitems.resolve(
                hub.store, item.id, {"cost_center": "CC-9"}, "", time.time(), bus=hub.bus
            )
        assert hub.store.mapping_overrides(mapping_holds.TABLES) == []
        assert hub.store.hold_totals([item.event_id])[item.event_id].count == 2
        # a FHIR Organization id (36 characters) is a code and is shown as one
        uuid = "3f1c2b9e-5d4a-4c1b-9e8f-0a1b2c3d4e5f"
        _send(hub, charge("C3", "M1", "7.00", dept=uuid))
        assert uuid in {w.key for w in _open_items(hub)}
    finally:
        hub.close()
