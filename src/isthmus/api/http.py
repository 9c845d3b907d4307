"""HTTP API v1 (Starlette on uvicorn): health, Prometheus metrics, status counters, trial
balance, lineage, work items.

Thin on purpose: every route reads through the hub and renders JSON; api/auth.py puts a
bearer token and a role check in front of every route but /health. Unknown ids answer
404 with the field at fault; every error is RFC 9457 problem+json (OperationOutcome
under /fhir), built in one place (api/problems.py); nothing here writes to the ledger.
The list routes page with one cursor and `next` link (api/pages.py), every time is ISO
8601 (observe/instant.py), and every answer carries a request id
(api/request_context.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from isthmus.api import (
    analytics,
    channels,
    destinations,
    fhir_routes,
    openapi,
    pages,
    problems,
    refunds,
    supply,
    workforce,
)
from isthmus.api.auth import protect
from isthmus.api.clients import TrustedProxies
from isthmus.api.health import Health
from isthmus.api.request_context import RequestContext
from isthmus.app import Hub
from isthmus.connectors.mllp import tls_context
from isthmus.errors import IsthmusError
from isthmus.observe import cursor, message_list
from isthmus.observe.instant import instant
from isthmus.observe.lineage import trace
from isthmus.observe.metrics import CONTENT_TYPE, KpiCache, LiveParts, collect, render
from isthmus.observe.views import trial_balance_view
from isthmus.recon.deposits import deposit_report

# The web console as an ASGI app for (hub, live); the CLI passes console.app.build_console
# (the console is a sibling shell: api/ does not import it).
ConsoleFactory = Callable[[Any, dict[str, Any] | None], ASGIApp]
WORKITEM_PAGES = "w1"  # the cursor tag of /api/v1/workitems (observe/cursor.py)


def build_app(  # noqa: C901 - the API's route table, one branch per route group
    hub: Hub,
    live: dict[str, Any] | None = None,
    *,
    console: ConsoleFactory | None = None,
) -> Starlette:
    """The hub's HTTP application: health, metrics, status, the v1 routes and /fhir behind the
    bearer-token check (api/auth.py), wrapped in the request context and the trusted-proxy
    rewrite; with `console`, the operator console is mounted at /console beside it."""
    probes = Health(hub)

    async def health(_: Request) -> JSONResponse:
        # readiness: the store, the bus and the schema answer, each bounded; no detail leaks
        code, body = await probes.check()
        run = (live or {}).get("run")
        dispatcher = None if run is None else run.dispatcher
        if dispatcher is not None:  # shown, never failing: intake goes on while the ERP rests
            body["erp"] = str(dispatcher.breaker.state)
        return JSONResponse(body, code)

    async def health_live(_: Request) -> JSONResponse:
        # liveness: this process and its event loop answer (a restart would not help more)
        return JSONResponse({"status": "ok"})

    kpi_cache = KpiCache(hub.store, hub.settings.sla, data_dir=hub.settings.data_dir)

    def live_parts() -> LiveParts | None:
        run = (live or {}).get("run")
        if run is None:
            return None
        return LiveParts(
            role=run.role,
            acks=None if run.inbox is None else dict(run.inbox.acks),
            mllp=None if run.mllp is None else run.mllp.stats,
            worker=None if run.worker is None else run.worker.stats,
            breaker=None if run.dispatcher is None else run.dispatcher.breaker.state,
        )

    def exposition() -> str:
        now = time.time()
        return render(
            collect(hub.store, hub.bus, now=now, live=live_parts(), kpis=kpi_cache.get(now))
        )

    async def metrics(_: Request) -> PlainTextResponse:
        text = await asyncio.to_thread(exposition)
        return PlainTextResponse(text, media_type=CONTENT_TYPE)

    async def status(_: Request) -> JSONResponse:
        counts = hub.store.counts()
        # events not yet applied: still in the inbox relay, or waiting on the bus
        body: dict[str, Any] = {
            "store": counts,
            "bus_pending": hub.bus.pending() + counts["unpublished"],
        }
        run = (live or {}).get("run")
        if run is not None:
            body["role"] = run.role
            if run.inbox is not None and run.mllp is not None:
                body["acks"] = run.inbox.acks
                body["mllp"] = dataclasses.asdict(run.mllp.stats)
            if run.worker is not None and run.dispatcher is not None:
                body["worker"] = {
                    "applied": run.worker.stats.applied,
                    "retried": run.worker.stats.retried,
                    "dead": run.worker.stats.dead,
                }
                body["erp_breaker"] = run.dispatcher.breaker.state
        return JSONResponse(body)

    async def spec(_: Request) -> JSONResponse:
        return JSONResponse(openapi.document())

    async def tb(_: Request) -> JSONResponse:
        return JSONResponse(trial_balance_view(hub.store))

    async def message(req: Request) -> Response:
        ref = req.path_params["ref"]
        found = trace(hub.store, ref)
        if found is None:
            return problems.answer(
                req.url.path,
                404,
                "no message has this inbox or correlation id",
                field="ref",
                extra={"value": ref},
            )
        return JSONResponse(found)

    async def messages(req: Request) -> Response:
        try:
            query, cursor, limit = message_list.from_params(req.query_params)
            found = await asyncio.to_thread(
                message_list.page, hub.store, query, cursor=cursor, limit=limit
            )
        except message_list.BadFilter as exc:
            return problems.from_error(req.url.path, exc)
        except message_list.BadCursor as exc:
            return problems.from_error(req.url.path, exc, field="cursor")
        return pages.answer(req, "messages", found["messages"], found["next"])

    async def deposits(req: Request) -> Response:
        raw = req.query_params.get("as_of")
        try:
            as_of = date.fromisoformat(raw) if raw else datetime.now(UTC).date()
        except ValueError:
            return problems.answer(
                req.url.path, 400, "as_of must be YYYY-MM-DD", field="as_of", extra={"value": raw}
            )
        records = await asyncio.to_thread(hub.store.deposit_records)
        return JSONResponse(
            deposit_report(
                records, as_of=as_of, limit_days=hub.settings.settlement.match_limit_days
            )
        )

    async def workitems(req: Request) -> Response:
        status = req.query_params.get("status")
        if status not in (None, "open", "resolved", "resubmitted"):
            return problems.answer(
                req.url.path, 400, "status must be open, resolved or resubmitted", field="status"
            )
        try:
            limit, start = pages.limit(req), pages.after(req, WORKITEM_PAGES, number=True)
        except pages.BadPage as exc:
            return problems.from_error(req.url.path, exc)
        found = await asyncio.to_thread(
            hub.store.work_items, status, limit + 1, start if isinstance(start, int) else None
        )
        shown, more = cursor.cut(found, limit, WORKITEM_PAGES, lambda w: w.id)
        return pages.answer(
            req,
            "workitems",
            [
                {
                    "id": w.id,
                    "kind": w.kind,
                    "queue": w.queue,
                    "status": w.status,
                    "event_id": w.event_id,
                    "detail": w.detail,
                    "created_at": instant(w.created_at),
                    "updated_at": instant(w.updated_at),
                }
                for w in shown
            ],
            more,
        )

    api = protect(
        Starlette(
            routes=[
                Route("/health", health),
                Route("/health/ready", health),
                Route("/health/live", health_live),
                Route("/metrics", metrics),
                Route("/api/v1/status", status),
                Route("/openapi.json", spec, methods=["GET"]),
                Route("/api/v1/ledger/trial-balance", tb),
                Route("/api/v1/messages", messages),
                Route("/api/v1/messages/{ref:path}", message),
                Route("/api/v1/workitems", workitems),
                Route("/api/v1/recon/deposits", deposits),
                *refunds.routes(hub),
                *channels.routes(hub, live),
                *destinations.routes(hub),
                *workforce.routes(hub),
                *supply.routes(hub),
                *analytics.routes(hub),
                *fhir_routes.routes(hub),
            ],
            exception_handlers={
                404: fhir_routes.http_error,
                405: fhir_routes.http_error,
                IsthmusError: problems.handler,
            },
        ),
        hub.governance,
        owners=hub.settings.ownership,
        store=hub.store,
        oidc_settings=hub.settings.oidc,
        max_body_bytes=hub.settings.limits.max_body_bytes,
    )
    # The client address every layer below sees (throttle, audit, console): X-Forwarded-For
    # only from [api] trusted_proxies (api/clients.py).
    # Every answer, the console's too, carries X-Request-Id and is access-logged
    # (api/request_context.py), inside the proxy rewrite so the log names the client.
    proxies = hub.settings.trusted_proxies
    if console is None:
        api.add_middleware(RequestContext)
        api.add_middleware(TrustedProxies, proxies=proxies)
        return api
    # /console signs people in with a session cookie of its own (console/session.py);
    # every other path keeps the bearer-token API above.
    return Starlette(
        routes=[
            Route("/console", lambda _: RedirectResponse("/console/", 307)),
            Mount("/console", app=console(hub, live)),
            Mount("", app=api),
        ],
        middleware=[Middleware(TrustedProxies, proxies=proxies), Middleware(RequestContext)],
    )


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: `serve` owns SIGINT/SIGTERM."""

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


def serve_http(
    hub: Hub, live: dict[str, Any], host: str, port: int, *, console: ConsoleFactory | None = None
) -> Coroutine[Any, Any, None]:
    """Bind the HTTP port now (OSError if it is taken, so `serve` fails at once) and return
    the coroutine that serves it. With [hub] tls_cert/tls_key it serves HTTPS (TLS 1.2+),
    with the same certificate as MLLP."""
    s = hub.settings
    ctx = tls_context(s.tls_cert, s.tls_key) if s.tls_cert and s.tls_key else None
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"HTTP port {host}:{port}: {exc.strerror}") from exc
    sock.listen(128)
    sock.setblocking(False)
    # proxy_headers off: uvicorn would take X-Forwarded-For from 127.0.0.1 as the client;
    # build_app reads it from [api] trusted_proxies only
    config = uvicorn.Config(
        build_app(hub, live, console=console),
        log_level="warning",
        access_log=False,
        lifespan="off",
        proxy_headers=False,
        ssl_context_factory=None if ctx is None else lambda _c, _d: ctx,
    )
    return _serve(_QuietServer(config), sock)


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    finally:
        sock.close()
