"""Usages, voids and requests of stock, decided without the store (issue 17, issue 8).

* A usage (`SupplyConsumed`: a FHIR SupplyDelivery, a usage CSV row, an FT1 supply line)
  takes stock off its location and posts DR supply expense (the department's cost center)
  / CR inventory at the average cost, keyed `supply/usage/<usage id>`; what it took is kept
  as its applied record (`Taken`), enough to void it. A department with no cost center
  (`unmapped_department`) or more than is on hand (`insufficient_stock`) holds the event in
  a work item of queue `procurement`. The same usage id again is a duplicate, or held
  (`usage_changed`) when it now says otherwise.
* When on-hand crosses the item's reorder point a requisition for (par - on hand - on
  order) is made, budget-checked: a breach holds it in a `budget_approval` work item,
  otherwise it waits as pending for the ERP.
* A void puts the stock back at the value it was taken at and reverses the usage's entry;
  voided before it arrived, the usage will take nothing.
* A request (`SupplyRequested`) makes a requisition through the same budget check.

Each function takes the facts the flow read (`supply_rules.Facts`) and returns a
`flows.decision.Decision`; it changes only a state of its own (`supply_state.state_of`).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import msgspec

from isthmus.flows.decision import Decision, Resolve, WorkItem, hold
from isthmus.flows.outcome import DUPLICATE, POSTED, Held
from isthmus.flows.supply_rules import (
    QUEUE,
    VOIDED,
    Facts,
    MarkApplied,
    SupplyRules,
    saved,
    work_item,
)
from isthmus.flows.supply_state import SupplyState, Taken, state_of
from isthmus.formats.hl7v2.code_display import shown
from isthmus.ledger.currency import quantize
from isthmus.ledger.errors import LedgerRefusal
from isthmus.ledger.journal import reverse
from isthmus.ledger.supply_match import crossed_reorder_point, reorder_quantity, within_budget
from isthmus.model.envelope import Envelope
from isthmus.model.events import SupplyConsumed, SupplyRequested, SupplyUsageVoided
from isthmus.ports.supply import Requisition

_taken_enc = msgspec.json.Encoder(decimal_format="string")
_taken_dec = msgspec.json.Decoder(Taken)


def usage_key(usage_id: str) -> str:
    """The applied id (and entry key) of a usage."""
    return f"supply/usage/{usage_id}"


def decide_usage(rules: SupplyRules, env: Envelope, ev: SupplyConsumed, facts: Facts) -> Decision:
    """Apply one usage (module docstring); `env` is the event that brought it (itself, or
    the FT1 charge line: then no work item of its own is resolved)."""
    if facts.applied is not None:
        return decide_again(env, ev, facts.applied)
    applied_id = usage_key(ev.usage_id)
    p = rules.policy
    company = rules.maps.facility_company.get(ev.facility, p.company)
    cost_center = rules.maps.department_cost_center.get(ev.department, "")
    if not cost_center:
        return hold(
            env,
            kind="unmapped_department",
            queue=QUEUE,
            detail=f"department {shown('department_cost_center', ev.department)!r} "
            "has no cost center",
        )
    state = state_of(facts.state, p)
    before = state.book.quantity(ev.item, ev.location)
    try:
        entry = state.book.consume(
            ev.item,
            ev.location,
            ev.quantity,
            company=company,
            cost_center=cost_center,
            service_line=p.service_lines.get(ev.department, ev.department),
            posting=rules.posting(
                applied_id,
                ev.used_on,
                f"usage {ev.usage_id} item {ev.item}",
                env.correlation_id,
                env.event_id,
            ),
        )
    except LedgerRefusal as exc:
        refused = hold(env, kind="insufficient_stock", queue=QUEUE, detail=str(exc))
        return refused._replace(writes=(saved(state),))
    value = sum((ln.credit for ln in entry.lines), Decimal(0)) if entry else Decimal(0)
    taken = _taken_enc.encode(Taken(ev.item, ev.location, ev.quantity, value, entry))
    opened = replenish(
        rules, state, ev.item, ev.location, before, ev.used_on, ev.usage_id, env.correlation_id
    )
    return Decision(
        POSTED,
        open=opened,
        writes=(MarkApplied(applied_id, taken), saved(state)),
        entries=() if entry is None else (entry,),
        resolve=(Resolve(env.event_id, "posted after the fix"),) if env.payload is ev else (),
    )


def decide_again(env: Envelope, ev: SupplyConsumed, kept: bytes) -> Decision:
    """A usage id seen before: a duplicate, or held when this version says otherwise than
    the one applied (a person corrects it: void the usage, send it again under a new id)."""
    if kept == VOIDED:
        return Decision(DUPLICATE)  # voided before it came: it takes nothing
    was = _taken_dec.decode(kept)
    if (was.item, was.location, was.quantity) == (ev.item, ev.location, ev.quantity):
        return Decision(DUPLICATE)
    return hold(
        env,
        kind="usage_changed",
        queue=QUEUE,
        detail=f"usage {ev.usage_id} was applied as {was.quantity} x {was.item} at "
        f"{was.location}; this version says {ev.quantity} x {ev.item} at "
        f"{ev.location}: void it and send the correction under a new id",
    )


def decide_void(rules: SupplyRules, env: Envelope, ev: SupplyUsageVoided, facts: Facts) -> Decision:
    """A usage recorded in error (`facts.applied`: the void's record, `facts.taken`: the
    usage's): the stock goes back and its entry is reversed; voided before it arrived, the
    usage will take nothing; a second void is a duplicate."""
    if facts.applied is not None:
        return Decision(DUPLICATE)
    voided = MarkApplied(f"supply/void/{ev.usage_id}")
    if facts.taken is None:
        return Decision(POSTED, writes=(voided, MarkApplied(usage_key(ev.usage_id), VOIDED)))
    was = _taken_dec.decode(facts.taken)
    state = state_of(facts.state, rules.policy)
    state.book.restock(was.item, was.location, was.quantity, was.value)
    if was.entry is None:
        return Decision(POSTED, writes=(voided, saved(state)))
    where = rules.calendar.assign(ev.voided_on)
    back = reverse(
        was.entry,
        entry_key=f"{was.entry.entry_key}/void",
        posted_on=where.posted_on,
        period=where.period,
        causation_id=env.event_id,
    )
    return Decision(POSTED, writes=(voided, saved(state)), entries=(back,))


def decide_request(
    rules: SupplyRules, env: Envelope, ev: SupplyRequested, facts: Facts
) -> Decision:
    """A department's request for stock: a requisition (posted when it waits for the ERP,
    held for a budget approval or an unknown cost center), or a duplicate."""
    if facts.applied is not None:
        return Decision(DUPLICATE)
    rule = rules.policy.par_levels.get(f"{ev.item}|{ev.location}")
    cost_center = rules.maps.department_cost_center.get(ev.department, "") or (
        rule.cost_center if rule else ""
    )
    if not cost_center:
        return hold(
            env,
            kind="unmapped_department",
            queue=QUEUE,
            detail=f"request {ev.request_id}: neither department "
            f"{shown('department_cost_center', ev.department)!r} nor "
            f"{ev.item}|{ev.location} names a cost center",
        )
    state = state_of(facts.state, rules.policy)
    item = requisition(
        rules,
        state,
        Requisition(
            req_id=f"REQ-{ev.request_id}",
            item=ev.item,
            location=ev.location,
            quantity=ev.quantity,
            cost_center=cost_center,
            amount=quantize(
                ev.quantity * (rule.unit_price if rule else Decimal(0)), rules.policy.currency
            ),
            created_on=ev.requested_on,
        ),
        env.correlation_id,
    )
    return Decision(
        POSTED if item is None else Held(QUEUE, item.detail),
        open=() if item is None else (item,),
        writes=(MarkApplied(f"supply/request/{ev.request_id}"), saved(state)),
        resolve=(Resolve(env.event_id, "requested after the fix"),),
    )


def replenish(
    rules: SupplyRules,
    state: SupplyState,
    item: str,
    location: str,
    before: Decimal,
    on: date,
    source: str,
    correlation_id: str,
) -> tuple[WorkItem, ...]:
    """When a usage took on-hand across the reorder point: a requisition up to par (added
    to `state`), and its budget work item when it breaches the budget."""
    rule = rules.policy.par_levels.get(f"{item}|{location}")
    after = state.book.quantity(item, location)
    if rule is None or not crossed_reorder_point(before, after, rule.reorder_point):
        return ()
    qty = reorder_quantity(rule.par, after, state.on_order(item, location))
    if qty <= 0:
        return ()
    req = Requisition(
        req_id=f"REQ-{item}-{location}-{source}",
        item=item,
        location=location,
        quantity=qty,
        cost_center=rule.cost_center,
        amount=quantize(qty * rule.unit_price, rules.policy.currency),
        created_on=on,
    )
    held = requisition(rules, state, req, correlation_id)
    return () if held is None else (held,)


def requisition(
    rules: SupplyRules, state: SupplyState, req: Requisition, correlation_id: str
) -> WorkItem | None:
    """Add `req` to `state`, budget-checked: None when it waits for the ERP, else it waits
    for approval and this is its `budget_approval` work item."""
    committed = state.committed(req.cost_center)
    state.requisitions.append(req)
    if within_budget(
        budget=rules.policy.budgets.get(req.cost_center), committed=committed, amount=req.amount
    ):
        return None
    req.status = "approval"
    return work_item(
        "budget_approval",
        req.cost_center,
        req.req_id,
        correlation_id,
        f"requisition {req.req_id} for {req.quantity} x {req.item} ({req.amount} "
        f"{rules.policy.currency}) exceeds the budget of cost center "
        f"{req.cost_center} ({committed} committed)",
    )
