"""HTTP API v1 for the executive view (issue 21): the console's `/console/executive.json`,
for a bearer token.

GET /api/v1/analytics/executive[?period=YYYY-MM]

The same figures as the console's Executive page (`analytics.executive.read`), read from
the analytics warehouse that `isthmus analytics export` (or `serve`'s scheduled export)
keeps, never from the inbox; no PHI in them (account tokens stay inside the A/R
computation). With `period`, the per-period series (margin, denials by month, trends,
close checklist) hold that accounting period only (`executive.for_period`). When the
figures cannot be read the answer is `application/problem+json` (RFC 9457) naming what
is missing: 404 when the warehouse was never exported (as the console page answers), 503
when the `analytics` extra is not installed or a running export holds the warehouse (with
Retry-After).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from isthmus.analytics import executive
from isthmus.analytics.warehouse import WAREHOUSE, Missing, modules
from isthmus.api import problems
from isthmus.app import Hub
from isthmus.errors import PROBLEM_BASE

PATH: Final = "/api/v1/analytics/executive"
PROBLEM: Final = problems.PROBLEM
RETRY_AFTER_S: Final = 5


def problem(status: int, missing: str, detail: str, retry_after: int | None = None) -> Response:
    """RFC 9457 problem details (api/problems.py); `missing` is `extra`, `warehouse` or
    `busy`."""
    headers = {"Cache-Control": "no-store"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return problems.answer(
        PATH,
        status,
        detail,
        type_=f"{PROBLEM_BASE}analytics-{missing}",
        title="the executive view is not available",
        extra={"missing": missing},
        headers=headers,
    )


def routes(hub: Hub, clock: Any = time.time) -> list[Route]:
    """The route of the executive view (GET `PATH`, `?period=YYYY-MM` to narrow it), read
    from the analytics warehouse as of `clock`'s day; an RFC 9457 problem when the extra (503)
    or the warehouse (404) is missing, or an export holds the warehouse (503)."""

    def read(db: Path) -> dict[str, Any]:
        as_of = datetime.fromtimestamp(clock(), UTC).date()
        return executive.read(db, hub.store, as_of)

    async def view(req: Request) -> Response:
        period = req.query_params.get("period")
        if period is not None and not executive.PERIOD.fullmatch(period):
            return problems.answer(
                req.url.path, 400, "period must be YYYY-MM", field="period", extra={"value": period}
            )
        try:
            modules()
        except Missing as exc:
            return problem(503, "extra", str(exc))
        db = Path(hub.settings.data_dir) / WAREHOUSE
        if not db.is_file():
            return problem(
                404,
                "warehouse",
                "no analytics warehouse yet: run `isthmus analytics "
                "export` (serve runs it on its schedule)",
            )
        try:
            data = await asyncio.to_thread(read, db)
        except executive.Busy:
            return problem(
                503,
                "busy",
                "the analytics warehouse is busy (an export runs); ask again shortly",
                RETRY_AFTER_S,
            )
        if period is not None:
            data = executive.for_period(data, period)
        return Response(
            json.dumps(data, default=str),
            200,
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    return [Route(PATH, view, methods=["GET"])]
