"""What the console pages show, read through the store and bus ports as plain data.

The dashboard (throughput, backlogs with their ages, rejection rate per channel, the ERP
circuit), the message search, the work queues and the reconciliation view. The lineage
of one message is observe.lineage's, the KPIs observe.kpis': the console shows the same
numbers as the CLI and the API. Nothing here writes; nothing here returns PHI (messages are
listed by control id, type and status; account tokens, never names or MRNs).
"""

from __future__ import annotations

import urllib.parse
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from isthmus.app import Hub
from isthmus.observe import message_list
from isthmus.observe.lineage import find_message
from isthmus.recon.erp import batch_controls, hub_balances
from isthmus.store.ports import MessageQuery, StoredMessage, WorkItem

_HOUR = 3600.0
_ALL = 1 << 62
WORK_QUEUES = (
    "revenue-integrity",
    "denials",
    "cash-posting",
    "refunds",
    "finance-gl",
    "finance-master-data",
    "finance-close",
)


def when(ts: float | str) -> str:
    """A time for a page: Unix seconds, or the ISO 8601 the API rows carry."""
    at = datetime.fromisoformat(ts) if isinstance(ts, str) else datetime.fromtimestamp(ts, UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def age(seconds: float) -> str:
    """An age in seconds as a person reads it: seconds, then minutes, hours, days."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} s"
    if s < 2 * 3600:
        return f"{s // 60} min"
    if s < 2 * 86400:
        return f"{s // 3600} h"
    return f"{s // 86400} d"


def dashboard(hub: Hub, live: dict[str, Any] | None, now: float) -> dict[str, Any]:
    """The dashboard's data: counts, 24-hour throughput and rejection rate per channel,
    backlogs with their oldest age, work queue depths and the ERP circuit."""
    store, bus = hub.store, hub.bus
    counts = store.counts()
    recent = store.messages(since=now - 24 * _HOUR, limit=_ALL)
    per_hour: Counter[int] = Counter(int((m.received_at - now) // _HOUR) for m in recent)
    throughput = [
        (f"{-h} h ago" if h < -1 else "this hour", per_hour.get(h, 0)) for h in range(-24, 0)
    ]
    per_channel: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for m in recent:
        per_channel[m.channel][0] += 1
        per_channel[m.channel][1] += m.status == "rejected"
    errors = [
        {
            "channel": ch,
            "messages": n,
            "rejected": bad,
            "rate": f"{100.0 * bad / n:.1f} %" if n else "-",
        }
        for ch, (n, bad) in sorted(per_channel.items())
    ]
    dead = bus.dead_letters(_ALL)
    outbox = store.outbox_items("pending")
    queues: dict[str, list[float]] = defaultdict(list)
    for w in store.work_items("open", limit=_ALL):
        queues[w.queue].append(w.created_at)
    backlog = [
        {
            "name": "events waiting to apply",
            "depth": bus.pending() + counts["unpublished"],
            "oldest": "-",
        },
        {
            "name": "dead letters",
            "depth": len(dead),
            "oldest": age(now - min(d.failed_at for d in dead)) if dead else "-",
        },
        {
            "name": "ERP outbox",
            "depth": len(outbox),
            "oldest": age(now - min(o.visible_at for o in outbox)) if outbox else "-",
        },
    ]
    backlog += [
        {"name": f"work queue {q}", "depth": len(ts), "oldest": age(now - min(ts))}
        for q, ts in sorted(queues.items())
    ]
    run = (live or {}).get("run")
    breaker = run.dispatcher.breaker.state if run is not None and run.dispatcher else None
    failing = [o for o in outbox if o.attempts]
    return {
        "counts": counts,
        "throughput": throughput,
        "received_24h": len(recent),
        "errors": errors,
        "backlog": backlog,
        "queue_depths": [(q, len(ts)) for q, ts in sorted(queues.items())],
        "breaker": breaker or "not run by this process",
        "erp_last_error": failing[0].last_error if failing else "",
    }


@dataclass(frozen=True)
class Search:
    """The Messages page's search criteria; empty fields do not filter."""

    control_id: str = ""
    account_token: str = ""
    correlation_id: str = ""
    since: float | None = None
    until: float | None = None
    status: str = ""


def _row(m: StoredMessage) -> dict[str, Any]:
    return {
        "id": m.id,
        "channel": m.channel,
        "control_id": m.control_id,
        "ref": f"{m.channel}/{m.control_id}",
        "type": m.message_type,
        "status": m.status,
        "ack": m.ack_code,
        "received": when(m.received_at),
        "error": m.error.split("|")[-1][:80],
    }


STATUSES = ("accepted", "rejected", "held", "ignored")


def search_page(store: Any, q: Search, params: Any, limit: int = 100) -> dict[str, Any]:
    """One page of the Messages page, newest first: by correlation id or account token as
    `search` finds them, else through the inbox's indexed, cursor-paged query (the same
    filters as the CLI and GET /api/v1/messages, observe/message_list.py)."""
    if q.correlation_id or q.account_token:
        return {"rows": search(store, q, limit), "next": None}
    query = MessageQuery(
        status=q.status or None,
        channel=_opt(params, "channel"),
        message_type=_opt(params, "type"),
        sender=_opt(params, "sender"),
        control_id=q.control_id.strip() or None,
        since=q.since,
        until=q.until,
    )
    found = message_list.page(store, query, cursor=_opt(params, "cursor"), limit=limit)
    return {"rows": [_page_row(r) for r in found["messages"]], "next": found["next"]}


def _opt(params: Any, name: str) -> str | None:
    value = params.get(name, "")
    return value.strip() or None


def _page_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        **r,
        "ref": f"{r['channel']}/{r['control_id']}",
        "received": when(r["received_at"]),
        "error": r["error"][:80],
    }


def next_query(params: Any, cursor: str | None) -> str:
    """The query string of the next page: the same filters, the new cursor."""
    if not cursor:
        return ""
    kept = {k: v for k, v in params.items() if k != "cursor" and v}
    return urllib.parse.urlencode({**kept, "cursor": cursor})


def search(store: Any, q: Search, limit: int = 200) -> list[dict[str, Any]]:
    """Messages matching every criterion given, newest first."""
    status = q.status or None
    if q.correlation_id:
        m = find_message(store, q.correlation_id.strip())
        found = [m] if m is not None else []
    elif q.account_token:
        corrs = {
            e.correlation_id
            for e in store.entries(limit=_ALL)
            if any(ln.dims.account_token == q.account_token.strip() for ln in e.lines)
        }
        found = [m for c in sorted(corrs) if (m := find_message(store, c)) is not None]
    else:
        found = store.messages(
            since=q.since, until=q.until, status=status, limit=limit if not q.control_id else _ALL
        )
    out = []
    for m in found:
        if q.control_id and q.control_id.strip().lower() not in m.control_id.lower():
            continue
        if status and m.status != status:
            continue
        if q.since is not None and m.received_at < q.since:
            continue
        if q.until is not None and m.received_at >= q.until:
            continue
        out.append(_row(m))
    out.sort(key=lambda r: -int(r["id"]))
    return out[:limit]


def work_item_row(w: WorkItem, now: float, assignee: str) -> dict[str, Any]:
    """A work item as a row of the work queues page, with its age and assignee."""
    return {
        "id": w.id,
        "kind": w.kind,
        "queue": w.queue,
        "status": w.status,
        "key": w.key,
        "detail": w.detail,
        "correlation_id": w.correlation_id,
        "age": age(now - w.created_at),
        "created": when(w.created_at),
        "resolution": w.resolution,
        "assignee": assignee,
    }


def recon(store: Any, erp: Any | None) -> dict[str, Any]:
    """Hub balances per (account, cost center) beside the ERP's when the ERP can be read,
    and per batch its control totals and delivery state."""
    total, unsealed = hub_balances(store, None)
    erp_side: dict[tuple[str, str], Decimal] = erp.balances(None) if erp is not None else {}
    posted: set[str] = erp.find_posted() if erp is not None else set()
    rows = []
    for key in sorted(set(total) | set(erp_side)):
        h = total.get(key, Decimal(0))
        e = erp_side.get(key)
        rows.append(
            {
                "account": key[0],
                "cost_center": key[1] or "-",
                "hub": h,
                "unsealed": unsealed.get(key, Decimal(0)),
                "erp": "-" if e is None else e,
                "variance": "-" if e is None else h - e,
            }
        )
    batches = batch_controls(store, posted, None)
    if erp is None:  # a file drop: delivery is what the hub can know
        for b in batches:
            b["state"] = {"sent": "delivered", "pending": "waiting", "dead": "failed"}.get(
                b["outbox"], b["outbox"]
            )
    return {"rows": rows, "batches": batches, "states": Counter(b["state"] for b in batches)}
