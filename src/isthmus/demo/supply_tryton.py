"""The demo's supply day through a real Tryton (`isthmus demo --erp tryton`, issue 8).

`supply_day` is the day without an ERP, from hard-coded order, receipt and invoice records.
Here the same day runs through the procurement database of `erp_tryton_procure`, with Tryton
owning AP (`[supply] ap_owner = "erp"`) and its warehouse WH mapped to the OR's stock
location. The hub does what `isthmus supply sync` does (requisitions out, orders, receipts
and invoices in, matched invoices posted in Tryton); the demo also plays the buyer in
Tryton, which at a hospital is a person's job, and says so:

1. `opening_stock`: the buyer orders 10 stents and 40 sutures from SUP-MEDLINE, confirms the
   purchase and receives it; the hub syncs the receipts (DR inventory / CR GRNI). Its
   invoice is not in yet (open GRNI).
2. The OR's usage goes through the hub's inbox (`cli/demo.py`) and crosses both reorder
   points: two requisitions.
3. `procure`: the hub sends them to Tryton; the buyer approves each, makes its purchase,
   confirms it and receives the goods; the supplier bills each purchase, the stents at
   the order price and the sutures at 6.90 (beyond the 2 % tolerance). The hub syncs: the
   stent invoice matches and the hub posts it in Tryton (DR GRNI 2050 / CR AP 2000); the
   suture invoice is held (an `invoice_mismatch` work item) and stays validated, unposted.

Tryton dates its purchases, receipts and these invoices today (the current period); the
OR's usage keeps the demo day's date, beside the revenue it earns, so the margin of a
service line and period holds both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from isthmus.config import ErpSettings
from isthmus.connectors import erp_tryton_buyer as buyer
from isthmus.connectors import erp_tryton_procure as procurement
from isthmus.connectors.erp_rpc import TrytonRpc
from isthmus.connectors.erp_tryton_supply import POSTABLE, TrytonSupply
from isthmus.flows.supply import SupplyFlow
from isthmus.flows.supply_state import SyncReport

OPENING: Final = {"STENT-01": Decimal(10), "SUTURE-3": Decimal(40)}
BILLED: Final = {"SUTURE-3": Decimal("6.90")}  # what the supplier bills off the order price


def policy(base: Mapping[str, Any], location: str) -> dict[str, Any]:
    """The demo's `[supply]` table with AP owned by Tryton and its warehouse WH mapped to
    the hub's stock location `location`."""
    return {**base, "ap_owner": "erp", "locations": {procurement.WAREHOUSE: location}}


class TrytonSupplyDay:
    """The hub's supply flow and the demo's Tryton, one step of the day a method."""

    def __init__(
        self, flow: SupplyFlow, rpc: TrytonRpc, say: Callable[[str], None] = lambda _m: None
    ) -> None:
        self.flow, self.rpc, self.say = flow, rpc, say
        self.erp = TrytonSupply(rpc, company=flow.policy.company, locations=flow.policy.locations)

    @classmethod
    def open(
        cls, erp: ErpSettings, flow: SupplyFlow, say: Callable[[str], None] = lambda _m: None
    ) -> TrytonSupplyDay:
        """A session on the [erp] Tryton (its password from the file)."""
        password = erp.password_file.read_text().strip() if erp.password_file else ""
        return cls(
            flow, TrytonRpc(erp.url, erp.database, erp.user, password, timeout_s=erp.timeout_s), say
        )

    def close(self) -> None:
        self.rpc.close()

    def sync(self) -> tuple[SyncReport, list[str]]:
        """What `isthmus supply sync` does after the requisitions: pull, apply in one
        transaction, then post in Tryton each invoice whose lines all matched."""
        orders, receipts, invoices = self.erp.pull()
        with self.flow.store.transaction() as tx:
            report = self.flow.sync(tx, orders=orders, receipts=receipts, invoices=invoices)
        return report, self.erp.post_matched(invoices, report.invoices)

    def opening_stock(self) -> str:
        """The buyer's opening purchase, confirmed and received; the hub syncs it. Its
        number."""
        po = buyer.create_purchase(self.rpc, dict(OPENING))
        [number] = buyer.confirm_purchases(self.rpc, [po])
        buyer.receive(self.rpc, po)
        report, _ = self.sync()
        self.say(
            f"in Tryton, the buyer orders opening stock ({_items(OPENING)}) from "
            f"{procurement.SUPPLIER} as purchase {number} and receives it; the hub syncs "
            f"{report.counts.get('posted', 0)} receipt(s) to inventory"
        )
        return number

    def procure(self) -> dict[str, Any]:
        """Requisitions to Tryton; the buyer's approval, purchase and receipt of each; the
        supplier's invoices; the hub's sync (matched posted in Tryton, mismatch held)."""
        pushed = self.flow.push_requisitions(self.erp.push_requisition)
        if pushed["stopped"] or pushed["refused"]:
            raise RuntimeError(f"requisitions not sent to Tryton: {pushed}")
        sent = [r for r in self.flow.snapshot().requisitions if r.req_id in pushed["sent"]]
        numbers = {
            str(r["id"]): str(r["number"])
            for r in self.rpc.model(
                "purchase.requisition", "read", [int(r.erp_id) for r in sent], ["number"]
            )
        }
        self.say(
            f"the hub sends {len(sent)} requisition(s) to Tryton: "
            + ", ".join(
                f"{numbers[r.erp_id]} ({_qty(r.quantity)} x {r.item}, {r.req_id})" for r in sent
            )
        )
        reqs, purchases = [], {}
        for r in sent:
            [po] = buyer.create_purchases(
                self.rpc, buyer.approve_requisitions(self.rpc, [int(r.erp_id)])
            )
            [number] = buyer.confirm_purchases(self.rpc, [po])
            buyer.receive(self.rpc, po)
            self.say(
                f"in Tryton, the buyer approves requisition {numbers[r.erp_id]}, turns "
                f"its purchase request into purchase {number}, confirms it and "
                f"receives {_qty(r.quantity)} x {r.item}"
            )
            reqs.append(
                {
                    "req_id": r.req_id,
                    "item": r.item,
                    "quantity": _qty(r.quantity),
                    "tryton_id": r.erp_id,
                    "number": numbers[r.erp_id],
                    "purchase": number,
                }
            )
            purchases[po] = (number, r.item)
        receipts, _ = self.sync()
        self.say(f"the hub syncs {receipts.counts.get('posted', 0)} receipt(s)")
        today = datetime.now(UTC).date()
        made = {
            buyer.supplier_invoice(
                self.rpc,
                po,
                on=today,
                reference=f"MED-{number}",
                prices={item: BILLED[item]} if item in BILLED else None,
            ): (number, item)
            for po, (number, item) in purchases.items()
        }
        report, posted = self.sync()
        return {
            "requisitions": reqs,
            "invoices": self._invoices(made, report, posted),
            "invoice_lines": _count(report.invoices.values()),
        }

    def _invoices(
        self, made: dict[int, tuple[str, str]], report: SyncReport, posted: list[str]
    ) -> list[dict[str, Any]]:
        rows = self.rpc.model(
            "account.invoice", "read", list(made), ["number", "reference", "state", "total_amount"]
        )
        out = []
        for r in rows:
            number, item = made[int(r["id"])]
            lines = [o for k, o in report.invoices.items() if k.split("/")[1] == str(r["id"])]
            matched = bool(lines) and all(o in POSTABLE for o in lines)
            out.append(
                {
                    "id": str(r["id"]),
                    "number": str(r["number"]),
                    "reference": str(r["reference"]),
                    "purchase": number,
                    "item": item,
                    "amount": str(r["total_amount"]),
                    "hub": "matched" if matched else "held",
                    "state": str(r["state"]),
                    "posted_by_hub": str(r["id"]) in posted,
                }
            )
            self.say(
                f"the supplier bills purchase {number} ({item}): invoice {r['number']} "
                + (
                    "matched: the hub posts it in Tryton"
                    if matched
                    else "beyond tolerance: held by the hub, left unposted in Tryton"
                )
                + f" ({r['state']})"
            )
        return out


def _qty(quantity: Decimal) -> str:
    """6.0 (Tryton's float, through the hub's stock) -> "6"."""
    return f"{quantity.normalize():f}"


def _items(lines: Mapping[str, Decimal]) -> str:
    return ", ".join(f"{_qty(q)} x {item}" for item, q in lines.items())


def _count(outcomes: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for o in outcomes:
        out[o] = out.get(o, 0) + 1
    return out
