"""The console's Supply page (issue 8): the supply report, the margin, budget approvals.

It shows what `isthmus supply report` and `isthmus supply margin` print, read from the same
places: the supply flow's committed state (`SupplyFlow.snapshot`) through
`recon.supply.supply_report` (stock-out risk, unmatched supplier invoices aged into
buckets, open GRNI, requisitions) and the journal through `recon.supply.service_line_margin`
(labor cost from `flows.labor_budget.service_line_cost`). `?as_of=YYYY-MM-DD` ages the invoices
as of another day, like `--as-of`.

Two actions, like `isthmus supply approve|reject`: a person allowed to release a budget
breach approves a requisition held for its cost center's budget (`SupplyFlow.approve`,
which commits it as pending for the ERP and closes its work item), or rejects it with a
reason (`SupplyFlow.reject`). Every attempt is written to the audit trail with its
outcome.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from isthmus.app import Hub
from isthmus.console import charts
from isthmus.flows.labor_budget import service_line_cost
from isthmus.flows.supply_state import policy_from_table
from isthmus.recon.supply import BUCKETS, service_line_margin, supply_report

if TYPE_CHECKING:
    from isthmus.console.app import Console, Ctx

HELD = "approval"  # a requisition's status while it waits for a budget approval


def _as_of(console: Console, ctx: Ctx, problems: list[str]) -> date:
    text = ctx.request.query_params.get("as_of", "")
    today = datetime.fromtimestamp(console.clock(), UTC).date()
    if not text:
        return today
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.append(f"as_of: {text!r} is not a date (YYYY-MM-DD)")
        return today


def read(hub: Hub, as_of: date) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The supply report as of `as_of` and the service-line margin, as the CLI builds them
    (the hub has already refused a [supply] table it cannot read when it opened)."""
    policy, limit = policy_from_table(hub.settings.supply)
    flow = hub.processor.supply
    assert flow is not None  # Hub.open builds the supply flow of every hub
    report = supply_report(flow.snapshot(), policy, as_of=as_of, limit_days=limit)
    revenue = {m.revenue_account for m in hub.settings.mappings.charge_codes.values()}
    margin = service_line_margin(
        hub.store.entries(),
        revenue_accounts=revenue,
        supply_expense_account=policy.accounts.supply_expense,
        labor_cost=service_line_cost(hub.store, hub.settings.labor),
    )
    return report, margin


def page(console: Console, ctx: Ctx) -> Response:
    """The Supply page: stock-out risk, unmatched invoice aging, open GRNI, requisitions and
    service-line margin, as of `?as_of=` or today; 404 without a supply flow."""
    if console.hub.processor.supply is None:
        return console.render(
            ctx,
            "error.html",
            404,
            title="No supply flow",
            message="this hub runs without a supply flow",
            field="",
            back=console.prefix + "/",
        )
    problems: list[str] = []
    as_of = _as_of(console, ctx, problems)
    report, margin = read(console.hub, as_of)
    unmatched = report["unmatched"]
    aging = charts.bars(
        [(f"{name} days", unmatched["aging"][name]["count"]) for name, _, _ in BUCKETS],
        title="Unmatched supplier invoice lines by age",
        color="#a23b3b",
    )
    held = sum(1 for r in report["requisitions"] if r["status"] == HELD)
    return console.render(
        ctx,
        "supply.html",
        400 if problems else 200,
        title="Supply",
        r=report,
        margin=margin,
        aging=aging,
        held=held,
        problems=problems,
        as_of=ctx.request.query_params.get("as_of", ""),
        at_risk=sum(1 for x in report["stock_out_risk"] if x["at_risk"]),
        may_approve=ctx.may("POST", "/supply/approve"),
    )


def decide(console: Console, ctx: Ctx, *, approve: bool) -> Response:
    """Release one requisition held for its budget, or refuse it with a reason (form
    fields `requisition`, `reason`)."""
    verb = "approve" if approve else "reject"
    req_id = ctx.value("requisition").strip()
    reason = ctx.value("reason").strip()
    back = console.prefix + "/supply"
    flow = console.hub.processor.supply
    why = (
        "this hub runs without a supply flow"
        if flow is None
        else "name the requisition"
        if not req_id
        else ""
        if approve or reason
        else "say why it is rejected"
    )
    if why or flow is None:
        console.audit(ctx, f"supply.{verb}", f"requisition/{req_id}", "failed", reason=why)
        return console.render(
            ctx,
            "error.html",
            400,
            title=f"Not {verb}d",
            message=why,
            field="requisition" if req_id else "reason",
            back=back,
        )
    with console.hub.store.transaction() as tx:
        done = flow.approve(tx, req_id) if approve else flow.reject(tx, req_id, reason)
    if not done:
        why = (
            f"no requisition {req_id} waits for a budget approval"
            f"{'' if approve else ' or for the ERP'} (decided already, or never held): "
            "reload the Supply page"
        )
        console.audit(ctx, f"supply.{verb}", f"requisition/{req_id}", "failed", reason=why)
        return console.render(
            ctx,
            "error.html",
            404,
            title=f"Not {verb}d",
            message=why,
            field="requisition",
            back=back,
        )
    console.audit(
        ctx,
        f"supply.{verb}",
        f"requisition/{req_id}",
        "ok",
        **({} if approve else {"reason": reason}),
    )
    path = "/supply"
    with contextlib.suppress(ValueError):  # back to the day the approver was looking at
        path += f"?as_of={date.fromisoformat(ctx.value('as_of')).isoformat()}"
    said = (
        "pending for the ERP (the next `isthmus supply sync` sends it)"
        if approve
        else "it will not be sent to the ERP"
    )
    return console.done(path, f"requisition {req_id} {verb}d by {ctx.actor}: {said}")
