"""`isthmus channels [list] | pause NAME [--reason TEXT] | resume NAME` (issue 18).

* `channels` (or `channels list`): every inbound channel with its transport, address,
  state and counters: received, ignored, refused, queued, delivered (relayed to the
  flows), errored (dead letters), last message time (flows/channels.py). A read: open to
  whoever can read the data directory, like `status`.
* `channels pause NAME`: the channel's MLLP port refuses new connections (or its folder
  is not read, or the FHIR API answers 503) in every process of the site within about a
  second; messages in flight are stored and ACKed first, nothing is lost. `resume NAME`
  opens it again. Both need a token with role integration-engineer or admin once the hub
  is initialized (cli/gate.py) and are written to the audit trail with who, why and
  the outcome.

Exit codes as cli/main.py: 2 for an unknown channel (the message names the known ones)
or one without a listener of its own.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from isthmus.app import Hub
from isthmus.cli.commands import Result, UsageError, _table
from isthmus.cli.gate import Gate
from isthmus.flows import channels

COMMANDS = ("channels",)


def add_parsers(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add the `channels` command (list, pause, resume) to the parser."""
    c = add("channels", "inbound channels: counters and state; pause or resume one")
    c.add_argument("action", nargs="?", choices=["list", "pause", "resume"], default="list")
    c.add_argument("id", nargs="?", metavar="NAME", help="pause/resume: the channel")
    c.add_argument("--reason", default="", help="pause: why (kept in the audit trail)")


def dispatch(hub: Hub, args: argparse.Namespace, *, gate: Gate) -> Result:
    """`isthmus channels`: the channels with their counters, or pause or resume one and show
    its new row; an unknown or unpausable channel is a usage error."""
    if args.action == "list":
        return channels.table(hub.settings, hub.store, hub.bus), _render_list, 0
    if not args.id:
        raise UsageError(
            f"channels {args.action} needs a channel name: one of "
            f"{', '.join(channels.pausable(hub.settings))}"
        )
    state = channels.PAUSED if args.action == "pause" else channels.RUNNING
    channels.set_state(  # ChannelRefused: exit 2
        hub.settings,
        hub.store,
        args.id,
        state,
        by=gate.actor,
        reason=args.reason,
        now=time.time(),
    )
    row = next(r for r in channels.table(hub.settings, hub.store, hub.bus) if r["name"] == args.id)
    return row, _render_change, 0


def _render_change(row: dict[str, Any]) -> str:
    said = (
        " (new connections are refused, messages in flight finish; every listener "
        "of the site follows within about a second)"
        if row["state"] == channels.PAUSED
        else ""
    )
    return f"channel {row['name']} {row['state']} by {row['changed_by']}{said}"


def _render_list(rows: list[dict[str, Any]]) -> str:
    return _table(
        [
            [
                r["name"],
                r["transport"],
                r["address"],
                r["state"],
                r["received"],
                r["ignored"],
                r["refused"],
                r["queued"],
                r["delivered"],
                r["errored"],
                (r["last_message_at"] or "-")[:19],
            ]
            for r in rows
        ],
        [
            "channel",
            "transport",
            "address",
            "state",
            "received",
            "ignored",
            "refused",
            "queued",
            "delivered",
            "errored",
            "last message (UTC)",
        ],
    )
