"""The buyer's side of procurement in a local Tryton (issue 8), one function a step.

For tests and the demo, on the database `erp_tryton_procure` sets up (the hub never calls
these: a person does this in Tryton): `approve_requisitions` (purchase requests made),
`create_purchases` (the purchase.request.create_purchase wizard), `confirm_purchases`
(quote, confirm), `receive` (a supplier shipment of the purchase's moves, received and
done), `supplier_invoice` (the invoice Tryton drew up from the shipment: dated, its lines
coded to GRNI 2050, optionally repriced as the supplier billed, and validated, not
posted: the hub posts it once the three-way match passes). So the invoice's move is
DR 2050 / CR 2000 at the price billed.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from isthmus.connectors.erp_rpc import TrytonRpc
from isthmus.connectors.erp_tryton_procure import GRNI, ITEMS, SUPPLIER, _one


def _wizard(
    rpc: TrytonRpc,
    name: str,
    model: str,
    ids: list[int],
    state: str = "start",
    data: dict[str, Any] | None = None,
) -> Any:
    """Run a wizard from `state` on records (Tryton's wizard.<name>.create/execute/delete)."""
    if not rpc.context:
        rpc.login()
    ctx = {**rpc.context, "active_model": model, "active_id": ids[0], "active_ids": ids}
    post = rpc.call
    session, _start, _end = post(f"wizard.{name}.create", [ctx])
    try:
        return post(f"wizard.{name}.execute", [session, data or {}, state, ctx])
    finally:
        post(f"wizard.{name}.delete", [session, ctx])


def approve_requisitions(rpc: TrytonRpc, ids: list[int]) -> list[int]:
    """A person approves waiting requisitions; Tryton makes their purchase requests (ids)."""
    rpc.model("purchase.requisition", "approve", ids)
    return [
        int(r)
        for r in rpc.model(
            "purchase.request",
            "search",
            [("origin.requisition", "in", ids, "purchase.requisition.line")],
            0,
            None,
            None,
        )
    ]


def create_purchases(rpc: TrytonRpc, request_ids: list[int]) -> list[int]:
    """The create-purchase wizard on purchase requests: the draft purchases made (ids)."""
    _wizard(rpc, "purchase.request.create_purchase", "purchase.request", request_ids)
    rows = rpc.model("purchase.request", "read", request_ids, ["purchase"])
    return sorted({int(r["purchase"]) for r in rows if r["purchase"]})


def create_purchase(
    rpc: TrytonRpc, lines: dict[str, Decimal], *, supplier: str = SUPPLIER, on: date | None = None
) -> int:
    """A purchase drawn up by the buyer directly (opening stock): item code -> quantity,
    at the supplier's price."""
    party = _one(rpc, "party.party", [("code", "=", supplier)])
    address = rpc.model("party.address", "search", [("party", "=", party)], 0, 1, None)
    products = {
        p["code"]: p
        for p in rpc.model(
            "product.product",
            "search_read",
            [("code", "in", list(lines))],
            0,
            None,
            None,
            ["code", "purchase_uom"],
        )
    }
    values: dict[str, Any] = {
        "party": party,
        "invoice_address": address[0] if address else None,
        "lines": [
            (
                "create",
                [
                    {
                        "type": "line",
                        "product": products[code]["id"],
                        "quantity": float(qty),
                        "unit": products[code]["purchase_uom"],
                        "unit_price": ITEMS[code][1],
                        "description": ITEMS[code][0],
                    }
                    for code, qty in lines.items()
                ],
            )
        ],
    }
    if on is not None:
        values["purchase_date"] = on
    [pid] = rpc.model("purchase.purchase", "create", [values])
    return int(pid)


def confirm_purchases(rpc: TrytonRpc, ids: list[int]) -> list[str]:
    """Quote and confirm; their numbers."""
    rpc.model("purchase.purchase", "quote", ids)
    rpc.model("purchase.purchase", "confirm", ids)
    return [str(r["number"]) for r in rpc.model("purchase.purchase", "read", ids, ["number"])]


def receive(
    rpc: TrytonRpc,
    purchase_id: int,
    *,
    on: date | None = None,
    quantities: dict[str, Decimal] | None = None,
) -> int:
    """A supplier shipment of the purchase's pending moves, received and done; its id.
    `quantities` (item code -> quantity) receives less than ordered."""
    [p] = rpc.model("purchase.purchase", "read", [purchase_id], ["party", "warehouse", "moves"])
    moves = rpc.model(
        "stock.move",
        "search_read",
        [("id", "in", p["moves"]), ("state", "=", "draft")],
        0,
        None,
        None,
        ["id", "product.code"],
    )
    for mv in moves:
        code = str(mv["product."]["code"])
        if quantities and code in quantities:
            rpc.model("stock.move", "write", [mv["id"]], {"quantity": float(quantities[code])})
    [wh] = rpc.model(
        "stock.location", "read", [p["warehouse"]], ["input_location", "storage_location"]
    )
    values: dict[str, Any] = {
        "supplier": p["party"],
        "warehouse": p["warehouse"],
        "warehouse_input": wh["input_location"],
        "warehouse_storage": wh["storage_location"],
        "incoming_moves": [("add", [mv["id"] for mv in moves])],
    }
    if on is not None:
        values["effective_date"] = on
    [sid] = rpc.model("stock.shipment.in", "create", [values])
    rpc.model("stock.shipment.in", "receive", [sid])
    [s] = rpc.model("stock.shipment.in", "read", [sid], ["state"])
    if s["state"] != "done":
        rpc.model("stock.shipment.in", "do", [sid])
    return int(sid)


def supplier_invoice(
    rpc: TrytonRpc,
    purchase_id: int,
    *,
    on: date,
    reference: str = "",
    prices: dict[str, Decimal] | None = None,
) -> int:
    """The draft invoice Tryton made for the purchase: dated `on`, lines coded to GRNI,
    priced as billed (`prices`: item code -> unit price, default the order's), validated
    (not posted); its id."""
    [p] = rpc.model("purchase.purchase", "read", [purchase_id], ["invoices"])
    drafts = rpc.model(
        "account.invoice",
        "search",
        [("id", "in", p["invoices"]), ("state", "=", "draft")],
        0,
        None,
        None,
    )
    if len(drafts) != 1:
        raise RuntimeError(f"purchase {purchase_id}: {len(drafts)} draft invoices, expected 1")
    [grni] = rpc.model("account.account", "search", [("code", "=", GRNI)], 0, 1, None)
    lines = rpc.model(
        "account.invoice.line",
        "search_read",
        [("invoice", "=", drafts[0])],
        0,
        None,
        None,
        ["id", "product.code"],
    )
    for ln in lines:
        values: dict[str, Any] = {"account": grni}
        code = str((ln.get("product.") or {}).get("code", ""))
        if prices and code in prices:
            values["unit_price"] = prices[code]
        rpc.model("account.invoice.line", "write", [ln["id"]], values)
    rpc.model(
        "account.invoice",
        "write",
        drafts,
        {"invoice_date": on, "reference": reference or f"P{purchase_id}"},
    )
    rpc.model("account.invoice", "validate_invoice", drafts)
    return int(drafts[0])
