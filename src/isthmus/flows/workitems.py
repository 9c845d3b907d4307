"""Operating on work items and dead letters: assign, resolve, resubmit, replay.

One implementation behind `isthmus workitems resolve|resubmit`, `isthmus dlq replay` and
the console's buttons, on the store and bus ports: a resolution may add a mapping override
(the charge code, department, facility or payee the item was missing); for the one item of
a missing mapping (flows/mapping_holds.py) it then releases every event held behind it at
once. A resubmission puts the item's event back on the bus (a mapping item: all its held
events, as after a config fix; an ERP rejection: its batch back in the outbox), a replay
puts dead letters back on the bus. The running hub's workers apply them.

Errors are `ActionRefused`, named for the operator: the field at fault and why
(`NoSuchWorkItem` when the id names nothing).
Assignment is kept as a mapping override row of table `workitem_assignee` (work item id ->
principal): the store port has no assignee column yet.
"""

from __future__ import annotations

import json
from decimal import Decimal

from isthmus.bus.ports import Bus, Publish
from isthmus.errors import InvalidInput, NotFoundError
from isthmus.flows import mapping_holds
from isthmus.flows.export import REJECTED_KIND, resubmit_rejected
from isthmus.flows.relay import TOPIC
from isthmus.formats.hl7v2 import code_display
from isthmus.model.envelope import decode_envelope
from isthmus.store.ports import Store, WorkItem

ASSIGNEE_TABLE = "workitem_assignee"
# Items decided by their own flow, never by a generic resolve or resubmit.
ELSEWHERE = {
    "refund_approval": "is a refund approval, decided by a second user "
    "(segregation of duties): `isthmus refunds approve|reject "
    "{ref}` or the console's Refunds page, not resolved here",
    "budget_approval": "holds requisition {event} for its cost center's budget: "
    "`isthmus supply approve|reject {event}` or the console's "
    "Supply page, not resolved here",
    "unbalanced_remittance": "holds 835 interchange {event} (it does not balance): "
    "`isthmus remits release` posts it, with a reason; "
    "not resolved here",
}

# work item kind -> (mapping table, fields the resolution may set); as the CLI's --set
FIELDS = {
    "unmapped_charge_code": ("charge_codes", ("revenue_account", "service_line")),
    "unmapped_department": ("department_cost_center", ("cost_center",)),
    "unmapped_facility": ("facility_company", ("company",)),
    "unmapped_payee": ("payee_company", ("company",)),
}


class ActionRefused(InvalidInput, ValueError):
    """The action cannot be taken as asked; `field` names the form field at fault."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class NoSuchWorkItem(NotFoundError, ActionRefused):
    """The id names no work item."""

    http_status, exit_code = 404, 3


def item(store: Store, item_id: int, *, acting: bool = True) -> WorkItem:
    """Work item `item_id`; when `acting`, refused if its kind is acted on elsewhere."""
    found: WorkItem | None = store.work_item(item_id)
    if found is None:
        raise NoSuchWorkItem(f"no work item {item_id}", "id")
    if acting and found.kind in ELSEWHERE:
        ref = found.event_id.rpartition("/")[2]
        raise ActionRefused(
            f"work item {item_id} " + ELSEWHERE[found.kind].format(ref=ref, event=found.event_id),
            "id",
        )
    return found


def assignees(store: Store, ids: list[int]) -> dict[int, str]:
    """Who each of the work items is assigned to (unassigned ones left out)."""
    with store.transaction() as tx:
        return {i: who for i in ids if (who := tx.mapping_override(ASSIGNEE_TABLE, str(i)))}


def assign(store: Store, item_id: int, who: str) -> None:
    """Assign an open work item to a person."""
    w = item(store, item_id, acting=False)
    if w.status != "open":
        raise ActionRefused(
            f"work item {item_id} is {w.status}; only open items are assigned", "id"
        )
    store.set_mapping_override(ASSIGNEE_TABLE, str(item_id), who.strip())


def _released(count: int, sums: dict[str, Decimal]) -> str:
    money = ", ".join(f"{v} {c}" for c, v in sorted(sums.items()))
    return f"released {count} held event(s)" + (f" ({money})" if money else "")


def resolve(
    store: Store,
    item_id: int,
    values: dict[str, str],
    note: str,
    now: float,
    *,
    bus: Bus | None = None,
) -> dict[str, str]:
    """Mark the item resolved; with values, add the mapping it was missing first. The item
    of a missing mapping needs the mapping (or a resubmit, after a config fix) and `bus`:
    every event held behind it goes back on the bus, and the resolution says so."""
    w = item(store, item_id)
    ref = mapping_holds.parse_ref(w.event_id)
    if ref is not None:
        return _resolve_mapping(store, w, ref, values, note, now, bus)
    if w.status != "open":
        raise ActionRefused(f"work item {item_id} is already {w.status}", "id")
    values = {k: v.strip() for k, v in values.items() if v.strip()}
    if values:
        if w.kind not in FIELDS:
            raise ActionRefused(
                f"a {w.kind} item takes no mapping; fix it at the source and resubmit",
                next(iter(values)),
            )
        table, allowed = FIELDS[w.kind]
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise ActionRefused(f"{unknown[0]} is not one of {list(allowed)}", unknown[0])
        if table == "charge_codes" and "revenue_account" not in values:
            raise ActionRefused(
                "a revenue account is required to map a charge code", "revenue_account"
            )
        payload = decode_envelope(w.envelope).payload
        code = str(
            getattr(
                payload,
                {
                    "charge_codes": "charge_code",
                    "department_cost_center": "department",
                    "facility_company": "facility",
                    "payee_company": "payee_key",
                }[table],
                "",
            )
        )
        value = json.dumps(values) if table == "charge_codes" else next(iter(values.values()))
        store.set_mapping_override(table, code, value)
    store.set_work_item_status(w.id, "resolved", note or json.dumps(values), now)
    return values


def _resolve_mapping(
    store: Store,
    w: WorkItem,
    ref: tuple[str, str],
    values: dict[str, str],
    note: str,
    now: float,
    bus: Bus | None,
) -> dict[str, str]:
    table, code = ref
    if w.status != "open":
        raise ActionRefused(f"work item {w.id} is already {w.status}", "id")
    if not code_display.looks_like_code(table, code):
        # shown by its digest: what the field holds is not a code (a name typed into it?),
        # and a mapping row keyed on it would never match what the events carry
        raise ActionRefused(
            f"work item {w.id} holds a value that is not a code, so it "
            "cannot be mapped: correct the field at the source and send "
            "the messages again",
            "id",
        )
    allowed = FIELDS[w.kind][1] if w.kind in FIELDS else ()
    values = {k: v.strip() for k, v in values.items() if v.strip()}
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ActionRefused(f"{unknown[0]} is not one of {list(allowed)}", unknown[0])
    if not values:
        raise ActionRefused(
            f"work item {w.id} waits for a mapping of {code!r}: give "
            f"{' and '.join(allowed)} (or fix the config and resubmit it)",
            allowed[0] if allowed else "id",
        )
    if table == "charge_codes" and "revenue_account" not in values:
        raise ActionRefused("a revenue account is required to map a charge code", "revenue_account")
    if bus is None:
        raise ActionRefused("releasing the held events needs the bus", "id")
    store.set_mapping_override(
        table, code, json.dumps(values) if table == "charge_codes" else next(iter(values.values()))
    )
    said = _released(*mapping_holds.release(store, bus, w.event_id, now))
    store.set_work_item_status(
        w.id, "resolved", f"{json.dumps(values)}; {said}" + (f"; {note}" if note else ""), now
    )
    return values


def resubmit(store: Store, bus: Bus, item_id: int, note: str, now: float) -> str:
    """Put the item's event back on the bus (an ERP rejection: its batch in the outbox; a
    missing mapping: every event held behind it, as after a config fix)."""
    w = item(store, item_id)
    if w.status == "resubmitted":
        raise ActionRefused(f"work item {item_id} was resubmitted already", "id")
    if mapping_holds.parse_ref(w.event_id) is not None:
        said = _released(*mapping_holds.release(store, bus, w.event_id, now))
        # resubmitted, not resolved: a charge that still finds no mapping opens it again
        store.set_work_item_status(w.id, "resubmitted", w.resolution or note or said, now)
        return said
    if w.kind == REJECTED_KIND:
        resubmit_rejected(store, w.event_id, now)
        store.set_work_item_status(w.id, "resubmitted", w.resolution or note, now)
        return f"batch {w.key} is queued for the ERP again (the next export round delivers it)"
    env = decode_envelope(w.envelope)
    bus.replay([Publish(env.event_id, TOPIC, env.key, w.envelope)])
    store.set_work_item_status(w.id, "resubmitted", w.resolution or note, now)
    return f"event {env.event_id} is back on the bus"


def replay_dead(bus: Bus, seqs: list[int] | None) -> int:
    """Put the dead letters `seqs` (None: all of them) back on the bus."""
    if seqs is not None and not seqs:
        raise ActionRefused("choose at least one dead letter", "seq")
    return bus.replay_dead(seqs)
