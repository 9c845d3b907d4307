"""The read and operate commands behind `isthmus`: each returns (data, renderer, exit code).

Here: `ledger`, `dlq`, `status` and `backup`, and what every command module shares (the
`Result` shape, `UsageError`, `NotFound`, the text table, `--apply`, `--since`/`--until`).
`messages` and `replay` are in cli/messages.py, `workitems` in cli/workitems.py.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from isthmus.app import Hub
from isthmus.config import Settings
from isthmus.errors import InvalidInput, NotFoundError
from isthmus.flows import workitems
from isthmus.flows.export import breaker_state
from isthmus.maintenance import backup_embedded
from isthmus.observe.views import trial_balance_view

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


def apply_now(hub: Hub, args: argparse.Namespace) -> int:
    """With `--apply`, process the events waiting on the bus now; the count applied."""
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
    applied = apply_now(hub, args)
    return (
        {"replayed": n, "applied": applied},
        lambda d: f"replayed {d['replayed']} dead letter(s); applied {d['applied']}",
        0,
    )


def parse_when(text: str | None, name: str) -> float | None:
    """`--since`/`--until` as epoch seconds (UTC when the time has no zone); UsageError
    (exit 2) when it is not ISO."""
    if text is None:
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"--{name} {text!r} is not an ISO date/time") from exc
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


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
    """Run one of the read and operate commands (migrate, ledger, dlq, backup, status) on
    the open hub; `messages`, `replay` (cli/messages.py) and `workitems` (cli/workitems.py)
    have their own modules."""
    handler = {
        "migrate": _migrate,
        "ledger": _ledger,
        "dlq": _dlq,
        "backup": _backup,
        "status": _status,
    }[args.cmd]
    return handler(hub, args)
