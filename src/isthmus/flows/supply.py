"""Supply chain flow (issue 8): consumption -> replenishment, receipt, three-way match -> AP.

* A `SupplyConsumed` (FHIR SupplyDelivery, usage CSV; an FT1 charge line whose code is a
  supply item, see `on_charge`) takes stock off its
  location and posts DR supply expense (the department's cost center) / CR inventory at
  the average cost. More than the hub knows is on hand: an `insufficient_stock` work item
  in queue `procurement`, nothing changes. When on-hand crosses the item's reorder point a
  requisition for (par - on hand - on order) is made; the cost center's budget is checked
  first and a breach holds it in a `budget_approval` work item (queue `procurement`),
  otherwise it waits as `pending` for the ERP connector (`connectors/erp_tryton_supply.py`).
* A `SupplyRequested` (FHIR SupplyRequest) makes a requisition for what a department asks,
  through the same budget check.
* A goods receipt against a purchase-order line posts DR inventory / CR GRNI.
* A supplier invoice line is three-way matched (order price, received quantity,
  `[supply]` tolerances). A match posts DR GRNI / CR AP with the price variance to its
  own account; a mismatch posts nothing and becomes an `invoice_mismatch` work item plus
  an `Unmatched` record that ages in the report until an invoice that matches arrives.
  Where the ERP owns AP (`[supply] ap_owner = "erp"`) the matched entry is split
  (`ledger.supply.split_erp_ap`): the AP part mirrors the invoice the ERP posts once the
  hub says it matched (`SyncReport.invoices`), and only the variance is exported.

Every operation is idempotent on its source id (usage id, receipt id, invoice id, request
id), and the state (`flows.supply_state`), journal entries, work items and applied ids all
go into the caller's store transaction: they commit or roll back together.

Issue 17: this module is the flow's service: for each operation it reads the facts
(`supply_rules.Facts`: the applied records, the state as saved), a pure decision decides
(flows/supply_usage.py: usages, voids, requests; flows/supply_orders.py: receipts and
invoice lines) and `flows.decision.apply` writes it: on the worker's path (usages, voids,
requests, FT1 supply lines) at the `now` the worker passes, on the CLI's and the API's
(receipts, invoices, approvals) at the flow clock's. Approving or rejecting a requisition,
the order lines and the ERP round stay here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from isthmus.config import Mappings
from isthmus.flows.clock import Clock
from isthmus.flows.decision import apply
from isthmus.flows.supply_orders import decide_invoice, decide_receipt
from isthmus.flows.supply_rules import Facts, SupplyRules
from isthmus.flows.supply_state import (
    STATE,
    Lineage,
    SupplyPolicy,
    SupplyState,
    SyncReport,
    load,
    session,
)
from isthmus.flows.supply_usage import decide_request, decide_usage, decide_void, usage_key
from isthmus.ledger.periods import FiscalCalendar
from isthmus.ledger.supply import OrderLine
from isthmus.model.envelope import Envelope
from isthmus.model.events import Charge, SupplyConsumed, SupplyRequested, SupplyUsageVoided
from isthmus.model.status import StatusEvent
from isthmus.ports.erp import ErpRejected, ErpUnavailable
from isthmus.ports.supply import InvoiceLine, ReceiptLine, Requisition
from isthmus.store.ports import Store, Tx


class SupplyFlow:
    """Applies the supply chain events: consumption, replenishment, receipt, three-way match."""

    # issue 18: InvoiceMatched to the routes, in the transaction that posts the match
    on_status: Callable[[Tx, Sequence[StatusEvent]], object] | None = None

    def __init__(
        self,
        store: Store,
        policy: SupplyPolicy,
        maps: Mappings,
        calendar: FiscalCalendar,
        *,
        clock: Clock,
    ) -> None:
        self.store = store  # for what no event's transaction carries: approvals, the ERP
        self.clock = clock  # the time its work items and status events carry
        self.policy = policy
        self.maps = maps
        self.calendar = calendar

    @property
    def rules(self) -> SupplyRules:
        """The policy, mappings and calendar the decisions read (as they are now)."""
        return SupplyRules(self.policy, self.maps, self.calendar)

    def _now(self, now: float | None) -> float:
        """The worker's `now` on its path; the flow clock's for the CLI and the API."""
        return self.clock.now() if now is None else now

    def snapshot(self) -> SupplyState:
        """The state as committed (for reports); changes to it are not saved."""
        with self.store.transaction() as tx:
            return load(tx, self.policy)

    # --- consumption -------------------------------------------------------------------

    def consume(self, tx: Tx, env: Envelope, ev: SupplyConsumed, now: float | None = None) -> str:
        """Apply one usage at `now` (the worker's; else the flow clock's): "posted",
        "duplicate" or "held" (a work item was opened)."""
        kept = tx.applied(usage_key(ev.usage_id))
        mapped = bool(self.maps.department_cost_center.get(ev.department))
        facts = Facts(kept, state=tx.load_state(STATE) if kept is None and mapped else None)
        return apply(tx, decide_usage(self.rules, env, ev, facts), self._now(now)).label

    def void(self, tx: Tx, env: Envelope, ev: SupplyUsageVoided, now: float | None = None) -> str:
        """A usage recorded in error (applied at `now`, as `consume`): the stock goes back
        at the value it was taken at and its entry is reversed ("posted"); voided before it
        arrived, the usage will take nothing ("posted" too); "duplicate" for a second void."""
        done = tx.applied(f"supply/void/{ev.usage_id}")
        kept = None if done is not None else tx.applied(usage_key(ev.usage_id))
        state = tx.load_state(STATE) if kept is not None else None
        facts = Facts(done, kept, state)
        return apply(tx, decide_void(self.rules, env, ev, facts), self._now(now)).label

    def on_charge(
        self, tx: Tx, env: Envelope, charge: Charge, now: float | None = None
    ) -> str | None:
        """An HL7 v2 DFT FT1 supply line: a charge (FT1-6 CG) whose code (FT1-7) is mapped
        to an item in `[supply.charge_items]` also takes FT1-10 units of that item off the
        stock of its department (FT1-13, as the location). Linked by FT1-2 (charge id),
        PID-18 and PV1-19, applied at `now` as `consume`. None when the code is not a supply
        item."""
        item = self.policy.charge_items.get(charge.charge_code)
        if item is None or charge.transaction_type != "CG" or charge.quantity <= 0:
            return None
        usage = SupplyConsumed(
            usage_id=f"ft1/{charge.account_number}/{charge.transaction_id}",
            item=item,
            location=charge.department,
            quantity=Decimal(charge.quantity),
            used_on=charge.service_date,
            department=charge.department,
            facility=charge.facility,
            account_number=charge.account_number,
            visit_number=charge.visit_number,
            charge_id=charge.transaction_id,
        )
        return self.consume(tx, env, usage, now)

    def request(self, tx: Tx, env: Envelope, ev: SupplyRequested, now: float | None = None) -> str:
        """A department's request for stock (applied at `now`, as `consume`): a
        requisition ("posted" when it waits for the ERP, "held" for a budget approval or an
        unknown cost center, "duplicate")."""
        done = tx.applied(f"supply/request/{ev.request_id}")
        rule = self.policy.par_levels.get(f"{ev.item}|{ev.location}")
        mapped = bool(
            self.maps.department_cost_center.get(ev.department) or (rule and rule.cost_center)
        )
        facts = Facts(done, state=tx.load_state(STATE) if done is None and mapped else None)
        return apply(tx, decide_request(self.rules, env, ev, facts), self._now(now)).label

    def approve(self, tx: Tx, req_id: str) -> bool:
        """A person approved a budget breach: the requisition goes to the ERP, and its
        work item is done."""
        with session(tx, self.policy) as state:
            for req in state.requisitions:
                if req.req_id == req_id and req.status == "approval":
                    req.status = "pending"
                    tx.close_work_items(req_id, "budget breach approved", self.clock.now())
                    return True
        return False

    def reject(self, tx: Tx, req_id: str, reason: str) -> bool:
        """A person refused a requisition still held for its budget or not yet sent: it
        will never go to the ERP, what it committed of the budget is released, and its
        work item is done. False when no such requisition can be refused."""
        with session(tx, self.policy) as state:
            for req in state.requisitions:
                if req.req_id == req_id and req.status in ("approval", "pending"):
                    req.status = "rejected"
                    tx.close_work_items(req_id, f"rejected: {reason}", self.clock.now())
                    return True
        return False

    # --- purchase orders, receipts, invoices ---------------------------------------------

    def open_order(self, tx: Tx, order: OrderLine) -> None:
        """A purchase-order line read from the ERP (owner of orders, items and vendors)."""
        with session(tx, self.policy) as state:
            state.book.open_order(order)

    def receive(
        self, tx: Tx, *, po: str, line: str, quantity: Decimal, received_on: date, lineage: Lineage
    ) -> str:
        """A goods receipt: "posted", "duplicate" or "held"."""
        r = ReceiptLine(lineage.source_id, po, line, quantity, received_on)
        done = tx.applied(f"supply/receipt/{lineage.source_id}")
        facts = Facts(done, state=tx.load_state(STATE) if done is None else None)
        decision = decide_receipt(self.rules, r, lineage.correlation_id, facts)
        return apply(tx, decision, self.clock.now()).label

    def invoice(
        self,
        tx: Tx,
        *,
        po: str,
        line: str,
        quantity: Decimal,
        unit_price: Decimal,
        currency: str,
        invoiced_on: date,
        lineage: Lineage,
        supplier: str = "",
    ) -> str:
        """A supplier invoice line: "posted", "duplicate" or "held" (mismatch)."""
        i = InvoiceLine(
            invoice_id=lineage.source_id,
            po=po,
            line=line,
            quantity=quantity,
            unit_price=unit_price,
            currency=currency,
            invoiced_on=invoiced_on,
            supplier=supplier,
        )
        done = tx.applied(f"supply/invoice/{lineage.source_id}")
        facts = Facts(done, state=tx.load_state(STATE) if done is None else None)
        decision = decide_invoice(self.rules, i, lineage.correlation_id, facts, self.on_status)
        return apply(tx, decision, self.clock.now()).label

    def sync(
        self,
        tx: Tx,
        *,
        orders: list[OrderLine],
        receipts: list[ReceiptLine],
        invoices: list[InvoiceLine],
    ) -> SyncReport:
        """Apply what the ERP holds: order lines, then receipts, then invoice lines.

        Idempotent: what was applied before counts as "duplicate"."""
        report = SyncReport()
        for order in orders:
            self.open_order(tx, order)
        for r in receipts:
            report.add(
                self.receive(
                    tx,
                    po=r.po,
                    line=r.line,
                    quantity=r.quantity,
                    received_on=r.received_on,
                    lineage=Lineage(r.receipt_id, f"erp/receipt/{r.receipt_id}"),
                )
            )
        for i in invoices:
            report.invoices[i.invoice_id] = report.add(
                self.invoice(
                    tx,
                    po=i.po,
                    line=i.line,
                    quantity=i.quantity,
                    unit_price=i.unit_price,
                    currency=i.currency,
                    invoiced_on=i.invoiced_on,
                    lineage=Lineage(i.invoice_id, f"erp/invoice/{i.invoice_id}"),
                    supplier=i.supplier,
                )
            )
        return report

    # --- requisitions for the ERP --------------------------------------------------------

    def push_requisitions(self, send: Callable[[Requisition], str]) -> dict[str, Any]:
        """Send each pending requisition to the ERP (`send` answers the ERP's id) and mark
        it sent. An unavailable ERP stops the round (the rest stay pending for the next);
        a refusal is reported and the requisition stays pending for a person to look at.
        A crash between the ERP's answer and the mark sends it again on the next round:
        the requisition's description carries its id for the buyer to spot the twin."""
        sent: list[str] = []
        refused: list[str] = []
        for req in self.pending_requisitions():
            try:
                erp_id = send(req)
            except ErpUnavailable as exc:
                return {"sent": sent, "refused": refused, "stopped": str(exc)}
            except ErpRejected as exc:
                refused.append(f"{req.req_id}: {exc}")
                continue
            self.mark_sent(req.req_id, erp_id)
            sent.append(req.req_id)
        return {"sent": sent, "refused": refused, "stopped": ""}

    def pending_requisitions(self) -> list[Requisition]:
        return [r for r in self.snapshot().requisitions if r.status == "pending"]

    def mark_sent(self, req_id: str, erp_id: str) -> None:
        with self.store.transaction() as tx, session(tx, self.policy) as state:
            for r in state.requisitions:
                if r.req_id == req_id:
                    r.status, r.erp_id = "sent", erp_id


__all__ = ["SupplyFlow"]
