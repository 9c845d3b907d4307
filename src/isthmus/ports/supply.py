"""The supply records the hub trades with the ERP: the goods receipt and supplier invoice
lines it reads (a done incoming stock move; an invoice line against a purchase-order line)
and the replenishment requisition it sends.

They are what the supply flow (`flows/supply.py`) and the ERP's supply adapter
(`connectors/erp_tryton_supply.py`) both speak, so they live here, beside the other ports,
and neither side imports the other. `Requisition` is kept in the flow's state
(`flows/supply_state.py`, msgspec JSON with Decimals as strings).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import msgspec


class Requisition(msgspec.Struct, kw_only=True):
    """A replenishment request: `pending` (for the ERP), `approval` (budget breached, a
    work item waits), `sent` (the ERP holds it as `erp_id`), `rejected`."""

    req_id: str
    item: str
    location: str
    quantity: Decimal
    cost_center: str
    amount: Decimal
    created_on: date
    status: str = "pending"
    erp_id: str = ""


@dataclass(frozen=True)
class ReceiptLine:
    """A goods receipt line read from the ERP (a done incoming stock move)."""

    receipt_id: str
    po: str
    line: str
    quantity: Decimal
    received_on: date


@dataclass(frozen=True)
class InvoiceLine:
    """A supplier invoice line read from the ERP, against a purchase-order line."""

    invoice_id: str
    po: str
    line: str
    quantity: Decimal
    unit_price: Decimal
    currency: str
    invoiced_on: date
    erp_invoice: str = ""  # the ERP's id of the whole invoice, which it posts once matched
    supplier: str = ""  # the vendor's code or id in the ERP, for InvoiceMatched
