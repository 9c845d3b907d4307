"""`isthmus supply report|margin|approve`: supply chain reports and the budget approval.

* `report [--as-of DATE] [--limit-days N]`: unmatched supplier invoices aged (exit 4 when
  one is older than the limit, `[supply] unmatched_limit_days`), stock-out risk (below par,
  with what is on order), open GRNI, requisitions (`recon.supply`).
* `margin`: revenue, supply cost and margin per service line and period from the journal.
* `approve REQ`: a procurement approver releases a requisition held for its budget;
  `reject REQ --reason TEXT` refuses one held or not yet sent (its budget is released).
* `sync`: pending requisitions to Tryton ([erp] kind "tryton"), then its purchase lines,
  receipts and supplier invoice lines back through the three-way match; then every Tryton
  invoice whose lines all matched is posted there (its AP posting). Exit 1 when Tryton
  cannot be reached (what was not sent stays pending; the next sync posts what matched).

The policy is the `[supply]` table of the config; the state is in the hub's store.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from isthmus.app import Hub
from isthmus.cli.commands import NotFound, Result, UsageError, _table
from isthmus.config import Settings
from isthmus.connectors.erp_tryton_supply import TrytonSupply
from isthmus.flows.labor_budget import service_line_cost
from isthmus.flows.supply import SupplyFlow
from isthmus.flows.supply_state import SupplyPolicy, policy_from_table
from isthmus.ports.erp import ErpRejected, ErpUnavailable
from isthmus.recon.supply import BUCKETS, service_line_margin, supply_report

COMMANDS = ("supply",)


def add_parsers(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add the `supply` command (report, margin, approve, reject, sync) to the parser."""
    s = add("supply", "supply chain: unmatched invoices, stock-out risk, margin, approvals")
    s.add_argument("action", choices=["report", "margin", "approve", "reject", "sync"])
    s.add_argument("id", nargs="?", help="approve, reject: the requisition id")
    s.add_argument("--reason", help="reject: why (kept on its work item)")
    s.add_argument("--as-of", help="report: YYYY-MM-DD (default today, UTC)")
    s.add_argument("--limit-days", type=int, help="report: age limit of unmatched invoices")


def policy_of(settings: Settings) -> tuple[SupplyPolicy, int]:
    """The [supply] table of the config in use (defaults without one); a SupplyConfigError
    (exit 2) when it is wrong."""
    return policy_from_table(settings.supply)


def dispatch(hub: Hub, args: argparse.Namespace) -> Result:
    """`isthmus supply report|margin|approve|reject|sync` on the hub's supply flow."""
    policy, limit = policy_of(hub.settings)
    flow = hub.processor.supply
    if flow is None:
        raise UsageError("this hub has no supply flow")
    if args.action == "report":
        try:
            as_of = date.fromisoformat(args.as_of) if args.as_of else datetime.now(UTC).date()
        except ValueError as exc:
            raise UsageError(f"--as-of must be YYYY-MM-DD, got {args.as_of!r}") from exc
        if args.limit_days is not None:
            if args.limit_days < 0:
                raise UsageError("--limit-days must be 0 or more")
            limit = args.limit_days
        d = supply_report(flow.snapshot(), policy, as_of=as_of, limit_days=limit)
        return d, render, 4 if d["unmatched"]["over_limit"] else 0
    if args.action == "margin":
        revenue = {m.revenue_account for m in hub.settings.mappings.charge_codes.values()}
        rows = service_line_margin(
            hub.store.entries(),
            revenue_accounts=revenue,
            supply_expense_account=policy.accounts.supply_expense,
            labor_cost=service_line_cost(hub.store, hub.settings.labor),
        )
        return rows, render_margin, 0
    if args.action == "sync":
        return _sync(hub, flow, policy)
    if not args.id:
        raise UsageError(f"supply {args.action} needs the requisition id")
    if args.action == "reject":
        if not (args.reason or "").strip():
            raise UsageError("supply reject needs --reason")
        with hub.store.transaction() as tx:
            rejected = flow.reject(tx, args.id, args.reason.strip())
        if not rejected:
            raise NotFound(f"no requisition {args.id} waits for approval or for the ERP")
        return {"rejected": args.id}, lambda d: f"requisition {d['rejected']} rejected", 0
    with hub.store.transaction() as tx:
        approved = flow.approve(tx, args.id)
    if not approved:
        raise NotFound(f"no requisition {args.id} waits for approval")
    return {"approved": args.id}, lambda d: f"requisition {d['approved']} approved", 0


def _sync(hub: Hub, flow: SupplyFlow, policy: SupplyPolicy) -> Result:
    """Pending requisitions to Tryton; its orders, receipts and supplier invoices back. An
    ERP that stops answering midway is a partial result (exit 1), not a refusal: the report
    says what was pushed and applied before it stopped."""
    erp = TrytonSupply.from_settings(
        hub.settings.erp, company=policy.company, locations=policy.locations
    )
    try:
        pushed = flow.push_requisitions(erp.push_requisition)
        try:
            orders, receipts, invoices = erp.pull()
        except (ErpUnavailable, ErpRejected) as exc:
            d = {**pushed, "stopped": str(exc), "applied": {}}
            return d, _render_sync, 1
        with hub.store.transaction() as tx:
            report = flow.sync(tx, orders=orders, receipts=receipts, invoices=invoices)
        try:  # after the commit: a crash before this posts them on the next sync
            posted = erp.post_matched(invoices, report.invoices)
        except (ErpUnavailable, ErpRejected) as exc:
            d = {
                **pushed,
                "stopped": str(exc),
                "orders": len(orders),
                "applied": report.counts,
                "posted_in_erp": [],
            }
            return d, _render_sync, 1
    finally:
        erp.close()
    d = {**pushed, "orders": len(orders), "applied": report.counts, "posted_in_erp": posted}
    return d, _render_sync, 1 if pushed["stopped"] else 0


def _render_sync(d: dict[str, Any]) -> str:
    out = [f"requisitions sent: {len(d['sent'])}"]
    out += [f"  refused {r}" for r in d["refused"]]
    if d["stopped"]:
        out.append(f"stopped: {d['stopped']}")
    out.append(
        "receipts and invoices: "
        + (", ".join(f"{k} {v}" for k, v in sorted(d["applied"].items())) or "nothing new")
    )
    if d.get("posted_in_erp"):
        out.append("invoices posted in the ERP: " + ", ".join(d["posted_in_erp"]))
    return "\n".join(out)


def render(d: dict[str, Any]) -> str:
    """The supply report as text: unmatched supplier invoices and their aging, items below
    par, open GRNI (received, not invoiced), and the requisitions."""
    u = d["unmatched"]
    out = [
        f"supply as of {d['as_of']} (unmatched limit {d['limit_days']} days)",
        "",
        f"unmatched supplier invoices: {len(u['items'])}",
    ]
    if u["items"]:
        out.append(
            _table(
                [
                    [
                        x["invoice"],
                        f"{x['po']}/{x['line']}",
                        x["amount"],
                        x["invoiced_on"],
                        x["age_days"],
                        x["bucket"],
                        "; ".join(x["findings"]),
                    ]
                    for x in u["items"]
                ],
                ["invoice", "po/line", "amount", "date", "age", "bucket", "why"],
            )
        )
        out.append(
            _table(
                [[b, u["aging"][b]["count"], u["aging"][b]["total"]] for b, _, _ in BUCKETS],
                ["age (days)", "count", "total"],
            )
        )
    risk = d["stock_out_risk"]
    out += ["", f"below par: {len(risk)}"]
    if risk:
        out.append(
            _table(
                [
                    [
                        x["item"],
                        x["location"],
                        x["on_hand"],
                        x["par"],
                        x["reorder_point"],
                        x["on_order"],
                        ",".join(x["open_pos"]) or "-",
                        "AT RISK" if x["at_risk"] else "",
                    ]
                    for x in risk
                ],
                ["item", "location", "on hand", "par", "reorder", "on order", "open POs", ""],
            )
        )
    out += ["", f"open GRNI: {d['open_grni_total']}"]
    if d["open_grni"]:
        out.append(
            _table(
                [
                    [x["po"], x["line"], x["item"], x["uninvoiced"], x["open_value"]]
                    for x in d["open_grni"]
                ],
                ["po", "line", "item", "uninvoiced", "value"],
            )
        )
    reqs = d["requisitions"]
    out += ["", f"requisitions: {len(reqs)}"]
    if reqs:
        out.append(
            _table(
                [
                    [
                        r["req_id"],
                        r["item"],
                        r["location"],
                        r["quantity"],
                        r["cost_center"],
                        r["amount"],
                        r["status"],
                        r["erp_id"] or "-",
                    ]
                    for r in reqs
                ],
                ["id", "item", "location", "qty", "cost center", "amount", "status", "ERP"],
            )
        )
    return "\n".join(out)


def render_margin(rows: list[dict[str, Any]]) -> str:
    """The margin per service line and period as text: revenue, supply, labor, margin."""
    if not rows:
        return "no revenue or supply cost posted"
    return _table(
        [
            [r["service_line"], r["period"], r["revenue"], r["supply"], r["labor"], r["margin"]]
            for r in rows
        ],
        ["service line", "period", "revenue", "supply", "labor", "margin"],
    )
