"""The destination list (issue 18, "operations like Mirth's dashboard"): per destination its
kind, address, breaker state and outbox counters, and the resend of deliveries.

What `isthmus destinations`, `GET /api/v1/destinations` and the console page show, read
from the store only, so any process of the site sees the same (the breaker state is
inferred from the outbox, as `isthmus status` infers the ERP's: flows/delivery.py). No
PHI: names, counts, ages, answer codes.

The ERP is listed and resent here too, as the destination `erp` (kind: `[erp] kind`), but
its batches keep their own balanced-batch outbox and dispatcher (flows/export.py): its row
is computed from the `outbox` table, counted in outbox rows (a batch's CSV and JSONL
files), and its rows go by the ids `erp:<outbox id>` so they never mix with deliveries.
Only a dead ERP row is resent (a sent batch again would post twice); it goes back to
pending through `export.resubmit_rejected`, as `isthmus workitems resubmit` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from isthmus.config import DestinationSettings, ErpSettings, Settings
from isthmus.errors import NotFoundError
from isthmus.flows import delivery, export
from isthmus.observe.instant import instant
from isthmus.store.ports import DeliveryQuery, DeliveryRecord, OutboxItem, Store

STATUSES = ("pending", "sent", "dead")
ERP = "erp"  # the [erp] destination's name in these lists (no [destinations.erp]: config.py)
ERP_ID = "erp:"  # an ERP outbox row's id here: erp:<outbox id>


class UnknownDestination(NotFoundError, LookupError):
    """A name that is no configured destination (the message names the known ones); on the
    command line a wrong `--destination`, a usage error (exit 2) like UnknownChannel's."""

    exit_code = 2


def address(d: DestinationSettings) -> str:
    """Where a destination sends, without any credentials a URL may carry."""
    if d.kind in ("webhook", "fhir"):
        parts = urlsplit(d.url)
        return urlunsplit(
            parts._replace(
                netloc=parts.hostname or ""
                if parts.port is None
                else f"{parts.hostname}:{parts.port}"
            )
        )
    if d.kind == "mllp":
        return f"{d.host}:{d.port}"
    if d.kind == "nats":
        return d.subject
    if d.kind == "sftp":
        return f"{d.user}@{d.host}:{d.port or 22}{d.path}"
    return d.path


def table(
    settings: Settings, store: Store, now: float, *, erp_dir: Path | None = None
) -> list[dict[str, Any]]:
    """One row per configured destination (and per one with deliveries left from an older
    configuration), by name, the ERP's among them (`erp_dir`: its file drop)."""
    rows = [*_delivery_rows(settings, store, now), erp_row(settings, store, now, erp_dir)]
    return sorted(rows, key=lambda r: str(r["name"]))


def _delivery_rows(settings: Settings, store: Store, now: float) -> list[dict[str, Any]]:
    totals = {t.destination: t for t in store.delivery_totals()}
    rows = []
    for name in sorted(set(settings.destinations) | set(totals)):
        d = settings.destinations.get(name)
        t = totals.get(name)
        oldest = t.oldest_pending if t is not None else 0.0
        rows.append(
            {
                "name": name,
                "kind": d.kind if d else "(not configured)",
                "address": address(d) if d else "",
                "state": delivery.breaker_state(store, name) if t and t.pending else "closed",
                "pending": t.pending if t else 0,
                "sent": t.sent if t else 0,
                "dead": t.dead if t else 0,
                "oldest_pending_age_s": round(max(0.0, now - oldest), 1) if oldest else None,
                "last_answer": t.last_answer if t else "",
                "last_answer_at": instant(t.last_answer_at) if t and t.last_answer_at else None,
            }
        )
    return rows


def row(d: DeliveryRecord) -> dict[str, Any]:
    """One delivery as the shells show it (the body is not shown: it may hold PHI)."""
    return {
        "id": d.id,
        "destination": d.destination,
        "route": d.route,
        "event_type": d.event_type,
        "event_id": d.event_id,
        "status": d.status,
        "attempts": d.attempts,
        "created_at": instant(d.created_at),
        "sent_at": instant(d.sent_at) if d.sent_at else None,
        "answer": d.answer_code,
        "detail": d.answer_detail,
        "last_error": d.last_error,
        "bytes": len(d.body),
    }


def recent(
    store: Store, *, destination: str | None = None, status: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest deliveries of these filters (the ERP's outbox rows among them), newest
    first."""
    found = (
        []
        if destination == ERP
        else store.deliveries(DeliveryQuery(destination=destination, status=status, limit=100_000))
    )
    rows = [row(d) for d in reversed(found[-limit:])]
    if destination in (None, ERP):
        created = _batch_times(store)
        items = _erp_items(store, status)[-limit:]
        rows += [erp_item_row(o, created.get(o.batch_id, 0.0)) for o in reversed(items)]
        rows.sort(key=lambda r: str(r["created_at"]), reverse=True)
    return rows[:limit]


def parse_id(raw: str) -> int | str:
    """A delivery id as the shells take it: a number (a delivery), or `erp:<number>` (an
    ERP outbox row, kept as that text); ValueError with the reason otherwise."""
    number = raw.removeprefix(ERP_ID)
    if number.isascii() and number.isdigit() and 0 < int(number) < 1 << 63:
        return int(number) if number == raw else f"{ERP_ID}{int(number)}"
    raise ValueError(
        f"{raw[:40]!r} is no delivery id: a number, or {ERP_ID}<number> for an ERP batch file"
    )


def resend(
    settings: Settings,
    store: Store,
    *,
    ids: Sequence[int | str] = (),
    destination: str | None = None,
    status: str | None = None,
    since: float | None = None,
    by: str,
    now: float,
) -> dict[str, Any]:
    """Resend deliveries by id (`erp:<id>`: an ERP outbox row), or every one of a
    destination (and status, and since): what was put back, and what was not (unknown,
    pending already, or an ERP batch file that was sent)."""
    if destination is not None and destination not in settings.destinations and destination != ERP:
        raise UnknownDestination(
            f"no destination {destination!r}; configured: "
            f"{', '.join(sorted([*settings.destinations, ERP]))}"
        )
    wanted: list[int | str] = list(ids)
    if not wanted and destination == ERP:
        created = _batch_times(store)
        wanted = [
            f"{ERP_ID}{o.id}"
            for o in _erp_items(store, status)
            if since is None or created.get(o.batch_id, 0.0) >= since
        ]
    elif not wanted:
        wanted = list(delivery.select(store, destination=destination, status=status, since=since))
    numbers = [i for i in wanted if isinstance(i, int) and 0 < i < 1 << 63]
    done: list[int | str] = list(delivery.resend(store, numbers, now, by=by))
    erp = [
        int(i.removeprefix(ERP_ID))
        for i in wanted
        if isinstance(i, str) and i.startswith(ERP_ID) and i[len(ERP_ID) :].isdigit()
    ]
    done += [f"{ERP_ID}{i}" for i in erp_resend(store, erp, now, by=by)]
    return {
        "resent": done,
        "skipped": [i for i in wanted if i not in set(done)],
        "destination": destination,
        "status": status,
    }


def erp_resend(store: Store, outbox_ids: Sequence[int], now: float, *, by: str) -> list[int]:
    """Put dead ERP outbox rows back in their queue (`export.resubmit_rejected`, the path
    of `isthmus workitems resubmit`); a rejection's open `erp_rejected` work item becomes
    `resubmitted` (the dispatcher closes it once posted). The ids put back."""
    dead = {o.id: o for o in _erp_items(store, "dead")}
    done = []
    for i in dict.fromkeys(outbox_ids):
        item = dead.get(i)
        if item is None:
            continue
        ref = export.rejection_event_id(i)
        export.resubmit_rejected(store, ref, now)
        for w in store.work_items_for(item.batch_id):
            if w.kind == export.REJECTED_KIND and w.event_id == ref and w.status == "open":
                store.set_work_item_status(w.id, "resubmitted", f"resent by {by}", now)
        done.append(i)
    return done


def why_not(store: Store, delivery_id: int | str) -> tuple[int, str]:
    """Why a delivery was not resent, as an HTTP status and a reason: 404, no such
    delivery; 409, it is pending already (it will be sent), or an ERP batch file that
    was sent (only a dead one is resent: again, it would post twice)."""
    if isinstance(delivery_id, str):
        number = int(delivery_id.removeprefix(ERP_ID))
        item = next((o for o in _erp_items(store, None) if o.id == number), None)
        if item is None:
            return 404, f"no ERP batch file {delivery_id}"
        if item.status == "pending":
            return 409, f"ERP batch file {delivery_id} is pending already: it will be sent"
        return 409, (
            f"ERP batch file {delivery_id} is {item.status}: only a dead one is "
            "resent (sent again, it would post twice)"
        )
    found = store.deliveries(DeliveryQuery(ids=(delivery_id,))) if 0 < delivery_id < 1 << 63 else []
    if not found:
        return 404, f"no delivery {delivery_id}"
    return 409, f"delivery {delivery_id} is {found[0].status} already: it will be sent"


def erp_address(erp: ErpSettings, erp_dir: Path) -> str:
    """Where the ERP's batches go, without any credentials its URL may carry."""
    if erp.kind == "file":
        return str(erp_dir)
    parts = urlsplit(erp.url)
    url = urlunsplit(
        parts._replace(
            netloc=parts.hostname or "" if parts.port is None else f"{parts.hostname}:{parts.port}"
        )
    )
    return f"{url} ({erp.database})" if erp.kind == "tryton" and erp.database else url


def _erp_items(store: Store, status: str | None) -> list[OutboxItem]:
    return [o for o in store.outbox_items(status) if o.destination == export.DESTINATION]


def _batch_times(store: Store) -> dict[str, float]:
    return {batch_id: created for batch_id, _ch, _n, created in store.batches()}


def erp_row(
    settings: Settings, store: Store, now: float, erp_dir: Path | None = None
) -> dict[str, Any]:
    """The ERP as a destination row, from its outbox: the breaker as `isthmus status`
    infers it (`retrying` while a failed row waits), counts of outbox rows, the oldest
    pending batch's age, and the newest tried row's outcome (`sent`, or its error: the
    ERP's batch errors name accounts and periods, never PHI; payloads are not shown)."""
    items = _erp_items(store, None)
    pending = [o for o in items if o.status == "pending"]
    created = _batch_times(store) if pending else {}
    oldest = min((created.get(o.batch_id, 0.0) for o in pending), default=0.0)
    state = export.breaker_state(pending)
    if state == "closed" and any(
        o.attempts and o.last_error and o.last_error != "resubmitted" for o in pending
    ):
        state = "retrying"
    tried = max((o for o in items if o.attempts), key=lambda o: o.id, default=None)
    answer = "" if tried is None else "sent" if tried.status == "sent" else tried.last_error[:200]
    return {
        "name": ERP,
        "kind": settings.erp.kind,
        "address": erp_address(
            settings.erp, erp_dir if erp_dir is not None else settings.data_dir / "exports" / "erp"
        ),
        "state": state,
        "pending": len(pending),
        "sent": sum(o.status == "sent" for o in items),
        "dead": sum(o.status == "dead" for o in items),
        "oldest_pending_age_s": round(max(0.0, now - oldest), 1) if oldest else None,
        "last_answer": answer,
        "last_answer_at": instant(tried.visible_at)
        if tried is not None and tried.status == "sent" and tried.visible_at
        else None,
    }


def erp_item_row(o: OutboxItem, created_at: float) -> dict[str, Any]:
    """One ERP outbox row as the shells show a delivery (its payload is not shown)."""
    return {
        "id": f"{ERP_ID}{o.id}",
        "destination": ERP,
        "route": "export",
        "event_type": f"JournalBatch ({o.fmt})",
        "event_id": o.batch_id,
        "status": o.status,
        "attempts": o.attempts,
        "created_at": instant(created_at) if created_at else "",
        "sent_at": instant(o.visible_at) if o.status == "sent" and o.visible_at else None,
        "answer": "",
        "detail": "",
        "last_error": o.last_error,
        "bytes": len(o.payload),
    }
