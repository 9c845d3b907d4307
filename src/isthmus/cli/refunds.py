"""`isthmus refunds list|request|approve|reject`: the refund flow from the command line.

Thin over flows/refunds.py, as the principal of the token (`--token` or ISTHMUS_TOKEN, the
gate of cli/gate.py checked its role): `request` needs revenue-cycle or admin,
`approve`/`reject` finance-approver or admin, and the requester may not approve their own
refund (segregation of duties). `list` reads, like the other read commands. Before
`isthmus init` there are no identities: the local user acts with every role, so one local
user still cannot approve what they requested.

Refusals are one line on stderr with the flow's exit code (cli/main.py): 2 a bad field or a
refusal by role or segregation of duties, 3 no such account or refund, 4 a check failed
(duplicate, idempotency key reused, not enough credit, already decided).
"""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import Callable
from typing import Any

from isthmus.app import Hub
from isthmus.cli.commands import Result, UsageError, _table
from isthmus.cli.gate import Gate
from isthmus.flows.refund_request import STATUSES, Actor, Outcome, view
from isthmus.governance import identity, rbac

COMMANDS = ("refunds",)


def add_parsers(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add the `refunds` command (list, request, approve, reject) to the parser."""
    r = add("refunds", "refunds of credit balances: list, request, approve, reject")
    r.add_argument("action", choices=["list", "request", "approve", "reject"])
    r.add_argument("id", nargs="?", help="refund id (approve, reject)")
    r.add_argument("--status", choices=list(STATUSES), help="list: only this status")
    r.add_argument("--limit", type=int, default=100)
    r.add_argument("--account", help="request: billing account number (PID-18) or token")
    r.add_argument("--amount", help="request: amount, e.g. 125.00")
    r.add_argument("--currency", default="USD", help="request: ISO 4217 code (USD)")
    r.add_argument("--reason", help="request: why; reject: why not (required)")
    r.add_argument(
        "--idempotency-key",
        help="request: the same key returns the first answer (default: a new random key)",
    )
    r.add_argument("--note", default="", help="approve: a note for the record")


def actor_of(gate: Gate, args: argparse.Namespace) -> Actor:
    """Who runs the command, with the roles of their token (all roles before `init`)."""
    if not gate.gov.initialized():
        return Actor(gate.actor, frozenset(rbac.ROLES))
    clear = getattr(args, "token", None) or os.environ.get("ISTHMUS_TOKEN") or ""
    token = gate.gov.token_by_digest(identity.digest(clear)) if clear else None
    holder = gate.gov.principal(token.principal) if token is not None else None
    if token is None or holder is None:
        return Actor(gate.actor, frozenset())
    return Actor(holder.name, frozenset(identity.effective_roles(token, holder)))


def render(d: dict[str, Any]) -> str:
    """One refund as a line of text: amount, account and where it stands."""
    state = {
        "pending": f"waits for approval by a finance-approver other than {d['requested_by']}",
        "posted": f"posted as journal entry {d['entry_key']} (approved by {d['decided_by']})",
        "rejected": f"rejected by {d['decided_by']}: {d['note']}",
    }[d["status"]]
    again = " (the same request again: first answer)" if d.get("replayed") else ""
    return (
        f"refund {d['id']}: {d['amount']} {d['currency']} to account "
        f"{d['account_number'] or d['account_token']}; {state}{again}"
    )


def _one(out: Outcome) -> Result:
    return {**view(out.refund), "replayed": out.replayed}, render, 0


def dispatch(hub: Hub, args: argparse.Namespace, *, gate: Gate) -> Result:
    """`isthmus refunds list|request|approve|reject` on the hub's refund desk, as the
    caller the gate names."""
    desk = hub.refunds()
    if args.action == "list":
        rows = [view(r) for r in desk.list(args.status, max(1, args.limit))]
        return (
            rows,
            lambda d: _table(
                [
                    [
                        x["id"],
                        x["status"],
                        x["amount"],
                        x["currency"],
                        x["account_number"] or x["account_token"],
                        x["requested_by"],
                        x["decided_by"] or "-",
                    ]
                    for x in d
                ],
                ["id", "status", "amount", "cur", "account", "requested by", "decided by"],
            ),
            0,
        )
    actor = actor_of(gate, args)
    if args.action == "request":
        missing = [f"--{n}" for n in ("account", "amount", "reason") if not getattr(args, n)]
        if missing:
            raise UsageError(f"refunds request needs {', '.join(missing)}")
        return _one(
            desk.request(
                account=args.account,
                amount=args.amount,
                currency=args.currency,
                reason=args.reason,
                requested_by=actor,
                idempotency_key=args.idempotency_key or f"cli-{uuid.uuid4().hex}",
            )
        )
    if not args.id:
        raise UsageError(
            f"refunds {args.action} needs a refund id (see `isthmus refunds list --status pending`)"
        )
    if args.action == "approve":
        return _one(desk.approve(args.id, approver=actor, note=args.note))
    if not args.reason:
        raise UsageError("refunds reject needs --reason")
    return _one(desk.reject(args.id, approver=actor, reason=args.reason))
