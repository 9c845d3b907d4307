"""`isthmus destinations [list] | resend ID... | resend --destination N [--status dead]
[--since TIME]` (issue 18).

* `destinations` (or `destinations list`): every destination with its kind, address,
  breaker state, pending, sent and dead deliveries, the age of the oldest pending one and
  the last answer (flows/destinations.py). A read, like `status`.
* `destinations resend`: put deliveries back in their outbox with the same idempotency key,
  by id or as a filtered set (every dead delivery of a destination, since a time). The ERP
  is the destination `erp` (its own batch outbox, flows/export.py): its dead batch files
  go by `erp:<outbox id>`, or `--destination erp --status dead`. Needs a
  token with role integration-engineer or admin once the hub is initialized and goes into
  the audit trail with what it resent (cli/gate.py).

Exit codes as cli/main.py: 2 for an unknown destination, an id that is neither a number
nor `erp:<number>`, or a resend that names nothing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from isthmus.app import Hub
from isthmus.cli.commands import Result, UsageError, _table
from isthmus.cli.gate import Gate
from isthmus.flows import destinations

COMMANDS = ("destinations",)


def add_parsers(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add the `destinations` command (list, resend) to the parser."""
    c = add("destinations", "outbound destinations: outbox counters and state; resend deliveries")
    c.add_argument("action", nargs="?", choices=["list", "resend"], default="list")
    c.add_argument(
        "ids", nargs="*", metavar="ID", help="resend: delivery ids; erp:<id> for an ERP batch file"
    )
    c.add_argument("--destination", help="resend: every delivery of this destination")
    c.add_argument(
        "--status",
        choices=list(destinations.STATUSES),
        help="resend: only deliveries in this state (e.g. dead)",
    )
    c.add_argument("--since", help="resend: only deliveries queued at or after (ISO time)")
    c.set_defaults(until=None)  # the audit trail's target names a --since range


def dispatch(hub: Hub, args: argparse.Namespace, *, gate: Gate) -> Result:
    """`isthmus destinations`: the destinations' outbox counters and state, or resend
    deliveries by id or by destination (narrowed by status and time)."""
    now = time.time()
    if args.action == "list":
        return (
            destinations.table(hub.settings, hub.store, now, erp_dir=hub.export_dir),
            _render_list,
            0,
        )
    if not args.ids and not args.destination:
        raise UsageError(
            "destinations resend needs delivery ids, or --destination NAME "
            "(with --status dead, --since TIME to narrow it)"
        )
    try:
        ids = [destinations.parse_id(raw) for raw in args.ids]
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since).timestamp()
        except ValueError as exc:
            raise UsageError(f"--since must be an ISO time, got {args.since!r}") from exc
    done = destinations.resend(  # UnknownDestination: exit 2
        hub.settings,
        hub.store,
        ids=ids,
        destination=args.destination,
        status=args.status,
        since=since,
        by=gate.actor,
        now=now,
    )
    return done, _render_resend, 0


def _render_resend(d: dict[str, Any]) -> str:
    text = f"resent {len(d['resent'])} deliveries" + (
        f": {', '.join(map(str, d['resent']))}" if d["resent"] else ""
    )
    if d["skipped"]:
        text += (
            f"\nnot resent (unknown, pending already, or an ERP batch file that was "
            f"sent): "
            f"{', '.join(map(str, d['skipped']))}"
        )
    return text


def _render_list(rows: list[dict[str, Any]]) -> str:
    def age(s: float | None) -> str:
        return "-" if s is None else f"{s:.0f} s"

    return _table(
        [
            [
                r["name"],
                r["kind"],
                r["address"],
                r["state"],
                r["pending"],
                r["sent"],
                r["dead"],
                age(r["oldest_pending_age_s"]),
                r["last_answer"] or "-",
            ]
            for r in rows
        ],
        [
            "destination",
            "kind",
            "address",
            "state",
            "pending",
            "sent",
            "dead",
            "oldest pending",
            "last answer",
        ],
    )
