"""Paged JSON answers of the v1 list routes: one shape, one `next` link.

Every list route (`/api/v1/messages`, `/api/v1/workitems`, `/api/v1/refunds`) answers
`{"<rows>": [...], "next": <cursor or null>, "next_url": <absolute URL or null>}` and,
when there is a next page, an RFC 8288 `Link: <next_url>; rel="next"` header. The cursor
is observe/cursor.py's (opaque, keyset); `next_url` is the same request with its filters
and `limit` kept and `cursor` set, so a client follows it without building a URL.
A malformed `limit` or `cursor` is 400 naming the field (`BadPage`, api/problems.py).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from isthmus.errors import InvalidInput
from isthmus.observe import cursor


class BadPage(InvalidInput, ValueError):
    """`limit` or `cursor` is malformed; `field` names which (answered by api/problems.py)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def limit(req: Request) -> int:
    """The page size the request asks for (`?limit=`), bounded as `cursor.limit_of` allows;
    BadPage when it is not a number in range."""
    try:
        return cursor.limit_of(req.query_params.get("limit"))
    except ValueError as exc:
        raise BadPage(str(exc), "limit") from exc


def after(req: Request, tag: str, *, number: bool = False) -> str | int | None:
    """The key of the request's `cursor` for list `tag` (None on the first page)."""
    text = (req.query_params.get("cursor") or "").strip()
    if not text:
        return None
    try:
        return cursor.decode_int(tag, text) if number else cursor.decode(tag, text)
    except cursor.BadCursor as exc:
        raise BadPage(str(exc), "cursor") from exc


def next_url(req: Request, next_cursor: str | None) -> str | None:
    """The same request for the next page (its `cursor` replaced), or None on the last page."""
    return None if not next_cursor else str(req.url.include_query_params(cursor=next_cursor))


def answer(req: Request, name: str, rows: list[Any], next_cursor: str | None) -> JSONResponse:
    """A page of `rows` under `name`, with the `next` cursor, its `next_url`, and a `Link:
    rel="next"` header (RFC 8288) when there is a next page."""
    url = next_url(req, next_cursor)
    return JSONResponse(
        {name: rows, "next": next_cursor, "next_url": url},
        headers={"Link": f'<{url}>; rel="next"'} if url else None,
    )


__all__ = ["BadPage", "after", "answer", "limit", "next_url"]
