"""The console's Channels page (issue 18): every inbound channel with its counters, and
the pause and resume buttons, as `isthmus channels` shows and does (flows/channels.py).

Pause and resume are forms with the session's CSRF token (console/app.py checks it and
the role: integration-engineer or admin); each attempt is written to the audit trail with
its outcome, like the CLI's and the API's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from isthmus.flows import channels

if TYPE_CHECKING:
    from isthmus.console.app import Console, Ctx

PATH = "/channels"


def _bound(live: dict[str, Any] | None) -> dict[str, int]:
    run = (live or {}).get("run")
    return {} if run is None else {n: m.port for n, m in run.mllps.items()}


def page(console: Console, ctx: Ctx) -> Response:
    """The Channels page: every inbound channel with its counters and state, with pause and
    resume forms for those who may use them."""
    hub = console.hub
    rows = channels.table(hub.settings, hub.store, hub.bus, bound=_bound(console.live))
    return console.render(
        ctx,
        "channels.html",
        title="Channels",
        rows=rows,
        may_act=ctx.may("POST", PATH + "/{name}/pause"),
    )


def change(console: Console, ctx: Ctx, *, pause: bool) -> Response:
    """Pause (with its reason) or resume one channel, audit the attempt with its outcome, and
    say what happened."""
    name = ctx.request.path_params["name"]
    verb = "pause" if pause else "resume"
    reason = ctx.value("reason").strip() if pause else ""
    try:
        channels.set_state(
            console.hub.settings,
            console.hub.store,
            name,
            channels.PAUSED if pause else channels.RUNNING,
            by=ctx.actor,
            reason=reason,
            now=console.clock(),
        )
    except channels.ChannelRefused as exc:
        console.audit(ctx, f"channels.{verb}", name, "failed", reason=str(exc))
        return console.render(
            ctx,
            "error.html",
            exc.http_status,
            title=f"Not {verb}d",
            message=str(exc),
            field="name",
            back=console.prefix + PATH,
        )
    console.audit(ctx, f"channels.{verb}", name, "ok", reason=reason)
    return console.done(PATH, f"channel {name} {'paused' if pause else 'resumed'}")
