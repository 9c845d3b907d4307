"""`isthmus remits list|release`: 835s held at intake because they do not balance.

* `list`: the interchanges on hold (channel `x12`, status "held"), with their work item in
  queue `cash-posting` and what is out of balance. A read: open like `workitems list`.
* `release ID --reason TEXT [--apply]`: a person's decision that a held interchange may
  post (ID: its control id `<ISA06>:<ISA13>`, its correlation id `x12/...` or its inbox
  id). Needs a token with role finance-approver or admin once the hub is initialized (the
  gate of cli/gate.py); the audit trail gets who and why, and the work item is
  resolved with both. Its events then go to the bus (`--apply` processes them now,
  otherwise a running `serve` does), through the business-key gate like any other.

Exit codes as cli/main.py: 2 no reason or no ID, 3 no such interchange, 4 not held
(released already, or never held).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from isthmus.app import Hub
from isthmus.cli.commands import Result, UsageError, _table
from isthmus.cli.gate import Gate
from isthmus.flows import remit_holds
from isthmus.flows.relay import relay_unpublished

COMMANDS = ("remits",)


def add_parsers(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add the `remits` command (list, release) to the parser."""
    r = add("remits", "835 remittances held because they do not balance: list, release")
    r.add_argument("action", choices=["list", "release"])
    r.add_argument("id", nargs="?", help="release: control id <ISA06>:<ISA13>, x12/... or inbox id")
    r.add_argument(
        "--reason",
        default="",
        help="release: why it may post (required; kept in the audit trail and on the work item)",
    )
    r.add_argument("--limit", type=int, default=100, help="list: at most this many")
    r.add_argument("--apply", action="store_true", help="release: post the events now")


def dispatch(hub: Hub, args: argparse.Namespace, *, gate: Gate) -> Result:
    """`isthmus remits`: the 835s held because they do not balance, or release one with a
    reason, as the caller the gate names."""
    if args.action == "list":
        rows = remit_holds.held(hub.store, max(1, args.limit))
        return rows, _render_list, 0
    if not args.id:
        raise UsageError("remits release needs the interchange id (see `isthmus remits list`)")
    done = remit_holds.release(  # a HoldError carries its exit code: 2, 3 or 4
        hub.store, args.id, actor=gate.actor, reason=args.reason, now=time.time()
    )
    relayed = relay_unpublished(hub.store, hub.bus)
    applied = hub.worker().drain() if args.apply else 0
    d = {
        "message_id": done.message_id,
        "control_id": done.control_id,
        "status": "accepted",
        "events": done.events,
        "released_by": done.released_by,
        "reason": done.reason,
        "relayed_messages": relayed,
        "applied": applied,
    }
    return d, _render_release, 0


def _render_release(d: dict[str, Any]) -> str:
    return (
        f"interchange {d['control_id']} released by {d['released_by']}: "
        f"{d['events']} event(s) may post; applied {d['applied']} now"
    )


def _render_list(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no 835 on hold"
    return _table(
        [
            [
                str(r["message_id"]),
                r["control_id"],
                datetime.fromtimestamp(r["received_at"], UTC).isoformat()[:19],
                str(r["work_item"] or "-"),
                r["detail"],
            ]
            for r in rows
        ],
        ["id", "control id", "received", "work item", "what is out"],
    )
