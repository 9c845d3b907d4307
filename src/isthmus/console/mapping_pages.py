"""The console's mappings page: what waits for a mapping, and the mappings in force.

Issue 15 item 4, the console side of `isthmus workitems list` and `workitems mappings`:
one row per open item of a missing mapping (`flows.mapping_holds`: a facility, department,
charge code or payee), with how many events and how much money wait behind it and since
when, and a form to resolve it (the mapping's values, as `workitems resolve --set`). A
resolution goes through `flows.workitems.resolve` as the CLI's does: it stores the
mapping as an override and puts every held event back on the bus at once; the page says
how many were released and, once applied, posted. Below, every mapping in force: the
operators' overrides first, then the config chart's rows they do not override.

The form carries the session's CSRF token like every console form; the route's RBAC entry
is the work item resolve's (who may resolve may map). Codes are the chart's, never patient
data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from isthmus.console import reads
from isthmus.flows import mapping_holds, workitems

if TYPE_CHECKING:
    from isthmus.console.app import Console, Ctx

PATH = "/mappings"
RESOLVE = "/mappings/{id:int}/resolve"


def held_items(console: Console, now: float) -> list[dict[str, Any]]:
    """The open mapping items, the most money-holding first."""
    store = console.hub.store
    items = [
        w
        for w in store.work_items("open", limit=5000)
        if mapping_holds.parse_ref(w.event_id) is not None
    ]
    totals = store.hold_totals([w.event_id for w in items])
    rows: list[dict[str, Any]] = []
    for w in items:
        table, code = mapping_holds.parse_ref(w.event_id) or ("", "")
        t = totals.get(w.event_id)
        rows.append(
            {
                "id": w.id,
                "kind": w.kind,
                "queue": w.queue,
                "table": table,
                "code": code,
                "detail": w.detail,
                "count": t.count if t else 0,
                "amounts": [f"{a} {c}" for c, a in t.amounts] if t else [],
                "oldest": reads.when(t.oldest) if t else "",
                "age": reads.age(now - t.oldest) if t else "",
                "fields": workitems.FIELDS.get(w.kind, ("", ()))[1],
            }
        )
    rows.sort(key=lambda r: (-r["count"], r["table"], r["code"]))
    return rows


def in_force(console: Console) -> list[dict[str, str]]:
    """Overrides (resolved items, `workitems resolve`), then the config rows they leave."""
    rows = [
        {"table": t, "code": c, "value": v, "source": "override"}
        for t, c, v in console.hub.store.mapping_overrides(mapping_holds.TABLES)
    ]
    maps = console.hub.settings.mappings
    chart = (
        [("facility_company", c, v) for c, v in maps.facility_company.items()]
        + [("department_cost_center", c, v) for c, v in maps.department_cost_center.items()]
        + [
            ("charge_codes", c, f"{m.revenue_account} {m.service_line}")
            for c, m in maps.charge_codes.items()
        ]
    )
    taken = {(r["table"], r["code"]) for r in rows}
    source = f"config ({maps.include} chart)" if maps.include else "config"
    rows += [
        {"table": t, "code": c, "value": v, "source": source}
        for t, c, v in sorted(chart)
        if (t, c) not in taken
    ]
    return rows


def page(console: Console, ctx: Ctx) -> Response:
    """The mappings page: open items that wait for a mapping (optionally of one `?table=`),
    and every mapping in force."""
    table = ctx.request.query_params.get("table", "")
    mappings = [r for r in in_force(console) if not table or r["table"] == table]
    return console.render(
        ctx,
        "mappings.html",
        title="Mappings",
        items=held_items(console, console.clock()),
        mappings=mappings,
        tables=mapping_holds.TABLES,
        table=table,
        may_resolve=ctx.may("POST", RESOLVE),
    )


def resolve(console: Console, ctx: Ctx) -> Response:
    """Resolve a missing-mapping work item with the values posted (`set_<name>` fields), as
    `workitems resolve --set` does, audit it, and say how many held events posted."""
    item_id = int(ctx.request.path_params["id"])
    values = {k[4:]: v[0] for k, v in ctx.form.items() if k.startswith("set_") and v}
    try:
        w = workitems.item(console.hub.store, item_id)
        if mapping_holds.parse_ref(w.event_id) is None:
            raise workitems.ActionRefused(
                f"work item {item_id} is not a missing mapping: resolve it from the work queues",
                "id",
            )
        done = workitems.resolve(
            console.hub.store,
            item_id,
            values,
            ctx.value("note"),
            console.clock(),
            bus=console.hub.bus,
        )
    except workitems.ActionRefused as exc:
        console.audit(ctx, "mappings.resolve", f"workitem/{item_id}", "failed", reason=str(exc))
        return console.refuse(ctx, exc, console.prefix + PATH)
    applied = console.apply_here()
    outcome = mapping_holds.outcome(console.hub.store, w.event_id)
    after = console.hub.store.work_item(item_id)
    said = after.resolution if after is not None else ""
    console.audit(ctx, "mappings.resolve", f"workitem/{item_id}", "ok", mapping=done, result=said)
    return console.done(
        PATH,
        f"work item {item_id} resolved: {said}"
        + (f"; {outcome['posted']} posted" if applied else ""),
    )
