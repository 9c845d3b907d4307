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
id), and the state (`flows.supply_state.session`), journal entries, work items and applied
ids all go into the caller's store transaction: they commit or roll back together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import msgspec

from isthmus.config import Mappings
from isthmus.flows.clock import Clock
from isthmus.flows.status_events import invoice_matched
from isthmus.flows.supply_state import (
    Lineage,
    SupplyPolicy,
    SupplyState,
    SyncReport,
    Taken,
    Unmatched,
    load,
    session,
)
from isthmus.formats.hl7v2.code_display import shown
from isthmus.ledger.currency import quantize
from isthmus.ledger.errors import LedgerRefusal
from isthmus.ledger.journal import Posting, reverse
from isthmus.ledger.periods import FiscalCalendar
from isthmus.ledger.supply import OrderLine, split_erp_ap
from isthmus.ledger.supply_match import (
    crossed_reorder_point,
    reorder_quantity,
    three_way_match,
    within_budget,
)
from isthmus.model.envelope import Envelope, encode_envelope
from isthmus.model.events import Charge, SupplyConsumed, SupplyRequested, SupplyUsageVoided
from isthmus.model.status import StatusEvent
from isthmus.ports.erp import ErpRejected, ErpUnavailable
from isthmus.ports.supply import InvoiceLine, ReceiptLine, Requisition
from isthmus.store.ports import Store, Tx

QUEUE = "procurement"
VOIDED = b"voided"  # a usage's applied record once it was voided before it arrived
CHANNEL = "supply"


_taken_enc = msgspec.json.Encoder(decimal_format="string")
_taken_dec = msgspec.json.Decoder(Taken)


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

    def _posting(
        self, key: str, when: date, memo: str, correlation_id: str, causation_id: str
    ) -> Posting:
        where = self.calendar.assign(when)
        return Posting(
            entry_key=key,
            posted_on=where.posted_on,
            period=where.period,
            channel=CHANNEL,
            memo=memo,
            correlation_id=correlation_id,
            causation_id=causation_id,
            moved_from=where.moved_from,
        )

    def _hold(
        self,
        tx: Tx,
        kind: str,
        key: str,
        event_id: str,
        correlation_id: str,
        detail: str,
        envelope: bytes = b"",
    ) -> None:
        tx.add_work_item(
            kind=kind,
            queue=QUEUE,
            key=key,
            event_id=event_id,
            correlation_id=correlation_id,
            detail=detail,
            envelope=envelope,
            now=self.clock.now(),
        )

    def snapshot(self) -> SupplyState:
        """The state as committed (for reports); changes to it are not saved."""
        with self.store.transaction() as tx:
            return load(tx, self.policy)

    # --- consumption -------------------------------------------------------------------

    def consume(self, tx: Tx, env: Envelope, ev: SupplyConsumed) -> str:
        """Apply one usage: "posted", "duplicate" or "held" (a work item was opened)."""
        applied_id = f"supply/usage/{ev.usage_id}"
        kept = tx.applied(applied_id)
        if kept is not None:
            return self._again(tx, env, ev, kept)
        company = self.maps.facility_company.get(ev.facility, self.policy.company)
        cost_center = self.maps.department_cost_center.get(ev.department, "")
        if not cost_center:
            self._hold(
                tx,
                "unmapped_department",
                env.key,
                env.event_id,
                env.correlation_id,
                f"department {shown('department_cost_center', ev.department)!r} has no cost center",
                encode_envelope(env),
            )
            return "held"
        with session(tx, self.policy) as state:
            before = state.book.quantity(ev.item, ev.location)
            try:
                entry = state.book.consume(
                    ev.item,
                    ev.location,
                    ev.quantity,
                    company=company,
                    cost_center=cost_center,
                    service_line=self.policy.service_lines.get(ev.department, ev.department),
                    posting=self._posting(
                        applied_id,
                        ev.used_on,
                        f"usage {ev.usage_id} item {ev.item}",
                        env.correlation_id,
                        env.event_id,
                    ),
                )
            except LedgerRefusal as exc:
                self._hold(
                    tx,
                    "insufficient_stock",
                    env.key,
                    env.event_id,
                    env.correlation_id,
                    str(exc),
                    encode_envelope(env),
                )
                return "held"
            if entry is not None:
                tx.insert_entry(entry)
            value = sum((ln.credit for ln in entry.lines), Decimal(0)) if entry else Decimal(0)
            tx.mark_applied(
                applied_id,
                _taken_enc.encode(Taken(ev.item, ev.location, ev.quantity, value, entry)),
            )
            self._replenish(
                tx, state, ev.item, ev.location, before, ev.used_on, ev.usage_id, env.correlation_id
            )
        if env.payload is ev:  # not when a charge's FT1 line brought it (on_charge)
            tx.close_work_items(env.event_id, "posted after the fix", self.clock.now())
        return "posted"

    def _again(self, tx: Tx, env: Envelope, ev: SupplyConsumed, kept: bytes) -> str:
        """A usage id seen before: "duplicate", or "held" when this version says otherwise
        than the one applied (a person corrects it: void the usage, send it again under a
        new id)."""
        if kept == VOIDED:
            return "duplicate"  # voided before it came: it takes nothing
        was = _taken_dec.decode(kept)
        if (was.item, was.location, was.quantity) != (ev.item, ev.location, ev.quantity):
            self._hold(
                tx,
                "usage_changed",
                env.key,
                env.event_id,
                env.correlation_id,
                f"usage {ev.usage_id} was applied as {was.quantity} x {was.item} at "
                f"{was.location}; this version says {ev.quantity} x {ev.item} at "
                f"{ev.location}: void it and send the correction under a new id",
                encode_envelope(env),
            )
            return "held"
        return "duplicate"

    def void(self, tx: Tx, env: Envelope, ev: SupplyUsageVoided) -> str:
        """A usage recorded in error: the stock goes back at the value it was taken at and
        its entry is reversed ("posted"); voided before it arrived, the usage will take
        nothing ("posted" too); "duplicate" for a second void."""
        void_id = f"supply/void/{ev.usage_id}"
        if tx.applied(void_id) is not None:
            return "duplicate"
        applied_id = f"supply/usage/{ev.usage_id}"
        kept = tx.applied(applied_id)
        tx.mark_applied(void_id, b"")
        if kept is None:
            tx.mark_applied(applied_id, VOIDED)
            return "posted"
        was = _taken_dec.decode(kept)
        with session(tx, self.policy) as state:
            state.book.restock(was.item, was.location, was.quantity, was.value)
        if was.entry is not None:
            where = self.calendar.assign(ev.voided_on)
            tx.insert_entry(
                reverse(
                    was.entry,
                    entry_key=f"{was.entry.entry_key}/void",
                    posted_on=where.posted_on,
                    period=where.period,
                    causation_id=env.event_id,
                )
            )
        return "posted"

    def on_charge(self, tx: Tx, env: Envelope, charge: Charge) -> str | None:
        """An HL7 v2 DFT FT1 supply line: a charge (FT1-6 CG) whose code (FT1-7) is mapped
        to an item in `[supply.charge_items]` also takes FT1-10 units of that item off the
        stock of its department (FT1-13, as the location). Linked by FT1-2 (charge id),
        PID-18 and PV1-19. None when the code is not a supply item."""
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
        return self.consume(tx, env, usage)

    def _replenish(
        self,
        tx: Tx,
        state: SupplyState,
        item: str,
        location: str,
        before: Decimal,
        on: date,
        source: str,
        correlation_id: str,
    ) -> None:
        rule = self.policy.par_levels.get(f"{item}|{location}")
        after = state.book.quantity(item, location)
        if rule is None or not crossed_reorder_point(before, after, rule.reorder_point):
            return
        qty = reorder_quantity(rule.par, after, state.on_order(item, location))
        if qty > 0:
            self._requisition(
                tx,
                state,
                f"REQ-{item}-{location}-{source}",
                item,
                location,
                qty,
                rule.cost_center,
                rule.unit_price,
                on,
                correlation_id,
            )

    def _requisition(
        self,
        tx: Tx,
        state: SupplyState,
        req_id: str,
        item: str,
        location: str,
        qty: Decimal,
        cost_center: str,
        unit_price: Decimal,
        on: date,
        correlation_id: str,
    ) -> str:
        """A requisition, budget-checked: "posted" (pending for the ERP) or "held"."""
        amount = quantize(qty * unit_price, self.policy.currency)
        req = Requisition(
            req_id=req_id,
            item=item,
            location=location,
            quantity=qty,
            cost_center=cost_center,
            amount=amount,
            created_on=on,
        )
        committed = state.committed(cost_center)
        state.requisitions.append(req)
        if within_budget(
            budget=self.policy.budgets.get(cost_center), committed=committed, amount=amount
        ):
            return "posted"
        req.status = "approval"
        self._hold(
            tx,
            "budget_approval",
            cost_center,
            req_id,
            correlation_id,
            f"requisition {req_id} for {qty} x {item} ({amount} "
            f"{self.policy.currency}) exceeds the budget of cost center "
            f"{cost_center} ({committed} committed)",
        )
        return "held"

    def request(self, tx: Tx, env: Envelope, ev: SupplyRequested) -> str:
        """A department's request for stock: a requisition ("posted" when it waits for the
        ERP, "held" for a budget approval or an unknown cost center, "duplicate")."""
        applied_id = f"supply/request/{ev.request_id}"
        if tx.applied(applied_id) is not None:
            return "duplicate"
        rule = self.policy.par_levels.get(f"{ev.item}|{ev.location}")
        cost_center = self.maps.department_cost_center.get(ev.department, "") or (
            rule.cost_center if rule else ""
        )
        if not cost_center:
            self._hold(
                tx,
                "unmapped_department",
                env.key,
                env.event_id,
                env.correlation_id,
                f"request {ev.request_id}: neither department "
                f"{shown('department_cost_center', ev.department)!r} nor "
                f"{ev.item}|{ev.location} names a cost center",
                encode_envelope(env),
            )
            return "held"
        with session(tx, self.policy) as state:
            tx.mark_applied(applied_id, b"")
            got = self._requisition(
                tx,
                state,
                f"REQ-{ev.request_id}",
                ev.item,
                ev.location,
                ev.quantity,
                cost_center,
                rule.unit_price if rule else Decimal(0),
                ev.requested_on,
                env.correlation_id,
            )
        tx.close_work_items(env.event_id, "requested after the fix", self.clock.now())
        return got

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
        applied_id = f"supply/receipt/{lineage.source_id}"
        if tx.applied(applied_id) is not None:
            return "duplicate"
        with session(tx, self.policy) as state:
            try:
                entry = state.book.receive(
                    po,
                    line,
                    quantity,
                    self._posting(
                        applied_id,
                        received_on,
                        f"receipt {lineage.source_id} {po}/{line}",
                        lineage.correlation_id,
                        applied_id,
                    ),
                )
            except LedgerRefusal as exc:
                self._hold(
                    tx,
                    "receipt_refused",
                    f"{po}/{line}",
                    applied_id,
                    lineage.correlation_id,
                    str(exc),
                )
                return "held"
            tx.insert_entry(entry)
            tx.mark_applied(applied_id, b"")
            return "posted"

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
        applied_id = f"supply/invoice/{lineage.source_id}"
        if tx.applied(applied_id) is not None:
            return "duplicate"
        with session(tx, self.policy) as state:
            g = state.book.grni.get((po, line))
            if g is None:
                findings = [f"order line {po}/{line} is not known"]
            else:
                findings = [
                    f"{f.field}: {f.detail}"
                    for f in three_way_match(
                        ordered_qty=g.order.quantity,
                        order_price=g.order.unit_price,
                        order_currency=g.order.currency,
                        uninvoiced_qty=g.uninvoiced,
                        invoice_qty=quantity,
                        invoice_price=unit_price,
                        invoice_currency=currency,
                        tolerance=self.policy.tolerance,
                    )
                ]
            entry = None
            if not findings:
                try:
                    entry = state.book.invoice(
                        po,
                        line,
                        quantity,
                        unit_price,
                        self._posting(
                            applied_id,
                            invoiced_on,
                            f"invoice {lineage.source_id} {po}/{line}",
                            lineage.correlation_id,
                            applied_id,
                        ),
                    )
                except LedgerRefusal as exc:
                    findings = [str(exc)]
            if entry is None:
                if not any(u.invoice_id == lineage.source_id for u in state.unmatched):
                    state.unmatched.append(
                        Unmatched(
                            invoice_id=lineage.source_id,
                            po=po,
                            line=line,
                            quantity=quantity,
                            unit_price=unit_price,
                            invoiced_on=invoiced_on,
                            findings=findings,
                        )
                    )
                    self._hold(
                        tx,
                        "invoice_mismatch",
                        f"{po}/{line}",
                        applied_id,
                        lineage.correlation_id,
                        "; ".join(findings),
                    )
                return "held"
            if self.policy.ap_owner == "erp":
                mirror, variance = split_erp_ap(entry, state.book.accounts)
                tx.insert_entry(mirror)
                if variance is not None:
                    tx.insert_entry(variance)
            else:
                tx.insert_entry(entry)
            tx.mark_applied(applied_id, b"")
            if self.on_status is not None and g is not None:
                self.on_status(
                    tx,
                    [
                        invoice_matched(
                            invoice_id=lineage.source_id,
                            po=po,
                            line=line,
                            supplier=supplier,
                            quantity=quantity,
                            unit_price=unit_price,
                            order_price=g.order.unit_price,
                            currency=currency,
                            invoiced_on=invoiced_on,
                            channel=CHANNEL,
                            at=self.clock.now(),
                        )
                    ],
                )
            for u in state.unmatched:
                if u.invoice_id == lineage.source_id and u.status == "open":
                    u.status = "resolved"
                    tx.close_work_items(
                        applied_id, "matched after the receipt or fix", self.clock.now()
                    )
            return "posted"

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
