"""One page of the inbox, newest first, for the CLI, the console and `GET /api/v1/messages`.

The three shells take the same filters (status, channel, type, sender, control id, time:
store/ports.py MessageQuery) and hand back the same opaque cursor: the page's next call
starts below the last id shown (keyset paging on the store's indexes, never an offset).
A cursor is base64url of "m1:<id>" (observe/cursor.py, shared by every paged list); anything
else is refused as a bad cursor. Rows carry identity, type, status, ACK and the time received
(ISO 8601, as every API time), never the raw message or a patient field.
"""

from __future__ import annotations

from typing import Any

from isthmus.errors import InvalidInput
from isthmus.observe import cursor as pages
from isthmus.observe.cursor import BadCursor
from isthmus.observe.instant import instant, seconds
from isthmus.store.ports import MessageQuery, Store, StoredMessage

MAX_LIMIT = pages.MAX_LIMIT
_TAG = "m1"


def encode_cursor(before_id: int) -> str:
    """The cursor of the next page: rows below inbox id `before_id`."""
    return pages.encode(_TAG, before_id)


def decode_cursor(cursor: str) -> int:
    """The inbox id a message-list cursor starts below; `BadCursor` when it is not one."""
    return pages.decode_int(_TAG, cursor)


def row(m: StoredMessage) -> dict[str, Any]:
    """A message as a list row: identity, type, status, ACK, time received and the last part
    of its error (200 characters at most), never the raw message."""
    return {
        "id": m.id,
        "channel": m.channel,
        "control_id": m.control_id,
        "type": m.message_type,
        "status": m.status,
        "ack": m.ack_code,
        "received_at": instant(m.received_at),
        "error": m.error.split("|")[-1][:200],
    }


def page(
    store: Store, query: MessageQuery, *, cursor: str | None = None, limit: int = 50
) -> dict[str, Any]:
    """{"messages": [...], "next": cursor or None}: `next` is None on the last page."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be from 1 to {MAX_LIMIT}")
    before = decode_cursor(cursor) if cursor else None
    found = store.message_page(query, before=before, limit=limit + 1)
    shown, after = pages.cut(found, limit, _TAG, lambda m: m.id)
    return {"messages": [row(m) for m in shown], "next": after}


class BadFilter(InvalidInput, ValueError):
    """A filter of the query string is malformed; `field` names it."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _time(text: str, name: str) -> float:
    try:
        return seconds(text)
    except ValueError as exc:
        raise BadFilter(f"{name} must be an ISO 8601 time", name) from exc


def from_params(params: Any) -> tuple[MessageQuery, str | None, int]:
    """(query, cursor, limit) from query-string parameters (a mapping of str)."""

    def get(name: str) -> str | None:
        value = params.get(name)
        return value.strip() if value and value.strip() else None

    since, until = get("since"), get("until")
    try:
        limit = pages.limit_of(get("limit"))
    except ValueError as exc:
        raise BadFilter(str(exc), "limit") from exc
    query = MessageQuery(
        status=get("status"),
        channel=get("channel"),
        message_type=get("type"),
        sender=get("sender"),
        control_id=get("control_id"),
        since=_time(since, "since") if since else None,
        until=_time(until, "until") if until else None,
    )
    return query, get("cursor"), limit


__all__ = [
    "MAX_LIMIT",
    "BadCursor",
    "BadFilter",
    "decode_cursor",
    "encode_cursor",
    "from_params",
    "page",
    "row",
]
