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
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from isthmus.api.json_body import BodyRefused, loads, read_body
from isthmus.flows.inbox import publish_stored
from isthmus.flows.labor_intake import webhook_intake
from isthmus.observe import tracing


def routes(hub: Any) -> list[Route]:
    def take(body: bytes, peer: str) -> JSONResponse:
        intake = webhook_intake(body, peer=peer, now=time.time(),
                                tenant=hub.settings.tenant)
        spans = tracing.ingest_started([intake.inbound])
        [res] = hub.store.accept([intake.inbound])
        tracing.ingest_done(spans, [res])
        publish_stored(hub.store, hub.bus, intake.inbound, res)
        if intake.error:
            return JSONResponse({"error": "invalid workforce event", "reason": intake.error,
                                 "field": intake.field, "message_id": res.message_id}, 400)
        return JSONResponse({"message_id": res.message_id, "duplicate": res.duplicate,
                             "events": [k.event_id for k in intake.events]},
                            200 if res.duplicate else 202)

    async def events(req: Request) -> JSONResponse:
        try:
            body = await read_body(req, hub.settings.limits)
            loads(body, hub.settings.limits)  # depth, duplicate keys, NaN: 400/413
        except BodyRefused as exc:
            return exc.response()
        peer = f"http:{req.client.host}" if req.client else "http"
        return await asyncio.to_thread(take, body, peer)

    return [Route("/api/v1/workforce/events", events, methods=["POST"])]
