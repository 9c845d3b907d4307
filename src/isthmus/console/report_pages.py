"""The console's read-only report pages: the Dashboard, Reconciliation and KPIs.

Dashboard: counters and charts of the last day (console/reads.py); Reconciliation: the
billing-vs-GL and ERP batch report, against the ERP itself when it is Tryton (an ERP that
cannot be read is said on the page, not raised); KPIs: observe.kpis over the analytics
facts (`Console.kpi_feed`). Charts are inline SVG (console/charts.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.responses import Response

from isthmus.config import ConfigError
from isthmus.console import charts, reads
from isthmus.observe.kpis import compute_kpis

if TYPE_CHECKING:
    from isthmus.console.app import Console, Ctx


def dashboard(console: Console, ctx: Ctx) -> Response:
    """The Dashboard: throughput of the last 24 hours and open work items per queue."""
    d = reads.dashboard(console.hub, console.live, console.clock())
    return console.render(
        ctx,
        "dashboard.html",
        d=d,
        title="Dashboard",
        throughput=charts.columns(d["throughput"], title="Messages received per hour, last 24 h"),
        depths=charts.bars(d["queue_depths"], title="Open work items per queue", color="#b5651d"),
    )


def recon(console: Console, ctx: Ctx) -> Response:
    """The Reconciliation page, with the ERP's side when [erp] is Tryton."""
    hub = console.hub
    erp, why = None, ""
    if hub.settings.erp.kind == "tryton":
        try:
            erp = hub.open_erp()
        except ConfigError as exc:
            why = str(exc)
    try:
        r = reads.recon(hub.store, erp)
    except Exception as exc:  # noqa: BLE001 - the ERP adapter's errors, shown, not raised
        why = f"the ERP could not be read ({type(exc).__name__}: {exc})"
        r = reads.recon(hub.store, None)
    finally:
        if erp is not None:
            erp.close()
    return console.render(
        ctx,
        "recon.html",
        title="Reconciliation",
        r=r,
        why=why,
        erp_kind=hub.settings.erp.kind,
        states=charts.bars(sorted(r["states"].items()), title="ERP batches by state"),
    )


def kpis(console: Console, ctx: Ctx) -> Response:
    """The KPIs page: denials by CARC, unapplied cash by age, SLA breaches per queue."""
    hub = console.hub
    k = compute_kpis(
        hub.store,
        datetime.fromtimestamp(console.clock(), UTC),
        sla=hub.settings.sla,
        feed=console.kpi_feed,
    )
    return console.render(
        ctx,
        "kpis.html",
        title="KPIs",
        k=k,
        carc=charts.bars(
            [(f"CARC {c.carc}", c.denials) for c in k.denials_by_carc],
            title="Denied claims by CARC",
            color="#a23b3b",
        ),
        aging=charts.bars(
            [(b.label + " days", b.count) for b in k.unapplied_cash],
            title="Unapplied cash items by age",
            color="#6a4c93",
        ),
        sla=charts.bars(
            list(k.sla_breaches.items()), title="SLA breaches per queue", color="#a23b3b"
        ),
    )
