"""`isthmus messages show|list|release` and `isthmus replay`: the inbound messages, their
lineage, and the two ways a stored message goes through the flows again.

`replay` re-drives what intake accepted (event ids make it idempotent) and never publishes a
refusal; `messages release ID --reason TEXT` is a person overriding one refusal, through
intake again with the current config (audited by the gate of cli/gate.py).
"""

from __future__ import annotations

import argparse
from typing import Any

from isthmus.app import Hub
from isthmus.bus.ports import Publish
from isthmus.cli.commands import NotFound, Result, UsageError, _table, apply_now, parse_when
from isthmus.flows.hl7_inbound import classify, decode_error, encode_error
from isthmus.flows.inbox import MLLP_CHANNEL, is_conflict_copy
from isthmus.flows.intake import rekeyed
from isthmus.flows.relay import publications, publish_stored
from isthmus.formats.hl7v2 import FRAMING_PREFIX, HL7ParseError
from isthmus.observe import message_list
from isthmus.observe.lineage import find_message, trace
from isthmus.store.ports import Inbound, MessageQuery, StoredMessage

COMMANDS = ("messages", "replay")


def dispatch(hub: Hub, args: argparse.Namespace, *, actor: str) -> Result:
    """`messages show|list`, `messages release` (as `actor`, the gate's caller) or `replay`."""
    if args.cmd == "replay":
        return _replay(hub, args)
    if args.action == "release":
        return release(hub, args, actor=actor)
    return _messages(hub, args)


def _render_trace(t: dict[str, Any]) -> str:
    m = t["message"]
    said = "note" if m["status"] == "accepted" else "error"  # an accepted one: a note
    out = [
        f"message {m['id']}  {m['correlation_id']}  {m['type']}  {m['status']}  "
        f"ACK {m['ack']}" + (f"  {said}: {m['error'].split('|')[-1]}" if m["error"] else "")
    ]
    if m.get("purged_at"):
        out.append(f"  body purged at {m['purged_at']} (retention); lineage kept")
    if t.get("released_as"):
        out.append(f"  released as {t['released_as']}")
    for e in t["events"]:
        out.append(f"  -> event {e['event_id']} {e['type']}")
    for j in t["journal_entries"]:
        out.append(
            f"     -> journal entry {j['entry_key']} ({j['period']}) caused by {j['causation_id']}"
        )
        for ln in j["lines"]:
            out.append(
                f"          {ln['account']:<6} DR {ln['debit']:>10} CR {ln['credit']:>10}"
                f" {ln['currency']} {ln['company']} {ln['cost_center']} "
                f"{ln['account_token']}"
            )
        for b in j["batch_lines"]:
            out.append(
                f"        -> ERP batch {b['batch_id']} line {b['line_no']} "
                f"{b['account']} DR {b['debit']} CR {b['credit']} {b['currency']}"
            )
        if not j["batch_id"]:
            out.append("        -> not yet exported")
    for w in t["work_items"]:
        out.append(
            f"     -> work item #{w['id']} {w['kind']} [{w['queue']}] {w['status']}: {w['detail']}"
        )
    for d in t.get("deliveries", ()):  # issue 18: what went out, and the answer
        out.append(
            f"     -> delivery #{d['id']} {d['event_type']} to {d['destination']} "
            f"({d['route']}) {d['status']}, {d['attempts']} attempt(s)"
            + (f", answer {d['answer']} {d['detail']}".rstrip() if d["answer"] else "")
        )
    return "\n".join(out)


def _messages(hub: Hub, args: argparse.Namespace) -> Result:
    if args.action == "show":
        if not args.ref:
            raise UsageError("messages show needs an id or a correlation id")
        t = trace(hub.store, args.ref, include_raw=args.raw)
        if t is None:
            raise NotFound(f"no message {args.ref!r}")
        m = t["message"]
        if m["status"] == "rejected":
            rel = hub.store.message_by_control_id(m["channel"], m["control_id"] + RELEASED)
            t["released_as"] = f"{rel.channel}/{rel.control_id}" if rel is not None else ""
        return t, _render_trace, 0
    query = MessageQuery(
        status=args.status,
        channel=args.channel,
        message_type=args.type,
        sender=args.sender,
        control_id=args.control_id,
        since=parse_when(args.since, "since"),
        until=parse_when(args.until, "until"),
    )
    try:
        data = message_list.page(hub.store, query, cursor=args.cursor, limit=args.limit)
    except ValueError as exc:  # a bad cursor or limit: builtin ValueErrors of the page
        raise UsageError(str(exc)) from exc

    def text(d: dict[str, Any]) -> str:
        out = _table(
            [
                [
                    x["id"],
                    x["channel"],
                    x["control_id"],
                    x["type"],
                    x["status"],
                    x["ack"],
                    x["error"][:60],
                ]
                for x in d["messages"]
            ],
            ["id", "channel", "control_id", "type", "status", "ack", "error"],
        )
        return out + (f"\nmore: --cursor {d['next']}" if d["next"] else "")

    return data, text, 0


def _replay(hub: Hub, args: argparse.Namespace) -> Result:
    if args.correlation:
        m = find_message(hub.store, args.correlation)
        if m is None:
            raise NotFound(f"no message {args.correlation!r}")
        msgs = [m]
    elif args.since or args.until:
        msgs = hub.store.messages(
            since=parse_when(args.since, "since"),
            until=parse_when(args.until, "until"),
            limit=10_000_000,
        )
    else:
        raise UsageError("replay needs --since/--until or --correlation")
    pubs: list[Publish] = []
    still_rejected, releasable = 0, []
    for m in msgs:
        if m.status == "accepted":  # what intake accepted, again (event ids: idempotent)
            pubs += publications(m.events) if m.events else []
            continue
        if m.status != "rejected":  # held: its events wait for a person's release
            continue
        # a refusal stays a refusal: never published here. The same intake and gates say
        # whether it would be taken now; a person releases it (`messages release`).
        still_rejected += 1
        if _refusal(m) is None and _reclassified(hub, m, gates=True).status == "accepted":
            releasable.append(m.id)
    n = hub.bus.replay(pubs) if pubs else 0
    applied = apply_now(hub, args)
    d = {
        "messages": len(msgs),
        "events_replayed": n,
        "still_rejected": still_rejected,
        "releasable": releasable,
        "applied": applied,
    }
    return (
        d,
        lambda x: (
            f"{x['messages']} message(s): {x['events_replayed']} event(s) "
            f"replayed, {x['still_rejected']} still rejected"
            + (
                f" ({len(x['releasable'])} would be taken now: "
                "`isthmus messages release ID --reason TEXT`)"
                if x["releasable"]
                else ""
            )
            + f", {x['applied']} applied now"
        ),
        0,
    )


RELEASED = "!released"  # the control id suffix of a released message


def _refusal(m: StoredMessage) -> str | None:
    """Why a stored message cannot be released, None when it may be."""
    if m.status != "rejected":
        return f"message {m.id} is {m.status}: only a rejected message is released"
    if m.purged_at:
        return (
            f"message {m.id}'s body was purged (retention): it cannot be released; "
            "the sender must send it again"
        )
    if m.channel != MLLP_CHANNEL:
        return f"message {m.id} is on channel {m.channel}: only HL7 v2 messages are released"
    if is_conflict_copy(m):
        return (
            f"message {m.id} reused the control id of another message with other "
            "content (AR 205): it is never released over the original; the sender "
            "must send it under a new control id"
        )
    if m.control_id.startswith(FRAMING_PREFIX):
        return f"message {m.id} is a broken MLLP block: the sender must resend it whole"
    return None


def _reclassified(hub: Hub, m: StoredMessage, *, gates: bool) -> Inbound:
    """The stored message through intake again (`hl7_inbound.classify`), with today's config;
    `gates` False: without the [ownership] gate (a person's override)."""
    s = hub.settings
    inbound, _ = classify(
        m.raw,
        channel=m.channel,
        peer=m.peer,
        now=m.received_at,
        tenant=s.tenant,
        currency=s.channel(m.channel).currency,
        owners=s.ownership if gates else None,
        messages=s.channel(m.channel).messages,
    )
    return inbound


def release(hub: Hub, args: argparse.Namespace, *, actor: str) -> Result:
    """`messages release ID --reason TEXT`: a person overrides one refusal. The message goes
    through intake again with the current config and every gate but the one overridden
    (`--override-ownership`); taken, it is stored as a new message `<id>!released` (the
    refused one stays as it was, for the record) and its events are published. An AR 205
    conflict copy, a broken frame or a message of another channel is never released."""
    reason = (args.reason or "").strip()
    if not args.ref or not reason:
        raise UsageError("messages release needs an id and --reason")
    m = find_message(hub.store, args.ref)
    if m is None:
        raise NotFound(f"no message {args.ref!r}")
    refused = _refusal(m)
    if refused is not None:
        raise UsageError(refused)
    inbound = _reclassified(hub, m, gates=not args.override_ownership)
    d: dict[str, Any] = {
        "id": m.id,
        "reason": reason,
        "actor": actor,
        "override": "ownership" if args.override_ownership else "",
    }
    if inbound.status != "accepted":
        err = decode_error(inbound.error)
        d.update(released=False, error=err.text if err is not None else inbound.error)
        return d, lambda x: f"message {x['id']} is still refused: {x['error']}", 4
    note = HL7ParseError(
        0,
        f"released from message #{m.id} by {actor}"
        + (" over [ownership]" if args.override_ownership else "")
        + f": {reason}",
    )
    taken = rekeyed(inbound, m.control_id + RELEASED, error=encode_error(note))
    [res] = hub.store.accept([taken])
    publish_stored(hub.store, hub.bus, taken, res)
    d.update(
        released=True,
        released_as=f"{taken.channel}/{taken.control_id}",
        message_id=res.message_id,
        duplicate=res.duplicate,
        applied=apply_now(hub, args),
    )
    return (
        d,
        lambda x: (
            f"message {x['id']} "
            + ("was already released" if x["duplicate"] else "released")
            + f" as {x['released_as']} (#{x['message_id']}); applied "
            f"{x['applied']}"
        ),
        0,
    )
