"""`isthmus workitems list|resolve|resubmit|mappings`: the exception work queues.

A business problem becomes a work item (one per cause, holding its events); here a person
lists them, resolves one (a mapping added with `--set FIELD=VALUE` releases what it held),
resubmits one (its events or ERP row go again), or reads the mapping chart in force with
its config rows and overrides.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from isthmus.app import Hub
from isthmus.cli.commands import Result, UsageError, _table, apply_now
from isthmus.flows import mapping_holds, workitems

COMMANDS = ("workitems",)


def dispatch(hub: Hub, args: argparse.Namespace) -> Result:
    """`workitems list|mappings`, or `resolve|resubmit ID`: a NoSuchWorkItem exits 3, an
    ActionRefused (a bad --set) 2."""
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
    if args.action == "resolve":  # NoSuchWorkItem exits 3, ActionRefused 2
        values = dict(s.split("=", 1) for s in args.set if "=" in s)
        if len(values) != len(args.set):
            raise UsageError("--set takes FIELD=VALUE")
        values = workitems.resolve(store, args.id, values, args.note, now, bus=hub.bus)
        applied = apply_now(hub, args)
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
    applied = apply_now(hub, args)
    return (
        {"id": args.id, "status": "resubmitted", "applied": applied},
        lambda d: f"work item {d['id']} resubmitted; {said}; applied {d['applied']}",
        0,
    )
