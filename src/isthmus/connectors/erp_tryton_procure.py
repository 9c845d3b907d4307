"""Procurement in a local Tryton (issue 8): the database setup, and the buyer's steps.

`build_procurement` builds what `erp_tryton_setup.build_database` builds (the books) with
the procurement modules active as well: purchase_requisition, purchase_request, purchase,
stock, account_invoice and account_invoice_stock (plus their dependencies; trytond-admin
takes ~25 s for all of them on SQLite). `configure_procurement` then sets up, over
JSON-RPC as any client would:

* account types: 2000 (AP supplies) payable, party required; 2050 (GRNI) "debt", which
  Tryton allows on a supplier invoice line;
* supplier invoice sequences for every fiscal year; purchases invoiced on fulfillment (receipt);
* product category "Medical supplies" (expense account 6200: Tryton requires an
  income-statement expense account there), goods products whose codes are the hub's item
  numbers (`ITEMS`), bought from SUP-MEDLINE (payable 2000, an address) at the list price
  (`purchase.product_supplier`);
* an employee of the company (requisitions need one), linked to the admin user.

No taxes. The warehouse is stock's own `WH`.

The buyer's side, one function a step, for tests and the demo (the hub never calls these:
a person does this in Tryton): `approve_requisitions` (purchase requests made),
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
from isthmus.connectors.erp_tryton_setup import (
    MODULES as BOOKS_MODULES,
)
from isthmus.connectors.erp_tryton_setup import (
    Progress,
    TrytonSite,
    build_database,
)

PROCUREMENT_MODULES = (
    "purchase_requisition",
    "purchase_request",
    "purchase",
    "stock",
    "account_invoice",
    "account_invoice_stock",
)
MODULES = BOOKS_MODULES + PROCUREMENT_MODULES
SUPPLIER = "SUP-MEDLINE"
AP, GRNI, EXPENSE = "2000", "2050", "6200"
WAREHOUSE = "WH"
ITEMS = {  # item number -> (name, supplier's price)
    "STENT-01": ("Coronary stent", Decimal("450.00")),
    "SUTURE-3": ("Suture 3-0", Decimal("6.25")),
    "GLOVE-M": ("Exam gloves, medium (box)", Decimal("8.40")),
}


def build_procurement(
    site: TrytonSite,
    name: str,
    *,
    cost_centers: dict[str, str] | None = None,
    progress: Progress = lambda _m: None,
) -> float:
    """The books of `build_database` plus procurement; returns the seconds it took."""
    return build_database(
        site,
        name,
        cost_centers=cost_centers,
        progress=progress,
        modules=MODULES,
        extra=configure_procurement,
    )


def _one(rpc: TrytonRpc, model: str, domain: list[Any]) -> int:
    ids = rpc.model(model, "search", domain, 0, None, None)
    if len(ids) != 1:
        raise RuntimeError(f"Tryton: {len(ids)} {model} match {domain}, expected 1")
    return int(ids[0])


def configure_procurement(rpc: TrytonRpc, progress: Progress = lambda _m: None) -> None:
    """Set up procurement in a Tryton database whose books exist: account types, invoice
    sequences, the supplies product category and products, the supplier, and the stock
    locations (the module docstring lists them)."""
    m = rpc.model
    company = int(rpc.context["company"])
    account = {
        a["code"]: int(a["id"])
        for a in m(
            "account.account",
            "search_read",
            [("code", "in", [AP, GRNI, EXPENSE])],
            0,
            None,
            None,
            ["code"],
        )
    }
    payable, debt = m(
        "account.account.type",
        "create",
        [
            {"name": "Payables", "statement": "balance", "payable": True, "company": company},
            {
                "name": "Received not invoiced",
                "statement": "balance",
                "debt": True,
                "company": company,
            },
        ],
    )
    m(
        "account.account",
        "write",
        [account[AP]],
        {"type": payable, "party_required": True, "reconcile": True},
        [account[GRNI]],
        {"type": debt},
    )
    m("account.configuration", "write", [1], {"default_account_payable": account[AP]})

    seq_type = _one(rpc, "ir.sequence.type", [("name", "=", "Invoice")])
    for fy in m(
        "account.fiscalyear", "search_read", [("company", "=", company)], 0, None, None, ["name"]
    ):
        seqs = m(
            "ir.sequence.strict",
            "create",
            [
                {
                    "name": f"{kind} {fy['name']}",
                    "sequence_type": seq_type,
                    "company": company,
                    "prefix": f"{prefix}{fy['name']}-",
                }
                for kind, prefix in (
                    ("Supplier invoices", "SI"),
                    ("Supplier credit notes", "SC"),
                    ("Customer invoices", "CI"),
                    ("Customer credit notes", "CC"),
                )
            ],
        )
        m(
            "account.fiscalyear.invoice_sequence",
            "create",
            [
                {
                    "company": company,
                    "fiscalyear": fy["id"],
                    "in_invoice_sequence": seqs[0],
                    "in_credit_note_sequence": seqs[1],
                    "out_invoice_sequence": seqs[2],
                    "out_credit_note_sequence": seqs[3],
                }
            ],
        )
    m("purchase.configuration", "write", [1], {"purchase_invoice_method": "fulfillment"})
    progress("AP 2000 payable, GRNI 2050 for supplier invoices, invoice sequences")

    supplier = _one(rpc, "party.party", [("code", "=", SUPPLIER)])
    m("party.party", "write", [supplier], {"account_payable": account[AP]})
    m(
        "party.address",
        "create",
        [
            {
                "party": supplier,
                "street": "Three Lakes Drive",
                "city": "Northfield",
                "postal_code": "60093",
            }
        ],
    )
    unit = _one(rpc, "product.uom", [("symbol", "=", "u")])
    [category] = m(
        "product.category",
        "create",
        [{"name": "Medical supplies", "accounting": True, "account_expense": account[EXPENSE]}],
    )
    m(
        "product.template",
        "create",
        [
            {
                "name": name,
                "type": "goods",
                "default_uom": unit,
                "purchasable": True,
                "purchase_uom": unit,
                "account_category": category,
                "products": [("create", [{"suffix_code": code}])],
                "product_suppliers": [
                    (
                        "create",
                        [
                            {
                                "party": supplier,
                                "company": company,
                                "prices": [("create", [{"quantity": 0, "unit_price": price}])],
                            }
                        ],
                    )
                ],
            }
            for code, (name, price) in ITEMS.items()
        ],
    )
    [person] = m("party.party", "create", [{"name": "Pat Buyer"}])
    [employee] = m("company.employee", "create", [{"party": person, "company": company}])
    m(
        "res.user",
        "write",
        [rpc.user_id],
        {"employees": [("add", [employee])], "employee": employee},
    )
    rpc.login()  # the context now carries the employee
    progress(f"{len(ITEMS)} products from {SUPPLIER}, employee {employee}, warehouse {WAREHOUSE}")


# --- the buyer's steps ------------------------------------------------------------------


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
