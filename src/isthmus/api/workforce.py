"""HTTP API v1 for the workforce feed: an HCM or scheduling system's webhook.

POST /api/v1/workforce/events  one event `{"type": "ShiftWorked", ...}` or
                               `{"events": [...]}` (`formats/workforce/events.py`)

The body is stored in the inbox before the answer (`flows/labor_intake.py`), its events
go to the bus right after: 202 with the event ids once it is durable; 200 with
`"duplicate": true` when the same body came before (nothing changes); 400 naming the field
at fault when it is not a workforce event (the body is kept, rejected, for inspection).
Event ids come from the feed's keys, so a shift sent here and again in a timecard file
accrues once.
"""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from isthmus.api import problems
from isthmus.api.json_body import BodyRefused, loads, read_body
from isthmus.app import Hub
from isthmus.flows.labor_intake import webhook_intake
from isthmus.flows.relay import publish_stored
from isthmus.observe import tracing


def routes(hub: Hub) -> list[Route]:
    """The route of the workforce webhook: POST /api/v1/workforce/events, kept in the inbox;
    400 when the event is not valid."""

    def take(body: bytes, peer: str, path: str) -> Response:
        intake = webhook_intake(body, peer=peer, now=time.time(), tenant=hub.settings.tenant)
        spans = tracing.ingest_started([intake.inbound])
        [res] = hub.store.accept([intake.inbound])
        tracing.ingest_done(spans, [res])
        publish_stored(hub.store, hub.bus, intake.inbound, res)
        if intake.error:
            return problems.answer(
                path,
                400,
                intake.error,
                error="invalid workforce event",
                field=intake.field,
                extra={"message_id": res.message_id},
            )
        return JSONResponse(
            {
                "message_id": res.message_id,
                "duplicate": res.duplicate,
                "events": [k.event_id for k in intake.events],
            },
            200 if res.duplicate else 202,
        )

    async def events(req: Request) -> Response:
        try:
            body = await read_body(req, hub.settings.limits)
            loads(body, hub.settings.limits)  # depth, duplicate keys, NaN: 400/413
        except BodyRefused as exc:
            return exc.response(req.url.path)
        peer = f"http:{req.client.host}" if req.client else "http"
        return await asyncio.to_thread(take, body, peer, req.url.path)

    return [Route("/api/v1/workforce/events", events, methods=["POST"])]
