"""The destination list (issue 18, "operations like Mirth's dashboard"): per destination its
kind, address, breaker state and outbox counters, and the resend of deliveries.

What `isthmus destinations`, `GET /api/v1/destinations` and the console page show, read
from the store only, so any process of the site sees the same (the breaker state is
inferred from the outbox, as `isthmus status` infers the ERP's: flows/delivery.py). No
PHI: names, counts, ages, answer codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from isthmus.config import DestinationSettings, Settings
from isthmus.flows import delivery
from isthmus.observe.instant import instant
from isthmus.store.ports import DeliveryQuery, DeliveryRecord, Store

STATUSES = ("pending", "sent", "dead")


class UnknownDestination(LookupError):
    """A name that is no configured destination (the message names the known ones)."""


def address(d: DestinationSettings) -> str:
    """Where a destination sends, without any credentials a URL may carry."""
    if d.kind in ("webhook", "fhir"):
        parts = urlsplit(d.url)
        return urlunsplit(parts._replace(netloc=parts.hostname or "" if parts.port is None
                                         else f"{parts.hostname}:{parts.port}"))
    if d.kind == "mllp":
        return f"{d.host}:{d.port}"
    if d.kind == "nats":
        return d.subject
    if d.kind == "sftp":
        return f"{d.user}@{d.host}:{d.port or 22}{d.path}"
    return d.path


def table(settings: Settings, store: Store, now: float) -> list[dict[str, Any]]:
    """One row per configured destination (and per one with deliveries left from an older
    configuration), by name."""
    totals = {t.destination: t for t in store.delivery_totals()}
    rows = []
    for name in sorted(set(settings.destinations) | set(totals)):
        d = settings.destinations.get(name)
        t = totals.get(name)
        oldest = t.oldest_pending if t is not None else 0.0
        rows.append({
            "name": name, "kind": d.kind if d else "(not configured)",
            "address": address(d) if d else "",
            "state": delivery.breaker_state(store, name) if t and t.pending else "closed",
            "pending": t.pending if t else 0, "sent": t.sent if t else 0,
            "dead": t.dead if t else 0,
            "oldest_pending_age_s": round(max(0.0, now - oldest), 1) if oldest else None,
            "last_answer": t.last_answer if t else "",
            "last_answer_at": instant(t.last_answer_at) if t and t.last_answer_at else None,
        })
    return rows


def row(d: DeliveryRecord) -> dict[str, Any]:
    """One delivery as the shells show it (the body is not shown: it may hold PHI)."""
    return {"id": d.id, "destination": d.destination, "route": d.route,
            "event_type": d.event_type, "event_id": d.event_id, "status": d.status,
            "attempts": d.attempts, "created_at": instant(d.created_at),
            "sent_at": instant(d.sent_at) if d.sent_at else None, "answer": d.answer_code,
            "detail": d.answer_detail, "last_error": d.last_error, "bytes": len(d.body)}


def recent(store: Store, *, destination: str | None = None, status: str | None = None,
           limit: int = 50) -> list[dict[str, Any]]:
    """The newest deliveries of these filters, newest first."""
    found = store.deliveries(DeliveryQuery(destination=destination, status=status,
                                           limit=100_000))
    return [row(d) for d in reversed(found[-limit:])]


def resend(settings: Settings, store: Store, *, ids: Sequence[int] = (),
           destination: str | None = None, status: str | None = None,
           since: float | None = None, by: str, now: float) -> dict[str, Any]:
    """Resend deliveries by id, or every one of a destination (and status, and since):
    what was put back, and what was not (unknown, or pending already)."""
    if destination is not None and destination not in settings.destinations:
        raise UnknownDestination(f"no destination {destination!r}; configured: "
                                 f"{', '.join(sorted(settings.destinations)) or 'none'}")
    wanted = list(ids) or delivery.select(store, destination=destination, status=status,
                                          since=since)
    done = delivery.resend(store, [i for i in wanted if 0 < i < 1 << 63], now, by=by)
    return {"resent": done, "skipped": [i for i in wanted if i not in set(done)],
            "destination": destination, "status": status}


def why_not(store: Store, delivery_id: int) -> tuple[int, str]:
    """Why a delivery was not resent, as an HTTP status and a reason: 404, no such
    delivery; 409, it is pending already (it will be sent)."""
    found = store.deliveries(DeliveryQuery(ids=(delivery_id,))) \
        if 0 < delivery_id < 1 << 63 else []
    if not found:
        return 404, f"no delivery {delivery_id}"
    return 409, f"delivery {delivery_id} is {found[0].status} already: it will be sent"
