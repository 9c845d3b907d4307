"""HTTP API v1 for inbound channels (issue 18): the list with counters, pause, resume.

A thin shell over flows/channels.py, like `isthmus channels`:

GET  /api/v1/channels                 every channel: name, transport, address, state (who
                                      changed it, why, when), received, ignored, refused,
                                      queued, delivered, errored, last message time
POST /api/v1/channels/{name}/pause    {"reason"} optional; 200 with the channel's row
POST /api/v1/channels/{name}/resume   200 with the channel's row

Pause and resume need the role integration-engineer or admin (governance/rbac.py) and are
written to the audit trail with their outcome (`channels.pause`, `channels.resume`). The
state is kept in the store, so every listener of the site follows it within a second. An
unknown name answers 404 naming the channels that can be paused; a channel with no
listener of its own (x12 files come through the drop folder) answers 409.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from isthmus.api import problems
from isthmus.api.json_body import BodyRefused, loads, read_body
from isthmus.app import Hub
from isthmus.flows import channels
from isthmus.governance import audit


def _bound(live: dict[str, Any] | None) -> dict[str, int]:
    """The ports this process's MLLP channels listen on (port 0 binds a free one)."""
    run = (live or {}).get("run")
    return {} if run is None else {n: m.port for n, m in run.mllps.items()}


def routes(hub: Hub, live: dict[str, Any] | None = None) -> list[Route]:
    """The inbound-channel routes: GET /api/v1/channels, POST
    /api/v1/channels/{name}/pause (an optional reason) and /api/v1/channels/{name}/resume."""

    def rows() -> list[dict[str, Any]]:
        return channels.table(hub.settings, hub.store, hub.bus, bound=_bound(live))

    async def listing(_: Request) -> JSONResponse:
        return JSONResponse({"channels": await asyncio.to_thread(rows)})

    def change(verb: str, state: str) -> Any:
        async def endpoint(req: Request) -> Response:
            name = req.path_params["name"]
            actor = str(req.scope.get("state", {}).get("principal", "anonymous"))
            reason = ""
            if verb == "pause":
                try:
                    raw = await read_body(req, hub.settings.limits)
                    body = loads(raw, hub.settings.limits) if raw.strip() else {}
                except BodyRefused as exc:
                    return exc.response(req.url.path)
                if not isinstance(body, dict) or not isinstance(body.get("reason", ""), str):
                    return problems.answer(
                        req.url.path,
                        400,
                        'the body is {"reason": text}, or empty',
                        field="reason",
                        pointer="#/reason",
                    )
                reason = body.get("reason", "")

            def act() -> Response:
                try:
                    channels.set_state(
                        hub.settings,
                        hub.store,
                        name,
                        state,
                        by=actor,
                        reason=reason,
                        now=time.time(),
                    )
                except channels.ChannelRefused as exc:
                    audit.record(
                        hub.governance, actor, f"channels.{verb}", name, "failed", reason=str(exc)
                    )
                    return problems.from_error(
                        req.url.path,
                        exc,
                        field="name",
                        error=("not found" if exc.http_status == 404 else "no listener"),
                    )
                audit.record(hub.governance, actor, f"channels.{verb}", name, "ok", reason=reason)
                row = next(r for r in rows() if r["name"] == name)
                return JSONResponse(row)

            return await asyncio.to_thread(act)

        return endpoint

    return [
        Route("/api/v1/channels", listing, methods=["GET"]),
        Route("/api/v1/channels/{name}/pause", change("pause", channels.PAUSED), methods=["POST"]),
        Route(
            "/api/v1/channels/{name}/resume", change("resume", channels.RUNNING), methods=["POST"]
        ),
    ]
