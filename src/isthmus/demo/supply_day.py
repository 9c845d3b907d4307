"""The demo's supply day: surgery uses stents and sutures, stock crosses its reorder points,
requisitions are made, a purchase order's receipt and invoices come back from the ERP.

Purchase order PO-1001 (as the ERP would answer it: 10 stents at 450.00, 40 sutures at
6.25) is received in full on 2 November 2026. Procedures on 3 November use 7 stents and 30
sutures (a usage CSV from the OR's inventory cabinet, with a patient-name column the hub
never reads): both items cross their reorder points and requisitions for cost center
CC-4500 are made. On 4 November the supplier invoices the stents at the order price (it
matches and posts to AP) and the sutures at 6.90 (beyond the 2% price tolerance: a
`procurement` work item, nothing posted, aging in `isthmus supply report`).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Final

from isthmus.ledger.supply import OrderLine
from isthmus.ports.supply import InvoiceLine, ReceiptLine

OR_LOCATION: Final = "SURG"  # the OR's stock location (its cabinet's usage rows say so)
POLICY: Final[dict[str, Any]] = {
    "price_tolerance": "0.02",
    "budgets": {"CC-4500": "5000.00"},
    "service_lines": {"SURG": "Surgery", "CARD": "Cardiology"},
    "par_levels": {
        "STENT-01|SURG": {
            "par": 10,
            "reorder_point": 4,
            "cost_center": "CC-4500",
            "unit_price": "450.00",
        },
        "SUTURE-3|SURG": {
            "par": 40,
            "reorder_point": 15,
            "cost_center": "CC-4500",
            "unit_price": "6.25",
        },
    },
}
ORDERS: Final = (
    OrderLine(
        po="PO-1001",
        line="1",
        item="STENT-01",
        location="SURG",
        quantity=Decimal(10),
        unit_price=Decimal("450.00"),
        currency="USD",
        company="C100",
        cost_center="CC-4500",
    ),
    OrderLine(
        po="PO-1001",
        line="2",
        item="SUTURE-3",
        location="SURG",
        quantity=Decimal(40),
        unit_price=Decimal("6.25"),
        currency="USD",
        company="C100",
        cost_center="CC-4500",
    ),
)
RECEIPTS: Final = tuple(
    ReceiptLine(
        receipt_id=f"GR-1001-{o.line}",
        po=o.po,
        line=o.line,
        quantity=o.quantity,
        received_on=date(2026, 11, 2),
    )
    for o in ORDERS
)
INVOICES: Final = (
    InvoiceLine(
        invoice_id="SI-77/1",
        po="PO-1001",
        line="1",
        quantity=Decimal(10),
        unit_price=Decimal("450.00"),
        currency="USD",
        invoiced_on=date(2026, 11, 4),
    ),
    InvoiceLine(
        invoice_id="SI-77/2",
        po="PO-1001",
        line="2",
        quantity=Decimal(40),
        unit_price=Decimal("6.90"),
        currency="USD",
        invoiced_on=date(2026, 11, 4),
    ),
)


def usage_csv() -> bytes:
    """The OR cabinet's usage export for 3 November: one row per item used."""
    rows = [
        "usage_id,item,location,quantity,used_on,department,facility,lot,"
        "account_number,patient_name"
    ]
    for i in range(7):
        rows.append(
            f"OR-{i + 1:03},STENT-01,SURG,1,2026-11-03,SURG,NORTH,LOT-{880 + i},"
            f"A{5000 + i},Patient {i}"
        )
    for i in range(6):
        rows.append(
            f"OR-{i + 101:03},SUTURE-3,SURG,5,2026-11-03,SURG,NORTH,,A{5000 + i},Patient {i}"
        )
    return ("\n".join(rows) + "\n").encode()
