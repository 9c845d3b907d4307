"""The web console (issue 7): server-rendered pages under /console, no JavaScript needed.

Jinja2 templates, plain HTML forms posted and redirected (POST-redirect-GET), charts as
inline SVG (console/charts.py). Every route is an entry of the permission table
(governance.rbac, `GET /console/...`), checked against the roles of the signed-in token on
every request (console/session.py); what is not in the table is refused. State-changing
forms carry a CSRF token and are written to the audit trail with their outcome, like the
CLI's commands. The raw message (PHI) has its own route and permission, and each view of
it is audited.

The shell stays thin: pages read through console/reads.py, observe.lineage and
observe.kpis; buttons act through flows/workitems.py, as the CLI does.
"""

from __future__ import annotations

import asyncio
import math
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from isthmus.analytics.feed import site_feed
from isthmus.app import Hub
from isthmus.config import ConfigError
from isthmus.console import (
    channel_pages,
    charts,
    claim_pages,
    destination_pages,
    executive_pages,
    mapping_pages,
    reads,
    refund_pages,
    session,
    supply_pages,
)
from isthmus.flows import workitems as actions
from isthmus.flows.workitems import ActionRefused
from isthmus.governance import audit, identity, phi_access, rbac, throttle
from isthmus.governance.throttle import FailureThrottle
from isthmus.observe.kpis import compute_kpis
from isthmus.observe.lineage import trace

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
                return self.sign_in_form(request, 401, why=found, nxt=PREFIX + "/")
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

    # --- sign in / out -----------------------------------------------------------------

    def sign_in_form(
        self,
        request: Request,
        code: int = 200,
        *,
        why: str = "",
        nxt: str = PREFIX + "/",
        headers: dict[str, str] | None = None,
    ) -> Response:
        """The sign-in form with its CSRF token, set in its cookie too (session.py); a
        token the browser already holds is kept, so two open forms both work."""
        now = self.clock()
        held = request.cookies.get(session.LOGIN_COOKIE)
        token = (
            held
            if session.login_token_ok(self.key, held, held, now)
            else session.login_token(self.key, now)
        )
        resp = self.render(
            None,
            "login.html",
            code,
            why=why,
            csrf=token,
            next=nxt if _local_path(nxt) else PREFIX + "/",
        )
        resp.headers.update(headers or {})
        resp.set_cookie(
            session.LOGIN_COOKIE,
            token or "",
            max_age=int(session.LOGIN_TTL_S),
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return resp

    async def login_page(self, request: Request) -> Response:
        return self.sign_in_form(
            request,
            why=request.query_params.get("why", ""),
            nxt=request.query_params.get("next", PREFIX + "/"),
        )

    async def login(self, request: Request) -> Response:
        form = await self.read_form(request) or {}
        return await asyncio.to_thread(self._login, request, form)

    def _login(self, request: Request, form: dict[str, list[str]]) -> Response:
        gov, now = self.hub.governance, self.clock()
        clear = (form.get("token") or [""])[0].strip()
        nxt = (form.get("next") or [PREFIX + "/"])[0]
        client = request.client.host if request.client else ""
        foreign = session.foreign_origin(
            request.headers.get("origin"),
            request.headers.get("referer"),
            request.headers.get("host"),
        )
        if foreign or not session.login_token_ok(
            self.key, request.cookies.get(session.LOGIN_COOKIE), (form.get("csrf") or [""])[0], now
        ):
            why = foreign or "the sign-in form expired: sign in again"
            audit.record(
                gov, "anonymous", "console.login", "console", "denied", reason=why, client=client
            )
            return self.sign_in_form(request, 403, why=why, nxt=nxt)
        if not gov.initialized():
            return self.sign_in_form(
                request,
                401,
                nxt=nxt,
                why="hub not initialized: run `isthmus init` and sign in with its token",
            )
        if not clear:
            return self.sign_in_form(request, 400, nxt=nxt, why="enter an API token")
        token = gov.token_by_digest(identity.digest(clear))
        holder = gov.principal(token.principal) if token is not None else None
        refused = identity.refusal(token, holder, now)
        if refused is not None or token is None or holder is None:
            # counted against what the caller proved, as for the API (governance/throttle.py)
            wait = self.throttle.refuse(
                throttle.failure_key(client, token.id if token is not None else None), now
            )
            why = (
                "too many failed sign-ins; try again later"
                if wait > 0
                else refused or "invalid token"
            )
            audit.record(
                gov,
                holder.name if holder else "anonymous",
                "console.throttled" if wait > 0 else "console.login",
                "console",
                "denied",
                reason=why,
                client=client,
            )
            return self.sign_in_form(
                request,
                429 if wait > 0 else 401,
                nxt=nxt,
                why=why,
                headers={"Retry-After": str(math.ceil(wait))} if wait > 0 else None,
            )
        s = session.open_session(token.digest, now, token.expires_at)
        record = identity.session_record(holder, token, now, s.expires_at)
        gov.add_token(record)
        s = replace(s, record=record.digest)
        audit.record(
            gov,
            holder.name,
            "console.login",
            "console",
            "ok",
            token_id=token.id,
            session=record.id,
            client=client,
        )
        resp = RedirectResponse(nxt if _local_path(nxt) else PREFIX + "/", 303)
        resp.set_cookie(
            session.COOKIE,
            session.seal(s, self.key),
            max_age=int(s.expires_at - now),
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        resp.delete_cookie(session.LOGIN_COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return resp

    async def logout(self, request: Request) -> Response:
        form = await self.read_form(request) or {}
        return await asyncio.to_thread(self._logout, request, (form.get("csrf") or [""])[0])

    def _logout(self, request: Request, csrf: str) -> Response:
        """End the session on the server (its record revoked), then drop the cookie."""
        foreign = session.foreign_origin(
            request.headers.get("origin"),
            request.headers.get("referer"),
            request.headers.get("host"),
        )
        found = self.who(request)
        if not isinstance(found, str):
            sess, actor, _ = found
            if foreign or not session.csrf_ok(sess, csrf):
                return self.render(
                    None,
                    "error.html",
                    403,
                    title="Not signed out",
                    message=foreign
                    or "the form's CSRF token does not match "
                    "your session: reload the page and try again",
                    field="csrf",
                    back=PREFIX + "/",
                )
            gov = self.hub.governance
            record = gov.token_by_digest(sess.record)
            if record is not None:
                gov.revoke_token(record.id, self.clock())
            audit.record(
                gov,
                actor,
                "console.logout",
                "console",
                "ok",
                session=record.id if record else "",
                client=request.client.host if request.client else "",
            )
        resp = RedirectResponse(f"{PREFIX}/login?why=signed+out", 303)
        resp.delete_cookie(session.COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return resp

    async def stylesheet(self, _: Request) -> Response:
        css = resources.files("isthmus.console").joinpath("static/console.css").read_text()
        return Response(
            css,
            media_type="text/css",
            headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    # --- pages -------------------------------------------------------------------------

    def dashboard(self, ctx: Ctx) -> Response:
        d = reads.dashboard(self.hub, self.live, self.clock())
        return self.render(
            ctx,
            "dashboard.html",
            d=d,
            title="Dashboard",
            throughput=charts.columns(
                d["throughput"], title="Messages received per hour, last 24 h"
            ),
            depths=charts.bars(
                d["queue_depths"], title="Open work items per queue", color="#b5651d"
            ),
        )

    def messages(self, ctx: Ctx) -> Response:
        q = ctx.request.query_params
        problems: list[str] = []
        crit = reads.Search(
            control_id=q.get("control_id", ""),
            account_token=q.get("account_token", ""),
            correlation_id=q.get("correlation_id", ""),
            since=_ts(q.get("since", ""), "since", problems),
            until=_ts(q.get("until", ""), "until", problems),
            status=q.get("status", ""),
        )
        if crit.status not in ("", *reads.STATUSES):
            problems.append(f"status must be one of {', '.join(reads.STATUSES)}")
        found: dict[str, Any] = {"rows": [], "next": None}
        if not problems:
            try:
                found = reads.search_page(self.hub.store, crit, q)
            except ValueError as exc:  # a bad cursor
                problems.append(str(exc))
        return self.render(
            ctx,
            "messages.html",
            400 if problems else 200,
            title="Messages",
            rows=found["rows"],
            q=q,
            problems=problems,
            next=found["next"],
            next_query=reads.next_query(q, found["next"]),
        )

    def lineage(self, ctx: Ctx) -> Response:
        ref = ctx.request.path_params["ref"]
        t = trace(self.hub.store, ref)
        if t is None:
            return self.render(
                ctx,
                "error.html",
                404,
                title="Not found",
                message=f"no message {ref!r}",
                field="ref",
                back=PREFIX + "/messages",
            )
        return self.render(
            ctx,
            "trace.html",
            t=t,
            ref=ref,
            title=f"Trace {ref}",
            may_raw=ctx.may("GET", "/raw/{ref:path}"),
        )

    def raw(self, ctx: Ctx) -> Response:
        ref = ctx.request.path_params["ref"]
        t = trace(self.hub.store, ref, include_raw=True)
        self.audit(ctx, "messages.raw", ref, "ok" if t else "failed")
        if t is None:
            return self.render(
                ctx,
                "error.html",
                404,
                title="Not found",
                message=f"no message {ref!r}",
                field="ref",
                back=PREFIX + "/messages",
            )
        segments = t["raw"].replace("\r\n", "\r").replace("\n", "\r").split("\r")
        return self.render(
            ctx, "raw.html", t=t, ref=ref, title=f"Raw {ref}", segments=[s for s in segments if s]
        )

    def queues(self, ctx: Ctx) -> Response:
        q = ctx.request.query_params
        status = q.get("status", "open")
        if status not in ("open", "resolved", "resubmitted"):
            status = "open"
        store, now = self.hub.store, self.clock()
        items = store.work_items(status, limit=5000)
        counts: dict[str, int] = dict.fromkeys(reads.WORK_QUEUES, 0)
        for w in items:
            counts[w.queue] = counts.get(w.queue, 0) + 1
        queue = q.get("queue", "") or next((k for k, n in counts.items() if n), "")
        shown = [w for w in items if w.queue == queue]
        who = actions.assignees(store, [w.id for w in shown])
        rows = [reads.work_item_row(w, now, who.get(w.id, "")) for w in shown]
        return self.render(
            ctx,
            "queues.html",
            title="Work queues",
            counts=counts,
            queue=queue,
            status=status,
            rows=rows,
            fields=actions.FIELDS,
            elsewhere=actions.ELSEWHERE,
            may_act=ctx.may("POST", "/workitems/{id:int}/resolve"),
        )

    def _item_action(self, ctx: Ctx, name: str, act: Callable[[int], str]) -> Response:
        item_id = int(ctx.request.path_params["id"])
        back = "/queues?queue=" + urllib.parse.quote(ctx.value("queue"))
        try:
            message = act(item_id)
        except ActionRefused as exc:
            self.audit(ctx, f"workitems.{name}", f"workitem/{item_id}", "failed", reason=str(exc))
            return self.refuse(ctx, exc, PREFIX + back)
        self.audit(ctx, f"workitems.{name}", f"workitem/{item_id}", "ok", result=message)
        return self.done(back, f"work item {item_id}: {message}")

    def assign(self, ctx: Ctx) -> Response:
        who = ctx.value("assignee").strip() or ctx.actor

        def act(i: int) -> str:
            actions.assign(self.hub.store, i, who)
            return f"assigned to {who}"

        return self._item_action(ctx, "assign", act)

    def resolve(self, ctx: Ctx) -> Response:
        values = {k[4:]: v[0] for k, v in ctx.form.items() if k.startswith("set_") and v}

        def act(i: int) -> str:
            done = actions.resolve(
                self.hub.store, i, values, ctx.value("note"), self.clock(), bus=self.hub.bus
            )
            return "resolved" + (f", mapping {done} added" if done else "")

        return self._item_action(ctx, "resolve", act)

    def resubmit(self, ctx: Ctx) -> Response:
        def act(i: int) -> str:
            said = actions.resubmit(
                self.hub.store, self.hub.bus, i, ctx.value("note"), self.clock()
            )
            applied = self.apply_here()
            return f"resubmitted; {said}" + (f"; {applied} applied" if applied else "")

        return self._item_action(ctx, "resubmit", act)

    def dlq(self, ctx: Ctx) -> Response:
        now = self.clock()
        rows = [
            {
                "seq": d.seq,
                "event_id": d.msg_id,
                "key": d.key,
                "attempts": d.attempts,
                "reason": d.reason,
                "failed": reads.when(d.failed_at),
                "age": reads.age(now - d.failed_at),
            }
            for d in self.hub.bus.dead_letters(1000)
        ]
        return self.render(
            ctx,
            "dlq.html",
            title="Dead letters",
            rows=rows,
            may_replay=ctx.may("POST", "/dlq/replay"),
        )

    def dlq_replay(self, ctx: Ctx) -> Response:
        everything = ctx.value("all") == "1"
        try:
            seqs = None if everything else [int(s) for s in ctx.form.get("seq", [])]
            n = actions.replay_dead(self.hub.bus, seqs)
        except ValueError as exc:
            refused = (
                exc
                if isinstance(exc, ActionRefused)
                else ActionRefused("a dead letter's sequence number is a whole number", "seq")
            )
            self.audit(ctx, "dlq.replay", "dlq", "failed", reason=str(refused))
            return self.refuse(ctx, refused, PREFIX + "/dlq")
        applied = self.apply_here()
        self.audit(ctx, "dlq.replay", "dlq", "ok", replayed=n, seqs=seqs or "all")
        return self.done(
            "/dlq", f"replayed {n} dead letter(s)" + (f"; {applied} applied" if applied else "")
        )

    def recon(self, ctx: Ctx) -> Response:
        erp, why = None, ""
        if self.hub.settings.erp.kind == "tryton":
            try:
                erp = self.hub.open_erp()
            except ConfigError as exc:
                why = str(exc)
        try:
            r = reads.recon(self.hub.store, erp)
        except Exception as exc:  # noqa: BLE001 - the ERP adapter's errors, shown, not raised
            why = f"the ERP could not be read ({type(exc).__name__}: {exc})"
            r = reads.recon(self.hub.store, None)
        finally:
            if erp is not None:
                erp.close()
        return self.render(
            ctx,
            "recon.html",
            title="Reconciliation",
            r=r,
            why=why,
            erp_kind=self.hub.settings.erp.kind,
            states=charts.bars(sorted(r["states"].items()), title="ERP batches by state"),
        )

    def kpis(self, ctx: Ctx) -> Response:
        k = compute_kpis(
            self.hub.store,
            datetime.fromtimestamp(self.clock(), UTC),
            sla=self.hub.settings.sla,
            feed=self.kpi_feed,
        )
        return self.render(
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

    # --- the app -----------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/static/console.css", self.stylesheet, methods=["GET"]),
            self.page("/", self.dashboard),
            self.page("/messages", self.messages),
            self.page("/messages/{ref:path}", self.lineage),
            self.page("/raw/{ref:path}", self.raw),
            self.page("/queues", self.queues),
            self.page("/workitems/{id:int}/assign", self.assign, "POST"),
            self.page("/workitems/{id:int}/resolve", self.resolve, "POST"),
            self.page("/workitems/{id:int}/resubmit", self.resubmit, "POST"),
            self.page("/dlq", self.dlq),
            self.page("/dlq/replay", self.dlq_replay, "POST"),
            self.page("/recon", self.recon),
            self.page("/kpis", self.kpis),
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


def _local_path(path: str) -> bool:
    """A redirect target inside the console (no open redirect to another site)."""
    return path.startswith(PREFIX + "/") and not path.startswith("//") and "\\" not in path


def _ts(text: str, name: str, problems: list[str]) -> float | None:
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        problems.append(f"{name}: {text!r} is not a date/time (YYYY-MM-DD or YYYY-MM-DDTHH:MM)")
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def build_console(hub: Hub, live: dict[str, Any] | None = None) -> Starlette:
    """The console as an ASGI app, to mount at /console (api/http.py does)."""
    return Starlette(routes=Console(hub, live).routes())
