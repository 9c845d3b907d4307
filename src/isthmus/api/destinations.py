"""HTTP API v1 for outbound destinations (issue 18): the list with its outbox counters,
and the resend of one delivery.

A thin shell over flows/destinations.py, like `isthmus destinations`:

GET  /api/v1/destinations               every destination: name, kind, address, breaker
                                        state, pending, sent, dead, oldest pending age,
                                        last answer; `recent`: the newest dead deliveries
                                        (the ERP's dead batch files among them)
POST /api/v1/deliveries/{id}/resend     200 {"resent": [id]} (the same idempotency key);
                                        `erp:<outbox id>`: a dead ERP batch file
                                        (the ERP is the destination `erp`)

Resend needs the role integration-engineer or admin (governance/rbac.py) and goes into the
audit trail with its outcome (`deliveries.resend`). A delivery that is still
pending answers 409 (404 when there is no such delivery) with the reason, and is
audited as failed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from isthmus.api import problems
from isthmus.app import Hub
from isthmus.flows import destinations
from isthmus.governance import audit


def routes(hub: Hub) -> list[Route]:
    """The outbound routes: GET /api/v1/destinations (outbox counters, the latest dead
    deliveries) and POST /api/v1/deliveries/{id}/resend."""

    async def listing(_: Request) -> JSONResponse:
        def read() -> dict[str, Any]:
            return {
                "destinations": destinations.table(
                    hub.settings, hub.store, time.time(), erp_dir=hub.export_dir
                ),
                "recent": destinations.recent(hub.store, status="dead", limit=50),
            }

        return JSONResponse(await asyncio.to_thread(read))

    async def resend(req: Request) -> Response:
        try:
            delivery_id = destinations.parse_id(req.path_params["id"])
        except ValueError as exc:
            return problems.answer(req.url.path, 404, str(exc), field="id")
        actor = str(req.scope.get("state", {}).get("principal", "anonymous"))

        def act() -> Response:
            done = destinations.resend(
                hub.settings, hub.store, ids=[delivery_id], by=actor, now=time.time()
            )
            if not done["resent"]:
                status, reason = destinations.why_not(hub.store, delivery_id)
                audit.record(
                    hub.governance,
                    actor,
                    "deliveries.resend",
                    str(delivery_id),
                    "failed",
                    reason=reason,
                )
                return problems.answer(
                    req.url.path,
                    status,
                    reason,
                    field="id",
                    error="not found" if status == 404 else "not resent",
                )
            audit.record(hub.governance, actor, "deliveries.resend", str(delivery_id), "ok")
            return JSONResponse({"resent": done["resent"]})

        return await asyncio.to_thread(act)

    return [
        Route("/api/v1/destinations", listing, methods=["GET"]),
        Route("/api/v1/deliveries/{id}/resend", resend, methods=["POST"]),
    ]
