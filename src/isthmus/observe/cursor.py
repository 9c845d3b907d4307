"""The opaque cursor of every paged list the hub shows (messages, work items, refunds).

One codec for all: a cursor is base64url (no padding) of "<tag>:<key>", where the tag
names the list (and the version of its order, so a cursor of one list is refused by
another) and the key is the last row shown; the next page starts after it (keyset paging
on the store's own order, never an offset, so rows added meanwhile neither repeat nor go
missing). Anything that does not decode to the list's own tag is `BadCursor`. `cut` turns
the `limit + 1` rows a store gave into the page shown and the cursor of the next one.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

from isthmus.errors import InvalidInput

T = TypeVar("T")

MAX_LIMIT: Final = 500
DEFAULT_LIMIT: Final = 50


class BadCursor(InvalidInput, ValueError):
    """The cursor was not one this hub gave out for this list."""


def encode(tag: str, key: int | str) -> str:
    """The cursor of a list's page: base64url, without padding, of "<tag>:<key>"."""
    return base64.urlsafe_b64encode(f"{tag}:{key}".encode()).decode().rstrip("=")


def decode(tag: str, cursor: str) -> str:
    """The key a cursor of list `tag` carries; BadCursor for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if text.startswith(f"{tag}:") and len(text) > len(tag) + 1:
        return text[len(tag) + 1 :]
    raise BadCursor("cursor is not one this hub gave out: use the `next` of a page")


def decode_int(tag: str, cursor: str) -> int:
    """The integer key of a cursor of the list `tag`; `BadCursor` when it is not one."""
    key = decode(tag, cursor)
    if not key.isdigit():
        raise BadCursor("cursor is not one this hub gave out: use the `next` of a page")
    return int(key)


def limit_of(text: str | None, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """A page size from a query string; ValueError naming the range when it is not one."""
    value = (text or "").strip() or str(default)
    if not value.isdigit() or not 1 <= int(value) <= maximum:
        raise ValueError(f"limit must be a whole number from 1 to {maximum}")
    return int(value)


def cut(
    rows: Sequence[T], limit: int, tag: str, key: Callable[[T], int | str]
) -> tuple[list[T], str | None]:
    """(the page shown, the next page's cursor or None) from up to `limit + 1` rows."""
    shown = list(rows[:limit])
    more = len(rows) > limit and shown
    return shown, encode(tag, key(shown[-1])) if more else None


__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "BadCursor",
    "cut",
    "decode",
    "decode_int",
    "encode",
    "limit_of",
]
