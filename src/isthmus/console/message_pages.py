"""The console's Messages pages: the search of inbound messages, one message's trace, and
its raw text.

The search reads through console/reads.py (the same filters as `isthmus messages`, cursor
paged); the trace is observe.lineage's (message, events, journal entries, ERP batch lines,
work items). The raw message holds PHI: it has its own route and permission (the readers
of governance.phi_access), and each view of it is written to the audit trail.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from isthmus.console import reads
from isthmus.observe.lineage import trace

if TYPE_CHECKING:
    from isthmus.console.app import Console, Ctx


def search(console: Console, ctx: Ctx) -> Response:
    """The Messages page: inbound messages matching the query's filters, a page at a time;
    a filter that does not parse is named on the page (400)."""
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
            found = reads.search_page(console.hub.store, crit, q)
        except ValueError as exc:  # a bad cursor
            problems.append(str(exc))
    return console.render(
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


def lineage(console: Console, ctx: Ctx) -> Response:
    """One message's trace: what it became, step by step (observe/lineage.py)."""
    ref = ctx.request.path_params["ref"]
    t = trace(console.hub.store, ref)
    if t is None:
        return _not_found(console, ctx, ref)
    return console.render(
        ctx,
        "trace.html",
        t=t,
        ref=ref,
        title=f"Trace {ref}",
        may_raw=ctx.may("GET", "/raw/{ref:path}"),
    )


def raw(console: Console, ctx: Ctx) -> Response:
    """One message's raw text, a segment a line; every view is audited (PHI)."""
    ref = ctx.request.path_params["ref"]
    t = trace(console.hub.store, ref, include_raw=True)
    console.audit(ctx, "messages.raw", ref, "ok" if t else "failed")
    if t is None:
        return _not_found(console, ctx, ref)
    segments = t["raw"].replace("\r\n", "\r").replace("\n", "\r").split("\r")
    return console.render(
        ctx, "raw.html", t=t, ref=ref, title=f"Raw {ref}", segments=[s for s in segments if s]
    )


def _not_found(console: Console, ctx: Ctx, ref: str) -> Response:
    return console.render(
        ctx,
        "error.html",
        404,
        title="Not found",
        message=f"no message {ref!r}",
        field="ref",
        back=console.prefix + "/messages",
    )


def _ts(text: str, name: str, problems: list[str]) -> float | None:
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        problems.append(f"{name}: {text!r} is not a date/time (YYYY-MM-DD or YYYY-MM-DDTHH:MM)")
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
