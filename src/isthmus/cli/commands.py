"""The read and operate commands behind `isthmus`: each returns (data, renderer, exit code)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from isthmus.app import Hub
from isthmus.bus.ports import Publish
from isthmus.config import Settings
from isthmus.errors import InvalidInput, NotFoundError
from isthmus.flows import mapping_holds, workitems
from isthmus.flows.export import breaker_state
from isthmus.flows.inbox import (
    MLLP_CHANNEL,
    classify,
    decode_error,
    encode_error,
    is_conflict_copy,
    publications,
    publish_stored,
)
from isthmus.flows.intake import rekeyed
from isthmus.formats.hl7v2 import FRAMING_PREFIX, HL7ParseError
from isthmus.maintenance import backup_embedded
from isthmus.observe import message_list
from isthmus.observe.lineage import find_message, trace
from isthmus.observe.views import trial_balance_view
from isthmus.store.ports import Inbound, MessageQuery, StoredMessage

Result = tuple[Any, Callable[[Any], str], int]


class UsageError(InvalidInput):
    """The command line is incomplete or contradictory; exit 2."""


class NotFound(NotFoundError):
    """The id named does not exist; exit 3."""


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
        + [fmt.format(*map(str, r)) for r in rows]
    )


def render_tb(d: dict[str, Any]) -> str:
    """The trial balance as text: a row per account and currency, and a total per currency
    that says whether it balances."""
    rows = [[r["account"], r["currency"], r["debit"], r["credit"], r["balance"]] for r in d["rows"]]
    rows += [
        [
            "TOTAL",
            t["currency"],
            t["debit"],
            t["credit"],
            "balanced" if t["balanced"] else "NOT BALANCED",
        ]
        for t in d["totals"]
    ]
    return _table(rows, ["account", "cur", "debit", "credit", "balance"])


def _ledger(hub: Hub, args: argparse.Namespace) -> Result:
    if args.action == "trial-balance":
        d = trial_balance_view(hub.store)
        return d, render_tb, 0 if d["balanced"] else 4
    if args.action == "export":
        made, sent = hub.export()
        d = {"batches_sealed": made, "batches_delivered": sent, "folder": str(hub.export_dir)}
        return (
            d,
            lambda x: (
                f"sealed {x['batches_sealed']} batch(es), delivered "
                f"{x['batches_delivered']} batch(es) to {x['folder']}"
            ),
            0,
        )
    entries = hub.store.entries(limit=args.limit)
    data = [
        {
            "entry_key": e.entry_key,
            "posted_on": e.posted_on.isoformat(),
            "period": e.period,
            "memo": e.memo,
            "correlation_id": e.correlation_id,
            "lines": [
                [
                    ln.account,
                    str(ln.debit),
                    str(ln.credit),
                    ln.currency,
                    ln.dims.company,
                    ln.dims.cost_center,
                    ln.dims.account_token,
                ]
                for ln in e.lines
            ],
        }
        for e in entries
    ]
    return (
        data,
        lambda d: "\n".join(
            f"{e['posted_on']} {e['entry_key']}  {e['memo']}\n"
            + "\n".join(
                f"    {a:<6} DR {dr:>10} CR {cr:>10} {c} {co} {cc} {tok}"
                for a, dr, cr, c, co, cc, tok in e["lines"]
            )
            for e in d
        ),
        0,
    )


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
        since=_when(args.since, "since"),
        until=_when(args.until, "until"),
    )
    try:
        data = message_list.page(hub.store, query, cursor=args.cursor, limit=args.limit)
    except ValueError as exc:  # a bad cursor or limit
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


def _apply(hub: Hub, args: argparse.Namespace) -> int:
    return hub.worker().drain() if getattr(args, "apply", False) else 0


def _dlq(hub: Hub, args: argparse.Namespace) -> Result:
    if args.action == "list":
        data = [
            {
                "seq": d.seq,
                "event_id": d.msg_id,
                "attempts": d.attempts,
                "reason": d.reason,
                "failed_at": d.failed_at,
            }
            for d in hub.bus.dead_letters(1000)
        ]
        return (
            data,
            lambda d: _table(
                [[x["seq"], x["event_id"], x["attempts"], x["reason"]] for x in d],
                ["seq", "event", "attempts", "reason"],
            ),
            0,
        )
    if not args.seqs and not args.all:
        raise UsageError("dlq replay needs sequence numbers or --all")
    n = workitems.replay_dead(hub.bus, None if args.all else args.seqs)
    applied = _apply(hub, args)
    return (
        {"replayed": n, "applied": applied},
        lambda d: f"replayed {d['replayed']} dead letter(s); applied {d['applied']}",
        0,
    )


def _when(text: str | None, name: str) -> float | None:
    if text is None:
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"--{name} {text!r} is not an ISO date/time") from exc
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _replay(hub: Hub, args: argparse.Namespace) -> Result:
    if args.correlation:
        m = find_message(hub.store, args.correlation)
        if m is None:
            raise NotFound(f"no message {args.correlation!r}")
        msgs = [m]
    elif args.since or args.until:
        msgs = hub.store.messages(
            since=_when(args.since, "since"), until=_when(args.until, "until"), limit=10_000_000
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
    applied = _apply(hub, args)
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
    """The stored message through intake again (`inbox.classify`), with today's config;
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
        applied=_apply(hub, args),
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


def _workitems(hub: Hub, args: argparse.Namespace) -> Result:
    store = hub.store
    if args.action == "list":
        items = store.work_items(args.status)
        held = store.hold_totals([w.event_id for w in items if mapping_holds.parse_ref(w.event_id)])
        data = []
        for w in items:
            t = held.get(w.event_id)
            data.append(
                {
                    "id": w.id,
                    "kind": w.kind,
                    "queue": w.queue,
                    "status": w.status,
                    "event_id": w.event_id,
                    "detail": w.detail,
                    "held": t.count if t else 0,
                    "held_amount": {c: str(a) for c, a in t.amounts} if t else {},
                    "oldest_held_at": t.oldest if t else None,
                }
            )
        return (
            data,
            lambda d: _table(
                [
                    [
                        x["id"],
                        x["queue"],
                        x["kind"],
                        x["status"],
                        x["held"] or "",
                        " ".join(f"{a} {c}" for c, a in x["held_amount"].items()),
                        x["detail"],
                    ]
                    for x in d
                ],
                ["id", "queue", "kind", "status", "held", "amount", "detail"],
            ),
            0,
        )
    if args.action == "mappings":
        rows = [
            {"table": t, "code": c, "value": v, "source": "override"}
            for t, c, v in store.mapping_overrides(mapping_holds.TABLES)
        ]
        maps = hub.settings.mappings
        chart = (
            [("facility_company", c, v) for c, v in maps.facility_company.items()]
            + [("department_cost_center", c, v) for c, v in maps.department_cost_center.items()]
            + [
                ("charge_codes", c, f"{m.revenue_account} {m.service_line}")
                for c, m in maps.charge_codes.items()
            ]
        )
        overridden = {(r["table"], r["code"]) for r in rows}
        rows += [
            {
                "table": t,
                "code": c,
                "value": v,
                "source": f"config ({maps.include} chart)" if maps.include else "config",
            }
            for t, c, v in sorted(chart)
            if (t, c) not in overridden
        ]
        return (
            rows,
            lambda d: _table(
                [[x["table"], x["code"], x["value"], x["source"]] for x in d],
                ["table", "code", "value", "source"],
            ),
            0,
        )
    if args.id is None:
        raise UsageError(f"workitems {args.action} needs an id")
    now = datetime.now(UTC).timestamp()
    try:
        if args.action == "resolve":
            values = dict(s.split("=", 1) for s in args.set if "=" in s)
            if len(values) != len(args.set):
                raise UsageError("--set takes FIELD=VALUE")
            values = workitems.resolve(store, args.id, values, args.note, now, bus=hub.bus)
            applied = _apply(hub, args)
            after = store.work_item(args.id)
            done = {
                "id": args.id,
                "status": "resolved",
                "mapping": values,
                "resolution": after.resolution if after else "",
                "applied": applied,
            }
            ref = after.event_id if after and mapping_holds.parse_ref(after.event_id) else ""
            if ref:
                done["outcome"] = mapping_holds.outcome(store, ref)
            return (
                done,
                lambda d: (
                    f"work item {d['id']} resolved"
                    + (f"; mapping {d['mapping']} added" if d["mapping"] else "")
                    + (f"; {d['resolution']}" if "outcome" in d else "")
                    + (f"; posted {d['outcome']['posted']}" if "outcome" in d else "")
                ),
                0,
            )
        said = workitems.resubmit(store, hub.bus, args.id, args.note, now)
    except workitems.NoSuchWorkItem as exc:
        raise NotFound(str(exc)) from exc
    except workitems.ActionRefused as exc:
        raise UsageError(str(exc)) from exc
    applied = _apply(hub, args)
    return (
        {"id": args.id, "status": "resubmitted", "applied": applied},
        lambda d: f"work item {d['id']} resubmitted; {said}; applied {d['applied']}",
        0,
    )


def _backup(hub: Hub, args: argparse.Namespace) -> Result:
    return backup(hub.settings, args)


def backup(settings: Settings, args: argparse.Namespace) -> Result:
    """`isthmus backup`: needs no open hub, so it also copies a store that `isthmus migrate`
    is about to upgrade (the backup taken before an upgrade, docs/deployment.md)."""
    target: Path = args.to
    if settings.store != "sqlite" or settings.bus != "sqlite":
        raise UsageError(
            "backup copies the embedded SQLite files; in scale-out mode back up "
            "PostgreSQL (pg_dump) and the NATS streams (docs/deployment.md)"
        )
    if target.exists() and any(target.iterdir()):
        raise UsageError(f"--to {target} is not empty")
    written = backup_embedded(settings.data_dir, target)
    return (
        {"files": [str(p) for p in written]},
        lambda d: "backed up:\n  " + "\n  ".join(d["files"]),
        0,
    )


def _migrate(hub: Hub, _args: argparse.Namespace) -> Result:
    version = hub.store.migrate()
    d = {"store": hub.settings.store, "schema_version": version}
    return d, lambda x: f"{x['store']} store at schema version {x['schema_version']}", 0


def _status(hub: Hub, _args: argparse.Namespace) -> Result:
    """What is waiting, and where: the operator's first look during an outage."""
    now = datetime.now(UTC).timestamp()
    counts = hub.store.counts()
    outbox = hub.store.outbox_items("pending")
    failing = [o for o in outbox if o.attempts]
    queues: dict[str, int] = {}
    for w in hub.store.work_items("open", limit=1_000_000):
        queues[w.queue] = queues.get(w.queue, 0) + 1
    d: dict[str, Any] = {
        "events_waiting": hub.bus.pending() + counts["unpublished"],
        "dead_letters": len(hub.bus.dead_letters(1_000_000)),
        "erp_outbox": {
            "pending": len(outbox),
            "dead": len(hub.store.outbox_items("dead")),
            "failing": len(failing),
            "next_retry_in_s": round(max(0.0, min(o.visible_at for o in failing) - now), 1)
            if failing
            else 0.0,
            "last_error": failing[0].last_error if failing else "",
            "breaker": breaker_state(outbox),
        },
        "work_items_open": queues,
        "messages": counts["messages"],
        "rejected": counts["rejected"],
        "ignored": sum(
            n for (_ch, st, _ack), n in hub.store.message_counts().items() if st == "ignored"
        ),
        "unbatched_channels": hub.store.unbatched_channels(),
    }

    def text(x: dict[str, Any]) -> str:
        o = x["erp_outbox"]
        lines = [
            f"events waiting to apply  {x['events_waiting']}",
            f"dead letters             {x['dead_letters']}",
            f"ERP outbox               {o['pending']} pending, {o['failing']} failing, "
            f"{o['dead']} dead, breaker {o['breaker']}"
            + (
                f"; next retry in {o['next_retry_in_s']} s: {o['last_error']}"
                if o["failing"]
                else ""
            ),
            f"messages                 {x['messages']} ({x['rejected']} rejected, "
            f"{x['ignored']} ignored)",
            "work items open          "
            + (", ".join(f"{q}: {n}" for q, n in sorted(x["work_items_open"].items())) or "none"),
        ]
        return "\n".join(lines)

    busy = d["dead_letters"] or d["erp_outbox"]["failing"] or d["erp_outbox"]["dead"]
    return d, text, 4 if busy else 0


def dispatch(hub: Hub, args: argparse.Namespace) -> Result:
    """Run one of the read and operate commands (migrate, ledger, messages, dlq, replay,
    workitems, backup, status) on the open hub."""
    handler = {
        "migrate": _migrate,
        "ledger": _ledger,
        "messages": _messages,
        "dlq": _dlq,
        "replay": _replay,
        "workitems": _workitems,
        "backup": _backup,
        "status": _status,
    }[args.cmd]
    return handler(hub, args)
