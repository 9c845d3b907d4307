"""`isthmus claims ...`: the claim's whole life from the command line (issue 20).

* `list [--state S]`: claims with their state, payer, charge, paid and age (a read);
* `show CLAIM`: one claim and its timeline, every transition with cause, who and when;
* `submit FILE...`: 837s from billing through the edits, the clean claims out as one 837
  per file to `[claims] outbound_dir` (default <data dir>/outbound/claims);
* `ack FILE...`: 999, 277CA or 277 files applied to the claims they name (271: the
  accounts), decoded as the intake does (`formats.x12.responses`);
* `status-requests`: a 276 for claims past their payer's turnaround;
* `correct CLAIM`, `appeal CLAIM`: the ways forward from a denial or rejection;
* `write-off CLAIM --amount A --reason R`, `approve-write-off CLAIM`: above `[claims]
  write_off_threshold` a second person approves (not who requested it).

Exit codes as cli/main.py: 2 usage, 3 no such claim, 4 refused (the text says why).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from isthmus.app import Hub
from isthmus.cli.commands import NotFound, Result, UsageError, _table
from isthmus.cli.gate import Gate
from isthmus.connectors.claim_files import FileSender, SftpSender, sender_for
from isthmus.flows import (
    claim_acks,
    claim_denials,
    claim_eligibility,
    claim_inquiries,
    claim_submission,
)
from isthmus.flows.claim_life import STATES
from isthmus.flows.claim_remit import Books
from isthmus.formats.x12 import X12Error, read
from isthmus.governance import rbac

COMMANDS = ("claims",)
ACTIONS = (
    "list",
    "show",
    "submit",
    "ack",
    "status-requests",
    "correct",
    "appeal",
    "write-off",
    "approve-write-off",
)


def add_parsers(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add the `claims` command and its actions to the parser."""
    c = add(
        "claims",
        "claims: list, show, submit 837s, apply 999/277, 276 requests, correct, appeal, write off",
    )
    c.add_argument("action", choices=ACTIONS)
    c.add_argument("id", nargs="?", help="the claim (patient control number, CLM01)")
    c.add_argument("files", nargs="*", type=Path, default=[], metavar="FILE")
    c.add_argument("--state", choices=STATES, help="list: only claims in this state")
    c.add_argument("--limit", type=int, default=100)
    c.add_argument("--amount", default="", help="write-off: the amount (a decimal string)")
    c.add_argument("--reason", default="", help="write-off: why (kept on the request)")


def _sender(hub: Hub) -> FileSender | SftpSender:
    """`[claims] destination` (a file or sftp destination), else the outbound folder."""
    c = hub.settings.claims
    if c.destination:
        d = hub.settings.destinations.get(c.destination)
        if d is None:
            raise UsageError(
                f"[claims] destination {c.destination!r} is not a [destinations] entry"
            )
        return sender_for(d)
    return FileSender(
        Path(c.outbound_dir) if c.outbound_dir else hub.settings.data_dir / "outbound" / "claims"
    )


def _books(hub: Hub) -> Books:
    p = hub.processor
    return Books(p.secret, p.mappings, p.calendar, p.remit_accounts)


def dispatch(hub: Hub, args: argparse.Namespace, *, gate: Gate) -> Result:
    """`isthmus claims ACTION`; a send that failed before anything was recorded as sent
    (SendFailed) exits 4, and the same command may run again."""
    now = time.time()
    act = args.action
    files = ([Path(args.id)] if args.id else []) + list(args.files)
    if act == "list":
        rows = [
            {
                "claim": c.claim_key,
                "state": c.state,
                "payer": c.payer_id,
                "charge": str(c.total_charge),
                "paid": str(c.paid),
                "currency": c.currency,
                "age_days": round((now - c.updated_at) / 86400, 1),
                "denial": c.denial_category,
                "appeal_due": c.appeal_due,
            }
            for c in hub.store.claim_states(args.state, max(1, args.limit))
        ]
        return rows, _render_list, 0
    if act in ("submit", "ack"):
        if not files:
            raise UsageError(f"claims {act} needs at least one file")
        return _files(hub, act, files, now)
    if act == "status-requests":
        asked = claim_inquiries.request_status(
            hub.store, settings=hub.settings.claims, sender=_sender(hub), now=now
        )
        return {"asked": asked}, lambda d: f"276 sent for {len(d['asked'])} claim(s)", 0
    if not args.id:
        raise UsageError(f"claims {act} needs the claim (its patient control number)")
    if act == "show":
        with hub.store.transaction() as tx:
            state = tx.get_claim_state(args.id)
        if state is None:
            raise NotFound(f"no claim {args.id!r}")
        events = [
            {
                "seq": e.seq,
                "at": e.at,
                "kind": e.kind,
                "from": e.from_state,
                "to": e.to_state,
                "actor": e.actor,
                "cause": e.causation_id,
                "detail": e.detail,
            }
            for e in hub.store.claim_events(args.id)
        ]
        d = {
            "claim": state.claim_key,
            "state": state.state,
            "payer": state.payer_id,
            "payer_claim_id": state.payer_claim_id,
            "charge": str(state.total_charge),
            "paid": str(state.paid),
            "currency": state.currency,
            "status": f"{state.status_category}:{state.status_code}".strip(":"),
            "controls": state.controls,
            "timeline": events,
        }
        return d, _render_show, 0
    return _action(hub, args, gate, now)


def _known(hub: Hub, claim_key: str) -> None:
    """NotFound (exit 3) when no claim has this key; any other refusal of the flow is a
    ClaimActionRefused (exit 4)."""
    with hub.store.transaction() as tx:
        if tx.get_claim_state(claim_key) is None:
            raise NotFound(f"no claim {claim_key!r} is known")


def _action(hub: Hub, args: argparse.Namespace, gate: Gate, now: float) -> Result:
    act = args.action
    if act in ("correct", "appeal"):
        _known(hub, args.id)
    if act == "correct":
        s = claim_denials.mark_corrected(hub.store, args.id, actor=gate.actor, now=now)
        return {"claim": args.id, "state": s.state}, lambda d: f"{d['claim']}: {d['state']}", 0
    if act == "appeal":
        ref = claim_denials.appeal(
            hub.store, args.id, actor=gate.actor, now=now, sender=_sender(hub)
        )
        return {"claim": args.id, "letter": ref}, lambda d: f"appeal letter {d['letter']}", 0
    policy = hub.processor.claims
    if policy is None:
        raise UsageError("this hub has no claims policy")
    if act == "write-off":
        try:
            amount = Decimal(args.amount)
        except InvalidOperation as exc:
            raise UsageError("claims write-off needs --amount, a decimal string") from exc
        _known(hub, args.id)
        w = claim_denials.request_write_off(
            hub.store,
            args.id,
            amount=amount,
            reason=args.reason,
            requested_by=gate.actor,
            now=now,
            policy=policy,
            books=_books(hub),
        )
    else:  # approve-write-off: the gate let only finance-approver or admin through
        _known(hub, args.id)
        w = claim_denials.approve_write_off(
            hub.store,
            args.id,
            approver=gate.actor,
            roles=frozenset({rbac.FINANCE}),
            now=now,
            books=_books(hub),
        )
    d = {
        "claim": w.claim_key,
        "amount": str(w.amount),
        "currency": w.currency,
        "status": w.status,
        "requested_by": w.requested_by,
        "approved_by": w.approved_by,
    }
    return (
        d,
        lambda d: f"write-off of {d['amount']} {d['currency']} on {d['claim']}: {d['status']}",
        0,
    )


def _files(hub: Hub, act: str, files: list[Path], now: float) -> Result:
    out: list[dict[str, Any]] = []
    for f in files:
        data = f.read_bytes()
        if act == "submit":
            s = claim_submission.submit_837(
                hub.store,
                data,
                settings=hub.settings.claims,
                sender=_sender(hub),
                now=now,
                source=f.name,
            )
            out.append({"file": f.name, "submitted": s.clean, "failed": s.failed, "sent": s.sent})
            continue
        try:
            kind = read(data)[2].element(1)  # ST01 after ISA and GS
        except (X12Error, IndexError) as exc:
            raise UsageError(f"{f.name}: not an X12 acknowledgement") from exc
        if kind == "999":
            got = claim_acks.apply_999(hub.store, data, now=now, source=f.name)
        elif kind == "277":
            got = claim_acks.apply_277(hub.store, data, now=now, source=f.name)
        elif kind == "271":  # accounts, not claims: account -> active/inactive
            kept = claim_eligibility.apply_271(hub.store, data, now=now, source=f.name)
            out.append({"file": f.name, "claims": kept, "unknown": 0})
            continue
        else:
            raise UsageError(f"{f.name}: a {kind or 'non-X12'} set, not a 999, 277 or 271")
        out.append({"file": f.name, "claims": got.claims, "unknown": got.unknown})
    return out, _render_files, 0


def _render_files(rows: list[dict[str, Any]]) -> str:
    lines = []
    for r in rows:
        if "submitted" in r:
            lines.append(
                f"{r['file']}: {len(r['submitted'])} claim(s) sent as "
                f"{r['sent'] or '-'}, {len(r['failed'])} failed their edits"
            )
        else:
            lines.append(
                f"{r['file']}: {len(r['claims'])} claim(s) updated, {r['unknown']} unknown"
            )
    return "\n".join(lines)


def _render_list(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no claims"
    return _table(
        [
            [
                r["claim"],
                r["state"],
                r["payer"],
                f"{r['charge']} {r['currency']}",
                r["paid"],
                str(r["age_days"]),
                r["denial"] or "-",
            ]
            for r in rows
        ],
        ["claim", "state", "payer", "charge", "paid", "age (days)", "denial"],
    )


def _render_show(d: dict[str, Any]) -> str:
    head = (
        f"claim {d['claim']}: {d['state']} (payer {d['payer']}, payer claim "
        f"{d['payer_claim_id'] or '-'}, charge {d['charge']} {d['currency']}, paid "
        f"{d['paid']})"
    )
    rows = [
        [
            str(e["seq"]),
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(e["at"])),
            e["kind"],
            f"{e['from'] or '-'} -> {e['to']}",
            e["actor"],
            e["detail"][:80],
        ]
        for e in d["timeline"]
    ]
    return head + "\n" + _table(rows, ["#", "at (UTC)", "event", "state", "who", "detail"])
