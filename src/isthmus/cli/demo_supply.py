"""The supply side of `isthmus demo`'s day: PO-1001 received, the OR's usage through the
inbox (stock crosses its reorder points: requisitions), the supplier's invoices three-way
matched, then `isthmus supply report` and the margin of the demo's service lines; with
`--erp tryton` the same day through a local Tryton (demo/supply_tryton.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from isthmus.app import Hub
from isthmus.cli.demo_money import idle
from isthmus.config import Settings
from isthmus.demo import supply_day
from isthmus.flows.relay import relay_unpublished
from isthmus.flows.supply_intake import usage_intake
from isthmus.flows.supply_state import policy_from_table
from isthmus.recon.supply import service_line_margin, supply_report


async def _usage_day(hub: Hub, settings: Settings) -> int:
    """The OR cabinet's usage CSV through the inbox, applied; the usages it held."""
    intake = usage_intake(
        supply_day.usage_csv(),
        peer="file:demo-or-usage.csv",
        now=time.time(),
        tenant=settings.tenant,
    )
    hub.store.accept([intake.inbound])
    relay_unpublished(hub.store, hub.bus)
    await idle(hub)
    return intake.events


def _supply_summary(hub: Hub, settings: Settings, as_of: date) -> dict[str, Any]:
    """`isthmus supply report` and the margin of the demo's service lines."""
    flow = hub.processor.supply
    assert flow is not None
    policy, limit = policy_from_table(settings.supply)
    report = supply_report(flow.snapshot(), policy, as_of=as_of, limit_days=limit)
    revenue = {m.revenue_account for m in settings.mappings.charge_codes.values()}
    margin = [
        r
        for r in service_line_margin(
            hub.store.entries(), revenue_accounts=revenue, supply_expense_account="6200"
        )
        if r["service_line"] in ("Surgery", "Cardiology")
    ]
    return {
        "requisitions": report["requisitions"],
        "below_par": report["stock_out_risk"],
        "unmatched": [x["invoice"] for x in report["unmatched"]["items"]],
        "open_grni": report["open_grni_total"],
        "margin": margin,
    }


async def supply_day_in_hub(hub: Hub, settings: Settings) -> dict[str, Any]:
    """PO-1001 received, the OR's usage through the inbox (stock crosses its reorder points,
    requisitions), the supplier's invoices three-way matched; the report and the margin."""
    flow = hub.processor.supply
    assert flow is not None
    with hub.store.transaction() as tx:
        flow.sync(
            tx, orders=list(supply_day.ORDERS), receipts=list(supply_day.RECEIPTS), invoices=[]
        )
    usages = await _usage_day(hub, settings)
    with hub.store.transaction() as tx:
        invoices = flow.sync(tx, orders=[], receipts=[], invoices=list(supply_day.INVOICES)).counts
    return {
        "usages": usages,
        "invoices": invoices,
        **_supply_summary(hub, settings, as_of=date(2026, 11, 5)),
    }


async def tryton_supply_day(
    hub: Hub, settings: Settings, say: Callable[[str], None]
) -> dict[str, Any]:
    """The same day through Tryton (demo/supply_tryton.py): opening stock bought and
    received there, the OR's usage through the inbox, the requisitions sent, the buyer's
    steps, the receipts, one invoice matched and posted in Tryton, one held."""
    from isthmus.demo.supply_tryton import TrytonSupplyDay  # noqa: PLC0415 - --erp tryton

    flow = hub.processor.supply
    assert flow is not None
    day = TrytonSupplyDay.open(settings.erp, flow, lambda m: say(f"  {m}"))
    try:
        opening = await asyncio.to_thread(day.opening_stock)
        usages = await _usage_day(hub, settings)
        tryton = await asyncio.to_thread(day.procure)
    finally:
        day.close()
    return {
        "usages": usages,
        "invoices": tryton.pop("invoice_lines"),
        "tryton": {"opening_purchase": opening, **tryton},
        **_supply_summary(hub, settings, as_of=datetime.now(UTC).date()),
    }
