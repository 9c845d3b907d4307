"""Fault test: SIGKILL `serve` while it applies supply usages, then check stock and books.

The supply flow's claim: the supply state (stock, requisitions), the journal entries and
the applied usage ids commit in one transaction of the hub's store. So with thousands of
usages dropped into the watched folder and the hub killed -9 several times while it takes
and applies them (restarted on the same data directory each time), every usage is taken
off stock exactly once, the supply expense is the units used times their cost, inventory
holds the rest, and the reorder point, crossed once, made one requisition.
"""

from __future__ import annotations

import os
import random
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.flows.supply_state import Lineage
from isthmus.ledger.journal import validate_entry
from isthmus.ledger.supply import OrderLine
from tests.chart import DEMO_CHART
from tests.e2e.conftest import ServeFactory
from tests.e2e.helpers import TOKEN_SECRET, Serve

SEED = int(os.environ.get("ISTHMUS_FAULT_SEED", "11"))
KILLS = int(os.environ.get("ISTHMUS_FAULT_KILLS", "3"))
FILES, ROWS = 30, 100
STOCK, COST = 10_000, Decimal("2.00")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CONFIG = """
[supply]
[supply.par_levels."GAUZE|SURG"]
par = 10000
reorder_point = 5000
cost_center = "CC-4500"
unit_price = "2.00"
"""


def usage_file(f: int, dept: str) -> tuple[bytes, int]:
    rows = ["usage_id,item,location,quantity,used_on,department"]
    used = 0
    for r in range(ROWS):
        qty = 1 + (f * 7 + r) % 3
        used += qty
        rows.append(f"U{f:03}-{r:03},GAUZE,SURG,{qty},2026-11-03,{dept}")
    return ("\n".join(rows) + "\n").encode(), used


def open_hub(data: Path, cfg: Path) -> Hub:
    return Hub.open(load_settings(cfg, data_dir=data, env={"ISTHMUS_TOKEN_SECRET": TOKEN_SECRET}))


def test_kill9_while_applying_usages_takes_each_one_once(
    tmp_path: Path, serve_factory: ServeFactory
) -> None:
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(DEMO_CHART + CONFIG)
    serve: Serve = serve_factory("hub", start=False, config=cfg)
    hub = open_hub(serve.data_dir, cfg)
    try:
        dept = next(iter(hub.settings.mappings.department_cost_center))
        flow = hub.processor.supply
        assert flow is not None
        with hub.store.transaction() as tx:  # opening stock: 10,000 at 2.00
            flow.open_order(
                tx,
                OrderLine(
                    po="PO-1",
                    line="1",
                    item="GAUZE",
                    location="SURG",
                    quantity=Decimal(STOCK),
                    unit_price=COST,
                    currency="USD",
                    company="C100",
                ),
            )
            assert (
                flow.receive(
                    tx,
                    po="PO-1",
                    line="1",
                    quantity=Decimal(STOCK),
                    received_on=date(2026, 11, 2),
                    lineage=Lineage("GR-1", "gr-1"),
                )
                == "posted"
            )
    finally:
        hub.close()

    inbound = serve.data_dir / "drop" / "inbound"
    inbound.mkdir(parents=True, exist_ok=True)
    used = 0
    for f in range(FILES):
        body, n = usage_file(f, dept)
        used += n
        (inbound / f"usage-{f:03}.csv.part").write_bytes(body)
        (inbound / f"usage-{f:03}.csv.part").rename(inbound / f"usage-{f:03}.csv")

    rng = random.Random(SEED)
    serve.start()
    mid_stream = 0
    for _ in range(KILLS):  # kill while files are being taken and usages applied
        time.sleep(rng.uniform(1.5, 4.0))
        mid_stream += serve.metrics()["bus_pending"] > 0 or any(inbound.iterdir())
        serve.kill()
        serve.start()
    assert mid_stream, "no kill landed while there was work left: slow the kills down"
    deadline = time.monotonic() + 120
    while any(inbound.iterdir()) or any((serve.data_dir / "drop" / "processing").iterdir()):
        assert time.monotonic() < deadline, "the drop folder was not emptied"
        time.sleep(0.5)
    serve.wait_idle(timeout=120)
    assert serve.stop() == 0
    assert not any((serve.data_dir / "drop" / "failed").glob("*.csv"))

    hub = open_hub(serve.data_dir, cfg)
    try:
        flow = hub.processor.supply
        assert flow is not None
        state = flow.snapshot()
        entries = hub.store.entries(limit=1_000_000)
        usages = [e for e in entries if e.entry_key.startswith("supply/usage/")]
        assert len(usages) == FILES * ROWS  # each usage once, none lost
        assert all(validate_entry(e) == [] for e in entries)
        balance: dict[str, Decimal] = {}
        for e in entries:
            for ln in e.lines:
                balance[ln.account] = balance.get(ln.account, Decimal(0)) + ln.debit - ln.credit
        assert balance["6200"] == used * COST
        assert balance["1300"] == (STOCK - used) * COST
        assert state.book.quantity("GAUZE", "SURG") == STOCK - used
        assert state.book.value[("GAUZE", "SURG")] == balance["1300"]
        [req] = state.requisitions  # the reorder point is crossed once: par - on hand then
        assert Decimal(5001) <= req.quantity <= Decimal(5003)
        assert hub.store.work_items(status="open") == []
        assert hub.bus.dead_letters() == []
    finally:
        hub.close()
