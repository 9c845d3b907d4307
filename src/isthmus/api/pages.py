"""Paged JSON answers of the v1 list routes: one shape, one `next` link.

Every list route (`/api/v1/messages`, `/api/v1/workitems`, `/api/v1/refunds`) answers
`{"<rows>": [...], "next": <cursor or null>, "next_url": <absolute URL or null>}` and,
when there is a next page, an RFC 8288 `Link: <next_url>; rel="next"` header. The cursor
is observe/cursor.py's (opaque, keyset); `next_url` is the same request with its filters
and `limit` kept and `cursor` set, so a client follows it without building a URL.
A malformed `limit` or `cursor` is 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from isthmus.observe import cursor


class BadPage(ValueError):
    """`limit` or `cursor` is malformed; `field` names which."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field

    def response(self) -> JSONResponse:
        return JSONResponse({"error": str(self), "field": self.field}, 400)


def limit(req: Request) -> int:
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
    return None if not next_cursor else str(req.url.include_query_params(cursor=next_cursor))


def answer(req: Request, name: str, rows: list[Any], next_cursor: str | None) -> JSONResponse:
    url = next_url(req, next_cursor)
    return JSONResponse({name: rows, "next": next_cursor, "next_url": url},
                        headers={"Link": f'<{url}>; rel="next"'} if url else None)


__all__ = ["BadPage", "after", "answer", "limit", "next_url"]
