"""Tryton's procurement side over JSON-RPC (issue 8): requisitions out; orders, receipts and
supplier invoices in; matched supplier invoices posted.

The ERP owns the item master (`product.product`), the vendor master (`party.party`),
purchase orders, receipts and supplier invoices (accounts payable). What the hub writes is
a `purchase.requisition` (Tryton module purchase_requisition) for a replenishment, moved to
`waiting` (the `wait` button); a person approves it in Tryton, which makes purchase
requests (purchase_request) and, through the buyer, a purchase order.

Read back, as the supply flow's plain records (`flows.supply`):

* order lines: `purchase.line` of purchases in state confirmed, processing or done;
* receipts: `stock.move` in state done whose origin is a `purchase.line` (the incoming
  move of a supplier shipment);
* supplier invoice lines: `account.invoice.line` of supplier invoices (`invoice.type` in)
  in state validated, posted or paid, whose origin is a `purchase.line`. Their id is
  `invoice/<invoice id>/<line id>`: Tryton's own ids, stable whatever number the invoice
  gets, and `erp_invoice` is the invoice's id. The date is the invoice's accounting date,
  else its invoice date: the date of the move Tryton posts for it.

Then `post_matched` posts (`account.invoice.post`) each validated invoice whose every
line the hub matched (outcome "posted" or "duplicate"), that has no line the hub did not
see, and whose lines still carry the quantity and price that were matched: that posting is
the AP entry, in Tryton. A held invoice stays validated, unposted.

Dotted field names (`purchase.number`) are read in one `search_read` per model. Locations
and items are the ERP's codes (`product.code`, `warehouse.code`); `locations` maps a
Tryton location code to the hub's stock location where they differ. Tryton's faults
arrive as `ErpRejected` (a person must act) or `ErpUnavailable` (retry later), translated
by the transport (`erp_rpc`).

Field names follow trytond 8 modules purchase, stock, account_invoice and
purchase_requisition; run against a live trytond 8.2 by tests/flows/supply/test_supply_tryton_*.py
(the database set up by `erp_tryton_procure`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from isthmus.config.erp import ErpSettings
from isthmus.config.values import ConfigError
from isthmus.connectors.erp_rpc import TrytonRpc
from isthmus.ledger.supply import OrderLine
from isthmus.ports.erp import ErpRejected
from isthmus.ports.supply import InvoiceLine, ReceiptLine, Requisition


class Rpc(Protocol):
    """The one JSON-RPC call the supply adapter needs: a model method, with an optional
    context."""

    def model(
        self, model: str, method: str, *args: Any, context: dict[str, Any] | None = None
    ) -> Any: ...


def _origin_id(origin: Any) -> str:
    """'purchase.line,42' -> '42' (Tryton Reference field)."""
    text = str(origin or "")
    return text.split(",", 1)[1] if text.startswith("purchase.line,") else ""


def _quantity(value: Any) -> Decimal:
    """Tryton's float quantity as a Decimal: 25.0 -> 25, 2.5 -> 2.5 (no float noise)."""
    q = Decimal(str(value))
    return q.quantize(Decimal(1)) if q == q.to_integral_value() else q.normalize()


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _code(row: dict[str, Any], *path: str) -> str:
    """A dotted value read by search_read ('product.', 'code'), "" when a link is empty."""
    value: Any = row
    for step in path:
        value = value.get(step) if isinstance(value, dict) else None
    return "" if value is None else str(value)


POSTABLE = frozenset({"posted", "duplicate"})
PRICE = Decimal("0.0001")  # Tryton's default price digits


class TrytonSupply:
    """Tryton's procurement side for the supply flow: requisitions written, orders, receipts
    and supplier invoices read back, matched invoices posted."""

    def __init__(
        self,
        rpc: Rpc,
        *,
        company: str,
        locations: Mapping[str, str] | None = None,
    ) -> None:
        self.rpc = rpc
        self.company = company
        self.locations = dict(locations or {})

    def _where(self, code: str) -> str:
        return self.locations.get(code, code)

    @classmethod
    def from_settings(
        cls, erp: ErpSettings, *, company: str, locations: Mapping[str, str] | None = None
    ) -> TrytonSupply:
        """A session on the [erp] Tryton (kind "tryton"; the password from its file);
        `locations` maps Tryton warehouse codes to the hub's stock locations."""
        if erp.kind != "tryton":
            raise ConfigError('supply sync needs [erp] kind = "tryton"')
        try:
            password = erp.password_file.read_text().strip() if erp.password_file else ""
        except OSError as exc:
            raise ConfigError(f"erp.password_file {erp.password_file}: {exc.strerror}") from exc
        return cls(
            TrytonRpc(erp.url, erp.database, erp.user, password, timeout_s=erp.timeout_s),
            company=company,
            locations=locations,
        )

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
        warehouse whose code maps to the requisition's location (`locations`; the
        location's own code when none does), the first employee and the company's
        currency, all read."""
        product = self._first(
            "product.product", [("code", "=", req.item)], ["id", "purchase_uom", "default_uom"]
        )
        unit = product.get("purchase_uom") or product.get("default_uom")
        code = next((c for c, hub in self.locations.items() if hub == req.location), req.location)
        warehouse = self._first(
            "stock.location", [("type", "=", "warehouse"), ("code", "=", code)], ["id"]
        )
        employee = self._first("company.employee", [], ["id", "company"])
        company = self._first(
            "company.company", [("id", "=", employee["company"])], ["id", "currency"]
        )
        return self.create_requisition(
            req,
            employee=int(employee["id"]),
            warehouse=int(warehouse["id"]),
            product=int(product["id"]),
            unit=int(unit or 0),
            currency=int(company["currency"]),
        )

    def pull(self) -> tuple[list[OrderLine], list[ReceiptLine], list[InvoiceLine]]:
        """Order lines, receipts and supplier invoice lines, as the supply flow takes them."""
        orders = self.order_lines()
        numbers = {o.line: o.po for o in orders}
        return orders, self.receipts(numbers), self.invoice_lines(numbers)

    def product_ids(self, codes: list[str]) -> dict[str, int]:
        """Item number -> Tryton product id (read only)."""
        rows = self.rpc.model(
            "product.product", "search_read", [("code", "in", codes)], 0, None, None, ["id", "code"]
        )
        return {str(r["code"]): int(r["id"]) for r in rows}

    def create_requisition(
        self,
        req: Requisition,
        *,
        employee: int,
        warehouse: int,
        product: int,
        unit: int,
        currency: int,
    ) -> str:
        """A draft requisition with one line, moved to waiting; its Tryton id."""
        [rid] = self.rpc.model(
            "purchase.requisition",
            "create",
            [
                {
                    "description": req.req_id,
                    "employee": employee,
                    "warehouse": warehouse,
                    "supply_date": req.created_on,
                    "currency": currency,
                    "lines": [
                        [
                            "create",
                            [
                                {
                                    "product": product,
                                    "quantity": float(req.quantity),
                                    "unit": unit,
                                    "unit_price": (req.amount / req.quantity).quantize(PRICE)
                                    if req.quantity
                                    else Decimal(0),
                                }
                            ],
                        ]
                    ],
                }
            ],
        )
        self.rpc.model("purchase.requisition", "wait", [rid])
        return str(rid)

    def order_lines(self) -> list[OrderLine]:
        rows = self.rpc.model(
            "purchase.line",
            "search_read",
            [("purchase.state", "in", ["confirmed", "processing", "done"]), ("type", "=", "line")],
            0,
            None,
            None,
            [
                "id",
                "quantity",
                "unit_price",
                "product.code",
                "purchase.number",
                "purchase.currency.code",
                "purchase.warehouse.code",
            ],
        )
        return [
            OrderLine(
                po=_code(r, "purchase.", "number"),
                line=str(r["id"]),
                item=_code(r, "product.", "code"),
                location=self._where(_code(r, "purchase.", "warehouse.", "code")),
                quantity=_quantity(r["quantity"]),
                unit_price=Decimal(str(r["unit_price"])),
                currency=_code(r, "purchase.", "currency.", "code"),
                company=self.company,
            )
            for r in rows
            if _code(r, "product.", "code")
        ]  # a text-only line is no stock

    def receipts(self, po_numbers: Mapping[str, str]) -> list[ReceiptLine]:
        """Done moves from purchase lines; `po_numbers` maps a line id to its order."""
        rows = self.rpc.model(
            "stock.move",
            "search_read",
            [("state", "=", "done"), ("origin", "like", "purchase.line,%")],
            0,
            None,
            None,
            ["id", "origin", "quantity", "effective_date"],
        )
        out = []
        for r in rows:
            line = _origin_id(r["origin"])
            if line in po_numbers:
                out.append(
                    ReceiptLine(
                        receipt_id=f"move/{r['id']}",
                        po=po_numbers[line],
                        line=line,
                        quantity=_quantity(r["quantity"]),
                        received_on=_day(r["effective_date"]),
                    )
                )
        return out

    def invoice_lines(self, po_numbers: Mapping[str, str]) -> list[InvoiceLine]:
        """Lines of validated, posted or paid supplier invoices against known order lines."""
        rows = self.rpc.model(
            "account.invoice.line",
            "search_read",
            [
                ("invoice.type", "=", "in"),
                ("invoice.state", "in", ["validated", "posted", "paid"]),
                ("origin", "like", "purchase.line,%"),
            ],
            0,
            None,
            None,
            [
                "id",
                "origin",
                "quantity",
                "unit_price",
                "invoice",
                "invoice.invoice_date",
                "invoice.accounting_date",
                "invoice.currency.code",
            ],
        )
        out = []
        for r in rows:
            line = _origin_id(r["origin"])
            inv = r.get("invoice.") or {}
            when = inv.get("accounting_date") or inv.get("invoice_date")
            if line in po_numbers and when:
                out.append(
                    InvoiceLine(
                        invoice_id=f"invoice/{r['invoice']}/{r['id']}",
                        po=po_numbers[line],
                        line=line,
                        quantity=_quantity(r["quantity"]),
                        unit_price=Decimal(str(r["unit_price"])),
                        currency=_code(inv, "currency.", "code"),
                        invoiced_on=_day(when),
                        erp_invoice=str(r["invoice"]),
                    )
                )
        return out

    def post_matched(self, lines: list[InvoiceLine], outcomes: Mapping[str, str]) -> list[str]:
        """Post in Tryton each validated invoice all of whose lines matched: every line
        of it in `lines` has outcome "posted" or "duplicate" (`SyncReport.invoices`), it
        has no other line, and its lines still hold what was matched. The ids posted.

        One `post` per invoice: a refusal (ErpRejected, Tryton's message) does not stop
        the others; it is raised after them, naming what was posted."""
        mine: dict[str, dict[int, InvoiceLine]] = {}
        for ln in lines:
            if ln.erp_invoice:
                mine.setdefault(ln.erp_invoice, {})[int(ln.invoice_id.rsplit("/", 1)[1])] = ln
        ready = [
            inv
            for inv, by_id in mine.items()
            if all(outcomes.get(x.invoice_id) in POSTABLE for x in by_id.values())
        ]
        if not ready:
            return []
        states = {
            str(r["id"]): r["state"]
            for r in self.rpc.model("account.invoice", "read", [int(i) for i in ready], ["state"])
        }
        ready = [i for i in ready if states.get(i) == "validated"]
        if not ready:
            return []
        now = self.rpc.model(
            "account.invoice.line",
            "search_read",
            [("invoice", "in", [int(i) for i in ready])],
            0,
            None,
            None,
            ["id", "invoice", "type", "quantity", "unit_price"],
        )
        changed: set[str] = set()
        for r in now:
            inv = str(r["invoice"])
            seen = mine[inv].get(int(r["id"]))
            if seen is None:
                if r.get("type", "line") == "line":
                    changed.add(inv)  # a line the hub did not match (no order line)
            elif (Decimal(str(r["quantity"])), Decimal(str(r["unit_price"]))) != (
                seen.quantity,
                seen.unit_price,
            ):
                changed.add(inv)  # edited since it was read: the next sync matches it
        posted: list[str] = []
        refused: list[str] = []
        for inv in ready:
            if inv in changed:
                continue
            try:
                self.rpc.model("account.invoice", "post", [int(inv)])
            except ErpRejected as exc:
                refused.append(f"invoice {inv}: {exc}")
                continue
            posted.append(inv)
        if refused:
            raise ErpRejected(
                "; ".join(refused) + (f" (posted: {', '.join(posted)})" if posted else "")
            )
        return posted
