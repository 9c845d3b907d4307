"""The console's Work queues and Dead letters pages, and their buttons.

Work queues: the exception work items of one queue and status, with who holds each, and
the assign, resolve and resubmit forms; Dead letters: what the bus gave up on, and the
replay form. Every button acts through flows/workitems.py, as `isthmus workitems` and
`isthmus dlq` do, and each attempt is written to the audit trail with its outcome; a
refusal (`ActionRefused`) is shown with the field it names.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.responses import Response

from isthmus.console import reads
from isthmus.flows import workitems as actions
from isthmus.flows.workitems import ActionRefused

if TYPE_CHECKING:
    from isthmus.console.app import Console, Ctx


def queues(console: Console, ctx: Ctx) -> Response:
    """The Work queues page: the counts per queue and the items of one (`?queue=`,
    `?status=` open, resolved or resubmitted), with the forms for those who may act."""
    q = ctx.request.query_params
    status = q.get("status", "open")
    if status not in ("open", "resolved", "resubmitted"):
        status = "open"
    store, now = console.hub.store, console.clock()
    items = store.work_items(status, limit=5000)
    counts: dict[str, int] = dict.fromkeys(reads.WORK_QUEUES, 0)
    for w in items:
        counts[w.queue] = counts.get(w.queue, 0) + 1
    queue = q.get("queue", "") or next((k for k, n in counts.items() if n), "")
    shown = [w for w in items if w.queue == queue]
    who = actions.assignees(store, [w.id for w in shown])
    rows = [reads.work_item_row(w, now, who.get(w.id, "")) for w in shown]
    return console.render(
        ctx,
        "queues.html",
        title="Work queues",
        counts=counts,
        queue=queue,
        status=status,
        rows=rows,
        fields=actions.FIELDS,
        elsewhere=actions.ELSEWHERE,
        may_act=ctx.may("POST", "/workitems/{id:int}/resolve"),
    )


def _item_action(console: Console, ctx: Ctx, name: str, act: Callable[[int], str]) -> Response:
    item_id = int(ctx.request.path_params["id"])
    back = "/queues?queue=" + urllib.parse.quote(ctx.value("queue"))
    try:
        message = act(item_id)
    except ActionRefused as exc:
        console.audit(ctx, f"workitems.{name}", f"workitem/{item_id}", "failed", reason=str(exc))
        return console.refuse(ctx, exc, console.prefix + back)
    console.audit(ctx, f"workitems.{name}", f"workitem/{item_id}", "ok", result=message)
    return console.done(back, f"work item {item_id}: {message}")


def assign(console: Console, ctx: Ctx) -> Response:
    """Assign a work item to the named person (or to the one signed in)."""
    who = ctx.value("assignee").strip() or ctx.actor

    def act(i: int) -> str:
        actions.assign(console.hub.store, i, who)
        return f"assigned to {who}"

    return _item_action(console, ctx, "assign", act)


def resolve(console: Console, ctx: Ctx) -> Response:
    """Resolve a work item with the values its form set (`set_<field>`) and a note."""
    values = {k[4:]: v[0] for k, v in ctx.form.items() if k.startswith("set_") and v}

    def act(i: int) -> str:
        done = actions.resolve(
            console.hub.store, i, values, ctx.value("note"), console.clock(), bus=console.hub.bus
        )
        return "resolved" + (f", mapping {done} added" if done else "")

    return _item_action(console, ctx, "resolve", act)


def resubmit(console: Console, ctx: Ctx) -> Response:
    """Resubmit a work item's events, with a note."""

    def act(i: int) -> str:
        said = actions.resubmit(
            console.hub.store, console.hub.bus, i, ctx.value("note"), console.clock()
        )
        applied = console.apply_here()
        return f"resubmitted; {said}" + (f"; {applied} applied" if applied else "")

    return _item_action(console, ctx, "resubmit", act)


def dlq(console: Console, ctx: Ctx) -> Response:
    """The Dead letters page: what the bus gave up on, newest 1000, with the replay form."""
    now = console.clock()
    rows = [
        {
            "seq": d.seq,
            "event_id": d.msg_id,
            "key": d.key,
            "attempts": d.attempts,
            "reason": d.reason,
            "failed": reads.when(d.failed_at),
            "age": reads.age(now - d.failed_at),
        }
        for d in console.hub.bus.dead_letters(1000)
    ]
    return console.render(
        ctx,
        "dlq.html",
        title="Dead letters",
        rows=rows,
        may_replay=ctx.may("POST", "/dlq/replay"),
    )


def dlq_replay(console: Console, ctx: Ctx) -> Response:
    """Replay the chosen dead letters (`seq`), or all of them (`all=1`)."""
    everything = ctx.value("all") == "1"
    try:
        seqs = None if everything else [int(s) for s in ctx.form.get("seq", [])]
        n = actions.replay_dead(console.hub.bus, seqs)
    except ValueError as exc:
        refused = (
            exc
            if isinstance(exc, ActionRefused)
            else ActionRefused("a dead letter's sequence number is a whole number", "seq")
        )
        console.audit(ctx, "dlq.replay", "dlq", "failed", reason=str(refused))
        return console.refuse(ctx, refused, console.prefix + "/dlq")
    applied = console.apply_here()
    console.audit(ctx, "dlq.replay", "dlq", "ok", replayed=n, seqs=seqs or "all")
    return console.done(
        "/dlq", f"replayed {n} dead letter(s)" + (f"; {applied} applied" if applied else "")
    )
