"""HTTP API v1 for the departmental inventory application's usage feed (issue 8).

POST /api/v1/supply/usage   the usage CSV as `text/csv` (`formats/supply/usage.py`)

The same intake as the drop folder and `isthmus ingest` (`flows/supply_intake.py`), so a
file posted here and dropped in the folder too is one inbox record. The body is stored
before the answer, and its events are published right after (a crash in between is healed
by `relay_unpublished`): 202 with the number of usages once it is durable; 200 with
`"duplicate": true` when the same body came before (nothing changes). A refused body is
kept, rejected, for inspection, and answered with every finding (row and column): 400
when it is not a usage file at all (unreadable, empty, a required column missing: the
findings of row 0, the file, or row 1, the header), 422 when rows are at fault (a file
with any finding posts nothing). A body sent as another media type than `text/csv`
(or `application/csv`; none at all is read as CSV) is answered 415 and not read, a body
over `[limits] max_body_bytes` 413 (api/json_body.py), not read past the limit. Usage
ids are the application's: the same usage in a later body takes stock once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from isthmus.api import problems
from isthmus.api.json_body import BodyRefused, read_body
from isthmus.app import Hub
from isthmus.flows.relay import publish_stored
from isthmus.flows.supply_intake import usage_intake
from isthmus.observe import tracing

MEDIA: Final = frozenset({"text/csv", "application/csv"})


def routes(hub: Hub) -> list[Route]:
    """The route of the inventory application's usage feed: POST /api/v1/supply/usage (CSV),
    kept in the inbox; 400 or 422 with the rows' findings when the file is not valid."""

    def take(body: bytes, peer: str, path: str) -> Response:
        intake = usage_intake(body, peer=peer, now=time.time(), tenant=hub.settings.tenant)
        spans = tracing.ingest_started([intake.inbound])
        [res] = hub.store.accept([intake.inbound])
        tracing.ingest_done(spans, [res])
        publish_stored(hub.store, hub.bus, intake.inbound, res)
        if intake.findings:
            first = intake.findings[0]
            return problems.answer(
                path,
                400 if first.row <= 1 else 422,
                str(first),
                error="invalid supply usage CSV",
                field=first.column,
                extra={
                    "field": first.column,
                    "row": first.row,
                    "message_id": res.message_id,
                    "findings": [
                        {"row": f.row, "column": f.column, "problem": f.text, "value": f.value}
                        for f in intake.findings
                    ],
                },
            )
        return JSONResponse(
            {"message_id": res.message_id, "duplicate": res.duplicate, "usages": intake.events},
            200 if res.duplicate else 202,
        )

    async def usage(req: Request) -> Response:
        media = req.headers.get("content-type", "").split(";")[0].strip().lower()
        if media and media not in MEDIA:
            return problems.answer(
                req.url.path,
                415,
                f"send the usage CSV as text/csv, not {media or 'no Content-Type'!r}",
                field="Content-Type",
            )
        try:
            body = await read_body(req, hub.settings.limits)
        except BodyRefused as exc:
            return exc.response(req.url.path)
        peer = f"http:{req.client.host}" if req.client else "http"
        return await asyncio.to_thread(take, body, peer, req.url.path)

    return [Route("/api/v1/supply/usage", usage, methods=["POST"])]
