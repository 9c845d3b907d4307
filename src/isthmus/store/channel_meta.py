"""How a channel's state (issue 18: pause/resume) is kept in the store's `meta` table.

The `meta` table (name, value) already exists in every adapter, so the state of a channel
needs no table or migration of its own: one row `channel:<name>` whose value is a small
JSON object (state, by, reason, at). Every adapter encodes and decodes it here, so the
three read the same rows the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from isthmus.store.ports import ChannelState

PREFIX = "channel:"
STATES = ("running", "paused")


def key(name: str) -> str:
    """The `meta` row name of a channel's state."""
    return PREFIX + name


def encode(state: ChannelState) -> str:
    """A channel's state as its `meta` value (JSON); ValueError unless running or paused."""
    if state.state not in STATES:
        raise ValueError(f"a channel's state is running or paused, not {state.state!r}")
    return json.dumps(
        {"state": state.state, "by": state.by, "reason": state.reason, "at": state.at},
        sort_keys=True,
    )


def decode(value: str) -> ChannelState:
    """A channel's state from its `meta` value (running when a member is missing)."""
    d = json.loads(value)
    return ChannelState(
        str(d.get("state", "running")),
        str(d.get("by", "")),
        str(d.get("reason", "")),
        float(d.get("at", 0.0)),
    )


def states(rows: Iterable[tuple[str, str]]) -> dict[str, ChannelState]:
    """(meta name, value) rows of the `channel:` prefix -> states by channel name."""
    return {
        name.removeprefix(PREFIX): decode(value) for name, value in rows if name.startswith(PREFIX)
    }
