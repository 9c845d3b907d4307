"""The console's Executive page and its JSON twin (issue 21): read from the warehouse.

`GET /console/executive` renders, and `GET /console/executive.json` returns, what
`analytics.executive.read` computes from the analytics warehouse that `isthmus analytics
export` (or `serve`'s scheduled export) keeps: margin per service line net of allowances,
denials and write-offs, denial trends, A/R aging and days in A/R by payer class, charge
lag and first-pass yield, the cash forecast and the close checklist. Nothing is read from
the inbox. Without the warehouse (never exported) or without the `analytics` extra, the
page says what to run or install (404 / 503), never a traceback.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from isthmus.analytics import executive
from isthmus.analytics.warehouse import WAREHOUSE, Missing
from isthmus.console import charts

if TYPE_CHECKING:
    from isthmus.console.app import Console, Ctx


def warehouse(console: Console) -> Path:
    """Where the analytics warehouse of this hub lives, under its data directory."""
    return Path(console.hub.settings.data_dir) / WAREHOUSE


def _data(console: Console) -> tuple[dict[str, Any] | None, int, str]:
    db = warehouse(console)
    if not db.is_file():
        return (
            None,
            404,
            (
                "no analytics warehouse yet: run `isthmus analytics export` "
                "(serve runs it on its schedule)"
            ),
        )
    as_of = datetime.fromtimestamp(console.clock(), UTC).date()
    try:
        return executive.read(db, console.hub.store, as_of), 200, ""
    except (Missing, executive.Busy) as exc:
        return None, 503, str(exc)


def as_json(console: Console, ctx: Ctx) -> Response:
    """The Executive view as JSON (not cached); an error object with 404 or 503 when there is
    no warehouse to read."""
    data, code, why = _data(console)
    body = data if data is not None else {"error": why}
    return Response(
        json.dumps(body, default=str),
        code,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def page(console: Console, ctx: Ctx) -> Response:
    """The Executive page: margin, denials, A/R, charge lag, cash forecast and close
    checklist charts read from the warehouse, or what to run or install when there is none."""
    data, code, why = _data(console)
    if data is None:
        return console.render(
            ctx,
            "error.html",
            code,
            title="No executive view",
            message=why,
            field="",
            back=console.prefix + "/",
        )
    margin = charts.bars(
        [
            (f"{r['service_line']} {r['period']}", max(0.0, float(r["net_margin"])))
            for r in data["margin"]
        ],
        title="Net margin per service line and period (a loss shows as 0)",
    )
    denials = charts.columns(
        [(r["period"], r["denied"]) for r in data["denials"]["by_month"]],
        title="Denied claims by month",
    )
    aging = charts.bars(
        [(r["payer_class"], float(r["open"])) for r in data["ar"]["by_class"]],
        title="Open A/R by payer class",
        color="#a23b3b",
    )
    return console.render(
        ctx,
        "executive.html",
        title="Executive",
        d=data,
        margin=margin,
        denials_chart=denials,
        aging=aging,
        buckets=[b[0] for b in executive.BUCKETS],
    )
