"""One page of the inbox, newest first, for the CLI, the console and `GET /api/v1/messages`.

The three shells take the same filters (status, channel, type, sender, control id, time:
store/ports.py MessageQuery) and hand back the same opaque cursor: the page's next call
starts below the last id shown (keyset paging on the store's indexes, never an offset).
A cursor is base64url of "m1:<id>"; anything else is refused as a bad cursor.
Rows carry identity, type, status and ACK, never the raw message or a patient field.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from isthmus.store.ports import MessageQuery, Store, StoredMessage

MAX_LIMIT = 500
_TAG = "m1:"


class BadCursor(ValueError):
    """The cursor was not one this hub gave out."""


def encode_cursor(before_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_TAG}{before_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if text.startswith(_TAG) and text[len(_TAG):].isdigit():
            return int(text[len(_TAG):])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise BadCursor("cursor is not one this hub gave out: use the `next` of a page")


def row(m: StoredMessage) -> dict[str, Any]:
    return {"id": m.id, "channel": m.channel, "control_id": m.control_id,
            "type": m.message_type, "status": m.status, "ack": m.ack_code,
            "received_at": m.received_at, "error": m.error.split("|")[-1][:200]}


def page(store: Store, query: MessageQuery, *, cursor: str | None = None,
         limit: int = 50) -> dict[str, Any]:
    """{"messages": [...], "next": cursor or None}: `next` is None on the last page."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be from 1 to {MAX_LIMIT}")
    before = decode_cursor(cursor) if cursor else None
    found = store.message_page(query, before=before, limit=limit + 1)
    shown = found[:limit]
    more = len(found) > limit and shown
    return {"messages": [row(m) for m in shown],
            "next": encode_cursor(shown[-1].id) if more else None}


class BadFilter(ValueError):
    """A filter of the query string is malformed; `field` names it."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _time(text: str, name: str) -> float:
    from datetime import UTC, datetime  # noqa: PLC0415 - query strings only

    try:
        t = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadFilter(f"{name} must be an ISO 8601 time", name) from exc
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


def from_params(params: Any) -> tuple[MessageQuery, str | None, int]:
    """(query, cursor, limit) from query-string parameters (a mapping of str)."""
    def get(name: str) -> str | None:
        value = params.get(name)
        return value.strip() if value and value.strip() else None
    since, until = get("since"), get("until")
    limit_text = get("limit") or "50"
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise BadFilter(f"limit must be a whole number from 1 to {MAX_LIMIT}", "limit")
    query = MessageQuery(status=get("status"), channel=get("channel"),
                         message_type=get("type"), sender=get("sender"),
                         control_id=get("control_id"),
                         since=_time(since, "since") if since else None,
                         until=_time(until, "until") if until else None)
    return query, get("cursor"), int(limit_text)
