"""The web console (issue 7): server-rendered pages under /console, no JavaScript needed.

Jinja2 templates, plain HTML forms posted and redirected (POST-redirect-GET), charts as
inline SVG (console/charts.py). Every route is an entry of the permission table
(governance.rbac, `GET /console/...`), checked against the roles of the signed-in token on
every request (console/session.py); what is not in the table is refused. State-changing
forms carry a CSRF token and are written to the audit trail with their outcome, like the
CLI's commands. The raw message (PHI) has its own route and permission, and each view of
it is audited.

This module is the frame every page shares: the `Console` (rendering, the audit, the gate
in front of every page: session, permission, form size, CSRF) and the route table. The pages
are one module per group: sign_in.py (sign-in and sign-out), report_pages.py (dashboard,
reconciliation, KPIs), message_pages.py (search, trace, raw), queue_pages.py (work queues,
dead letters), and refund_pages.py, supply_pages.py, mapping_pages.py, channel_pages.py,
destination_pages.py, claim_pages.py, executive_pages.py. The shell stays thin: pages read
through console/reads.py, observe.lineage and observe.kpis; buttons act through
flows/workitems.py, as the CLI does.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from isthmus.analytics.feed import site_feed
from isthmus.app import Hub
from isthmus.console import (
    channel_pages,
    claim_pages,
    destination_pages,
    executive_pages,
    mapping_pages,
    message_pages,
    queue_pages,
    reads,
    refund_pages,
    report_pages,
    session,
    sign_in,
    supply_pages,
)
from isthmus.flows.workitems import ActionRefused
from isthmus.governance import audit, identity, phi_access, rbac
from isthmus.governance.throttle import FailureThrottle

PREFIX = "/console"
MAX_FORM = 64 * 1024
# Who may see a raw message (PHI): the one table of governance.phi_access, which the
# permission of `GET /console/raw/...` follows (tests/governance/test_phi_access.py).
PHI_ROLES = phi_access.rule("message:raw").readers
NAV = (
    ("Dashboard", "/"),
    ("Messages", "/messages"),
    ("Work queues", "/queues"),
    ("Dead letters", "/dlq"),
    ("Reconciliation", "/recon"),
    ("KPIs", "/kpis"),
    ("Supply", "/supply"),
    ("Mappings", mapping_pages.PATH),
    ("Channels", channel_pages.PATH),
    ("Destinations", destination_pages.PATH),
    ("Claims", claim_pages.PATH),
    ("Executive", "/executive"),
)
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self';"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


@dataclass
class Ctx:
    """One signed-in request: who, with which roles, and the form it posted."""

    request: Request
    actor: str
    roles: tuple[str, ...]
    csrf: str
    form: dict[str, list[str]] = field(default_factory=dict)

    def value(self, name: str, default: str = "") -> str:
        return (self.form.get(name) or [default])[0]

    def may(self, method: str, path: str) -> bool:
        return rbac.decide(rbac.http_action(method, PREFIX + path), self.roles).allowed


Handler = Callable[[Ctx], Response]


class Console:
    """The operator console: the hub it shows, this process's live parts, the clock, the
    sign-in throttle and session key, and the page handlers that render and audit."""

    def __init__(
        self, hub: Hub, live: dict[str, Any] | None, clock: Callable[[], float] = time.time
    ) -> None:
        self.hub = hub
        self.live = live
        self.prefix = PREFIX
        self.clock = clock
        self.throttle = FailureThrottle()  # failed sign-ins, as for the API's tokens
        self.kpi_feed = site_feed(hub.store, hub.settings.data_dir)  # the KPIs' facts
        self.key = session.session_key(hub.processor.secret)  # [hub] token_secret or the site key
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("isthmus.console", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.globals["P"] = PREFIX
        self.env.filters["when"] = reads.when

    # --- rendering ---------------------------------------------------------------------

    def render(self, ctx: Ctx | None, name: str, code: int = 200, **data: Any) -> Response:
        nav = [(label, path) for label, path in NAV if ctx and ctx.may("GET", path)]
        if ctx and ctx.may("GET", "/refunds"):
            nav.append(("Refunds", "/refunds"))
        q = ctx.request.query_params if ctx else {}
        html = self.env.get_template(name).render(
            ctx=ctx, nav=nav, ok=q.get("ok", ""), error=q.get("error", ""), **data
        )
        return HTMLResponse(html, code, headers=_HEADERS)

    def refuse(self, ctx: Ctx, exc: ActionRefused, back: str) -> Response:
        return self.render(
            ctx, "error.html", 400, title="Not done", message=str(exc), field=exc.field, back=back
        )

    def apply_here(self) -> int:
        """Process what was just put on the bus when the console runs outside `serve`
        (tests, an embedded tool); under `serve` the hub's workers apply it."""
        if (self.live or {}).get("run") is not None:
            return 0
        drained: int = self.hub.worker().drain()
        return drained

    def done(self, path: str, message: str) -> Response:
        sep = "&" if "?" in path else "?"
        return RedirectResponse(f"{PREFIX}{path}{sep}ok={urllib.parse.quote(message)}", 303)

    def audit(self, ctx: Ctx, action: str, target: str, outcome: str, **detail: Any) -> None:
        client = ctx.request.client
        audit.record(
            self.hub.governance,
            ctx.actor,
            f"console.{action}",
            target,
            outcome,
            client=client.host if client else "",
            **detail,
        )

    # --- the gate in front of every page -----------------------------------------------

    def who(self, request: Request) -> tuple[session.Session, str, tuple[str, ...]] | str:
        """(session, principal, roles) of the request, or why there is none."""
        s = session.unseal(request.cookies.get(session.COOKIE), self.key, self.clock())
        if s is None:
            return "sign in to continue"
        gov = self.hub.governance
        token = gov.token_by_digest(s.digest)
        holder = gov.principal(token.principal) if token is not None else None
        refused = identity.refusal(token, holder, self.clock()) or identity.session_refusal(
            gov.token_by_digest(s.record) if s.record else None, self.clock()
        )
        if refused is not None or token is None or holder is None:
            return f"session ended: {refused or 'invalid token'}"
        return s, holder.name, identity.effective_roles(token, holder)

    def page(self, path: str, handler: Handler, method: str = "GET") -> Route:
        action = rbac.http_action(method, PREFIX + path)

        async def endpoint(request: Request) -> Response:
            found = await asyncio.to_thread(self.who, request)
            if isinstance(found, str):
                if method == "GET":
                    back = urllib.parse.quote(
                        request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    )
                    return RedirectResponse(
                        f"{PREFIX}/login?next={back}&why={urllib.parse.quote(found)}", 303
                    )
                return sign_in.form(self, request, 401, why=found, nxt=PREFIX + "/")
            sess, actor, roles = found
            ctx = Ctx(request, actor, roles, sess.csrf)
            decision = rbac.decide(action, roles)
            if not decision.allowed:
                await asyncio.to_thread(
                    self.audit, ctx, "denied", request.url.path, "denied", reason=decision.reason
                )
                return self.render(
                    ctx,
                    "error.html",
                    403,
                    title="Not allowed",
                    message=decision.reason,
                    field="",
                    back=PREFIX + "/",
                )
            if method == "POST":
                form = await self.read_form(request)
                if form is None:
                    return self.render(
                        ctx,
                        "error.html",
                        413,
                        title="Form too large",
                        message="the form is larger than 64 KiB",
                        field="",
                        back=PREFIX + "/",
                    )
                ctx.form = form
                if not session.csrf_ok(sess, ctx.value("csrf")):
                    await asyncio.to_thread(self.audit, ctx, "csrf", request.url.path, "denied")
                    return self.render(
                        ctx,
                        "error.html",
                        403,
                        title="Form expired",
                        message="the form's CSRF token does not match your "
                        "session: reload the page and try again",
                        field="csrf",
                        back=PREFIX + "/",
                    )
            return await asyncio.to_thread(handler, ctx)

        return Route(path, endpoint, methods=[method])

    @staticmethod
    async def read_form(request: Request) -> dict[str, list[str]] | None:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM:
                return None
        return urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)

    async def stylesheet(self, _: Request) -> Response:
        css = resources.files("isthmus.console").joinpath("static/console.css").read_text()
        return Response(
            css,
            media_type="text/css",
            headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    # --- the app -----------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            *sign_in.routes(self),
            Route("/static/console.css", self.stylesheet, methods=["GET"]),
            self.page("/", lambda c: report_pages.dashboard(self, c)),
            self.page("/messages", lambda c: message_pages.search(self, c)),
            self.page("/messages/{ref:path}", lambda c: message_pages.lineage(self, c)),
            self.page("/raw/{ref:path}", lambda c: message_pages.raw(self, c)),
            self.page("/queues", lambda c: queue_pages.queues(self, c)),
            self.page("/workitems/{id:int}/assign", lambda c: queue_pages.assign(self, c), "POST"),
            self.page(
                "/workitems/{id:int}/resolve", lambda c: queue_pages.resolve(self, c), "POST"
            ),
            self.page(
                "/workitems/{id:int}/resubmit", lambda c: queue_pages.resubmit(self, c), "POST"
            ),
            self.page("/dlq", lambda c: queue_pages.dlq(self, c)),
            self.page("/dlq/replay", lambda c: queue_pages.dlq_replay(self, c), "POST"),
            self.page("/recon", lambda c: report_pages.recon(self, c)),
            self.page("/kpis", lambda c: report_pages.kpis(self, c)),
            self.page("/executive", lambda c: executive_pages.page(self, c)),
            self.page("/executive.json", lambda c: executive_pages.as_json(self, c)),
            self.page("/refunds", lambda c: refund_pages.page(self, c)),
            self.page("/refunds", lambda c: refund_pages.request(self, c), "POST"),
            self.page(
                "/refunds/{id}/approve",
                lambda c: refund_pages.decide(self, c, approve=True),
                "POST",
            ),
            self.page(
                "/refunds/{id}/reject",
                lambda c: refund_pages.decide(self, c, approve=False),
                "POST",
            ),
            self.page(mapping_pages.PATH, lambda c: mapping_pages.page(self, c)),
            self.page(channel_pages.PATH, lambda c: channel_pages.page(self, c)),
            self.page(claim_pages.PATH, lambda c: claim_pages.page(self, c)),
            self.page(claim_pages.ONE, lambda c: claim_pages.timeline(self, c)),
            self.page(destination_pages.PATH, lambda c: destination_pages.page(self, c)),
            self.page(
                destination_pages.RESEND, lambda c: destination_pages.resend(self, c), "POST"
            ),
            self.page(
                destination_pages.RESEND_ERP,
                lambda c: destination_pages.resend(self, c, erp=True),
                "POST",
            ),
            self.page(
                channel_pages.PATH + "/{name}/pause",
                lambda c: channel_pages.change(self, c, pause=True),
                "POST",
            ),
            self.page(
                channel_pages.PATH + "/{name}/resume",
                lambda c: channel_pages.change(self, c, pause=False),
                "POST",
            ),
            self.page(mapping_pages.RESOLVE, lambda c: mapping_pages.resolve(self, c), "POST"),
            self.page("/supply", lambda c: supply_pages.page(self, c)),
            self.page(
                "/supply/approve", lambda c: supply_pages.decide(self, c, approve=True), "POST"
            ),
            self.page(
                "/supply/reject", lambda c: supply_pages.decide(self, c, approve=False), "POST"
            ),
        ]


def build_console(hub: Hub, live: dict[str, Any] | None = None) -> Starlette:
    """The console as an ASGI app, to mount at /console (api/http.py does)."""
    return Starlette(routes=Console(hub, live).routes())
