"""Times as the hub's answers show them: ISO 8601 (RFC 3339) in UTC.

The store keeps Unix seconds (floats); the API, the CLI's JSON and the console show every
time in one form, `2026-03-04T10:00:00.125+00:00`, as the refund register always did, so a
client parses one format wherever a time appears (issue 19: `received_at` was a float).
"""

from __future__ import annotations

from datetime import UTC, datetime


def instant(ts: float) -> str:
    """Unix seconds as ISO 8601 in UTC, to the millisecond."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def seconds(text: str) -> float:
    """The inverse: an ISO 8601 time (UTC when it names no offset) as Unix seconds."""
    t = datetime.fromisoformat(text)
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


__all__ = ["instant", "seconds"]
