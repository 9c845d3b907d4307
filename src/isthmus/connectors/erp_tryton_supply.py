"""Tryton's procurement side over JSON-RPC (issue 8): requisitions out; orders, receipts and
supplier invoices in.

The ERP owns the item master (`product.product`), the vendor master (`party.party`),
purchase orders, receipts and invoices; the hub reads them and never writes them. What it
writes is a `purchase.requisition` (Tryton module purchase_requisition) for a
replenishment, moved to `waiting` (the `wait` button); Tryton's own approval turns it into
purchase requests (purchase_request) and those into a purchase order.

Read back, as the supply flow's plain records (`flows.supply`):

* order lines: `purchase.line` of purchases in state confirmed, processing or done;
* receipts: `stock.move` in state done whose origin is a `purchase.line`;
* supplier invoice lines: `account.invoice.line` of posted or paid supplier invoices
  (`invoice.type` in) whose origin is a `purchase.line`.

Dotted field names (`purchase.number`) are read in one `search_read` per model. Locations
and items are the ERP's codes (`product.code`, `warehouse.code`); `locations` maps a
Tryton location code to the hub's stock location where they differ.

Field names follow trytond 7/8 modules purchase, stock, account_invoice and
purchase_requisition. Not yet run against a live Tryton with those modules (see README).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from isthmus.config import ConfigError, ErpSettings
from isthmus.connectors.erp_rpc import TrytonRpc
from isthmus.flows.export import ErpRejected
from isthmus.flows.supply import InvoiceLine, ReceiptLine
from isthmus.flows.supply_state import Requisition
from isthmus.ledger.supply import OrderLine


class Rpc(Protocol):
    def model(self, model: str, method: str, *args: Any,
              context: dict[str, Any] | None = None) -> Any: ...


def _origin_id(origin: Any) -> str:
    """'purchase.line,42' -> '42' (Tryton Reference field)."""
    text = str(origin or "")
    return text.split(",", 1)[1] if text.startswith("purchase.line,") else ""


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


class TrytonSupply:
    def __init__(self, rpc: Rpc, *, company: str, locations: Mapping[str, str] | None = None,
                 ) -> None:
        self.rpc = rpc
        self.company = company
        self.locations = dict(locations or {})

    def _where(self, code: str) -> str:
        return self.locations.get(code, code)

    @classmethod
    def from_settings(cls, erp: ErpSettings, *, company: str) -> TrytonSupply:
        """A session on the [erp] Tryton (kind "tryton"; the password from its file)."""
        if erp.kind != "tryton":
            raise ConfigError("supply sync needs [erp] kind = \"tryton\"")
        try:
            password = erp.password_file.read_text().strip() if erp.password_file else ""
        except OSError as exc:
            raise ConfigError(f"erp.password_file {erp.password_file}: {exc.strerror}") \
                from exc
        return cls(TrytonRpc(erp.url, erp.database, erp.user, password,
                             timeout_s=erp.timeout_s), company=company)

    def close(self) -> None:
        close = getattr(self.rpc, "close", None)
        if callable(close):
            close()

    def _first(self, model: str, domain: list[Any], fields: list[str]) -> dict[str, Any]:
        rows = self.rpc.model(model, "search_read", domain, 0, 1, None, fields)
        if not rows:
            raise ErpRejected(f"Tryton has no {model} matching {domain}: set it up in the ERP")
        return dict(rows[0])

    def push_requisition(self, req: Requisition) -> str:
        """Create `req` in Tryton: the product by its code (with its purchase unit), the
        first warehouse, the first employee and the company's currency, all read."""
        product = self._first("product.product", [("code", "=", req.item)],
                              ["id", "purchase_uom", "default_uom"])
        unit = product.get("purchase_uom") or product.get("default_uom")
        warehouse = self._first("stock.location", [("type", "=", "warehouse")], ["id"])
        employee = self._first("company.employee", [], ["id", "company"])
        company = self._first("company.company", [("id", "=", employee["company"])],
                              ["id", "currency"])
        return self.create_requisition(req, employee=int(employee["id"]),
                                       warehouse=int(warehouse["id"]),
                                       product=int(product["id"]), unit=int(unit or 0),
                                       currency=int(company["currency"]))

    def pull(self) -> tuple[list[OrderLine], list[ReceiptLine], list[InvoiceLine]]:
        """Order lines, receipts and supplier invoice lines, as the supply flow takes them."""
        orders = self.order_lines()
        numbers = {o.line: o.po for o in orders}
        return orders, self.receipts(numbers), self.invoice_lines(numbers)

    def product_ids(self, codes: list[str]) -> dict[str, int]:
        """Item number -> Tryton product id (read only)."""
        rows = self.rpc.model("product.product", "search_read", [("code", "in", codes)],
                              0, None, None, ["id", "code"])
        return {str(r["code"]): int(r["id"]) for r in rows}

    def create_requisition(self, req: Requisition, *, employee: int, warehouse: int,
                           product: int, unit: int, currency: int) -> str:
        """A draft requisition with one line, moved to waiting; its Tryton id."""
        [rid] = self.rpc.model("purchase.requisition", "create", [{
            "description": req.req_id, "employee": employee, "warehouse": warehouse,
            "supply_date": req.created_on, "currency": currency,
            "lines": [["create", [{"product": product, "quantity": float(req.quantity),
                                   "unit": unit, "unit_price": req.amount / req.quantity
                                   if req.quantity else Decimal(0)}]]]}])
        self.rpc.model("purchase.requisition", "wait", [rid])
        return str(rid)

    def order_lines(self) -> list[OrderLine]:
        rows = self.rpc.model(
            "purchase.line", "search_read",
            [("purchase.state", "in", ["confirmed", "processing", "done"]),
             ("type", "=", "line")], 0, None, None,
            ["id", "quantity", "unit_price", "product.code", "purchase.number",
             "purchase.currency.code", "purchase.warehouse.code"])
        return [OrderLine(po=str(r["purchase."]["number"]), line=str(r["id"]),
                          item=str(r["product."]["code"]),
                          location=self._where(str(r["purchase."]["warehouse."]["code"])),
                          quantity=Decimal(str(r["quantity"])),
                          unit_price=Decimal(str(r["unit_price"])),
                          currency=str(r["purchase."]["currency."]["code"]),
                          company=self.company) for r in rows]

    def receipts(self, po_numbers: Mapping[str, str]) -> list[ReceiptLine]:
        """Done moves from purchase lines; `po_numbers` maps a line id to its order."""
        rows = self.rpc.model(
            "stock.move", "search_read",
            [("state", "=", "done"), ("origin", "like", "purchase.line,%")], 0, None, None,
            ["id", "origin", "quantity", "effective_date"])
        out = []
        for r in rows:
            line = _origin_id(r["origin"])
            if line in po_numbers:
                out.append(ReceiptLine(receipt_id=f"move/{r['id']}", po=po_numbers[line],
                                       line=line, quantity=Decimal(str(r["quantity"])),
                                       received_on=_day(r["effective_date"])))
        return out

    def invoice_lines(self, po_numbers: Mapping[str, str]) -> list[InvoiceLine]:
        rows = self.rpc.model(
            "account.invoice.line", "search_read",
            [("invoice.type", "=", "in"), ("invoice.state", "in", ["posted", "paid"]),
             ("origin", "like", "purchase.line,%")], 0, None, None,
            ["id", "origin", "quantity", "unit_price", "invoice.number",
             "invoice.invoice_date", "invoice.currency.code"])
        out = []
        for r in rows:
            line = _origin_id(r["origin"])
            if line in po_numbers:
                inv = r["invoice."]
                out.append(InvoiceLine(invoice_id=f"{inv['number']}/{r['id']}",
                                       po=po_numbers[line], line=line,
                                       quantity=Decimal(str(r["quantity"])),
                                       unit_price=Decimal(str(r["unit_price"])),
                                       currency=str(inv["currency."]["code"]),
                                       invoiced_on=_day(inv["invoice_date"])))
        return out
