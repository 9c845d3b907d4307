"""The console's Destinations page (issue 18): every outbound destination with its outbox
counters, breaker state and last answer, the newest dead and pending deliveries, and a
Resend button, as `isthmus destinations` shows and does (flows/destinations.py).

Resend is a form with the session's CSRF token (console/app.py checks it and the role:
integration-engineer or admin); each attempt goes into the audit trail with its outcome,
like the CLI's and the API's. Bodies are never shown (they may hold PHI).

The ERP is the row `erp` (its own batch outbox, flows/export.py); its dead batch files
are listed with the dead deliveries as `erp:<outbox id>` and resent by `RESEND_ERP`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from isthmus.flows import destinations

if TYPE_CHECKING:
    from isthmus.console.app import Console, Ctx

PATH = "/destinations"
RESEND = "/deliveries/{id:int}/resend"
RESEND_ERP = "/deliveries/erp:{id:int}/resend"


def page(console: Console, ctx: Ctx) -> Response:
    """The Destinations page: every outbound destination with its counters, the newest dead
    and pending deliveries, and the Resend form for those who may resend."""
    hub = console.hub
    now = console.clock()
    return console.render(
        ctx,
        "destinations.html",
        title="Destinations",
        rows=destinations.table(hub.settings, hub.store, now, erp_dir=hub.export_dir),
        dead=destinations.recent(hub.store, status="dead", limit=50),
        pending=destinations.recent(hub.store, status="pending", limit=20),
        may_act=ctx.may("POST", RESEND),
    )


def resend(console: Console, ctx: Ctx, *, erp: bool = False) -> Response:
    """Resend one dead delivery (with `erp`, a dead ERP batch file), audit the attempt, and
    say why when it cannot be resent."""
    number = int(ctx.request.path_params["id"])
    delivery_id: int | str = f"{destinations.ERP_ID}{number}" if erp else number
    done = destinations.resend(
        console.hub.settings,
        console.hub.store,
        ids=[delivery_id],
        by=ctx.actor,
        now=console.clock(),
    )
    if not done["resent"]:
        status, reason = destinations.why_not(console.hub.store, delivery_id)
        console.audit(ctx, "deliveries.resend", str(delivery_id), "failed", reason=reason)
        return console.render(
            ctx,
            "error.html",
            status,
            title="Not resent",
            message=reason,
            field="id",
            back=console.prefix + PATH,
        )
    console.audit(ctx, "deliveries.resend", str(delivery_id), "ok")
    return console.done(PATH, f"delivery {delivery_id} resent")
