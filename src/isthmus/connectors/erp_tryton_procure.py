"""Procurement in a local Tryton (issue 8): the database setup.

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

The buyer's steps on this database (tests and the demo) are in `erp_tryton_buyer`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from isthmus.connectors.erp_rpc import TrytonRpc
from isthmus.connectors.erp_tryton_server import TrytonSite
from isthmus.connectors.erp_tryton_setup import (
    MODULES as BOOKS_MODULES,
)
from isthmus.connectors.erp_tryton_setup import Progress, build_database

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
