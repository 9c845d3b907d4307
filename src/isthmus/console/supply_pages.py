"""The console's Supply page (issue 8): the supply report, the margin, budget approvals.

It shows what `isthmus supply report` and `isthmus supply margin` print, read from the same
places: the supply flow's committed state (`SupplyFlow.snapshot`) through
`recon.supply.supply_report` (stock-out risk, unmatched supplier invoices aged into
buckets, open GRNI, requisitions) and the journal through `recon.supply.service_line_margin`
(labor cost from `flows.labor.service_line_cost`). `?as_of=YYYY-MM-DD` ages the invoices
as of another day, like `--as-of`.

One action, like `isthmus supply approve`: a person allowed to release a budget breach
approves a requisition held for its cost center's budget (`SupplyFlow.approve`, which
commits the requisition as pending for the ERP and closes its work item). Every attempt
is written to the audit trail with its outcome.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from isthmus.console import charts
from isthmus.flows.labor import service_line_cost
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


def read(hub: Any, as_of: date) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The supply report as of `as_of` and the service-line margin, as the CLI builds them
    (the hub has already refused a [supply] table it cannot read when it opened)."""
    policy, limit = policy_from_table(hub.settings.supply)
    flow = hub.processor.supply
    report = supply_report(flow.snapshot(), policy, as_of=as_of, limit_days=limit)
    revenue = {m.revenue_account for m in hub.settings.mappings.charge_codes.values()}
    margin = service_line_margin(hub.store.entries(), revenue_accounts=revenue,
                                 supply_expense_account=policy.accounts.supply_expense,
                                 labor_cost=service_line_cost(hub.store, hub.settings.labor))
    return report, margin


def page(console: Console, ctx: Ctx) -> Response:
    if console.hub.processor.supply is None:
        return console.render(ctx, "error.html", 404, title="No supply flow",
                              message="this hub runs without a supply flow", field="",
                              back=console.prefix + "/")
    problems: list[str] = []
    as_of = _as_of(console, ctx, problems)
    report, margin = read(console.hub, as_of)
    unmatched = report["unmatched"]
    aging = charts.bars([(f"{name} days", unmatched["aging"][name]["count"])
                         for name, _, _ in BUCKETS],
                        title="Unmatched supplier invoice lines by age", color="#a23b3b")
    held = sum(1 for r in report["requisitions"] if r["status"] == HELD)
    return console.render(ctx, "supply.html", 400 if problems else 200, title="Supply",
                          r=report, margin=margin, aging=aging, held=held,
                          problems=problems, as_of=ctx.request.query_params.get("as_of", ""),
                          at_risk=sum(1 for x in report["stock_out_risk"] if x["at_risk"]),
                          may_approve=ctx.may("POST", "/supply/approve"))


def approve(console: Console, ctx: Ctx) -> Response:
    """Release one requisition held for its budget (form field `requisition`)."""
    req_id = ctx.value("requisition").strip()
    back = console.prefix + "/supply"
    flow = console.hub.processor.supply
    why = ("this hub runs without a supply flow" if flow is None else
           "" if req_id else "name the requisition to approve")
    if why:
        console.audit(ctx, "supply.approve", f"requisition/{req_id}", "failed", reason=why)
        return console.render(ctx, "error.html", 400, title="Not approved", message=why,
                              field="requisition", back=back)
    with console.hub.store.transaction() as tx:
        approved = flow.approve(tx, req_id)
    if not approved:
        why = (f"no requisition {req_id} waits for a budget approval (approved already, or "
               "never held): reload the Supply page")
        console.audit(ctx, "supply.approve", f"requisition/{req_id}", "failed", reason=why)
        return console.render(ctx, "error.html", 404, title="Not approved", message=why,
                              field="requisition", back=back)
    console.audit(ctx, "supply.approve", f"requisition/{req_id}", "ok")
    path = "/supply"
    with contextlib.suppress(ValueError):  # back to the day the approver was looking at
        path += f"?as_of={date.fromisoformat(ctx.value('as_of')).isoformat()}"
    return console.done(path, f"requisition {req_id} approved by {ctx.actor}: pending for "
                              "the ERP (the next `isthmus supply sync` sends it)")
