"""Three-way match (order x receipt x invoice) and the replenishment decision (issue 8).

A supplier invoice line is matched against its purchase-order line (the agreed unit price)
and what was received of it and not yet invoiced. It passes when

* the billed quantity is at most the uninvoiced received quantity, plus the quantity
  tolerance (a fraction of the ordered quantity), and
* the billed unit price differs from the order's by at most the price tolerance: a
  fraction of the order price, or an absolute amount per unit, whichever is larger.

Anything else is a finding for the procurement team; nothing posts until it is resolved.
Replenishment: when a consumption takes the quantity on hand from above the reorder point
to at or below it, order up to par (less what is already on order). The budget check per
cost center runs before the requisition leaves: a breach becomes an approval work item.

Pure: plain values in, decisions as data out.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True)
class Tolerance:
    """Configurable match tolerances (`[supply]` in the config)."""

    price_fraction: Decimal = Decimal("0.02")
    price_per_unit: Decimal = Decimal("0.00")
    quantity_fraction: Decimal = Decimal("0")


@dataclass(frozen=True)
class MatchFinding:
    """Why an invoice line did not match: `field` is what is off, `detail` by how much."""

    field: str  # "quantity" | "unit_price" | "currency"
    detail: str


def three_way_match(
    *,
    ordered_qty: Decimal,
    order_price: Decimal,
    order_currency: str,
    uninvoiced_qty: Decimal,
    invoice_qty: Decimal,
    invoice_price: Decimal,
    invoice_currency: str,
    tolerance: Tolerance,
) -> list[MatchFinding]:
    """Findings for one invoice line; an empty list means it matches and may post."""
    findings: list[MatchFinding] = []
    if invoice_currency != order_currency:
        findings.append(
            MatchFinding("currency", f"invoice in {invoice_currency}, order in {order_currency}")
        )
    allowed_qty = uninvoiced_qty + ordered_qty * tolerance.quantity_fraction
    if invoice_qty > allowed_qty:
        findings.append(
            MatchFinding(
                "quantity", f"billed {invoice_qty}, received and not invoiced {uninvoiced_qty}"
            )
        )
    allowed_price = max(abs(order_price) * tolerance.price_fraction, tolerance.price_per_unit)
    if abs(invoice_price - order_price) > allowed_price:
        findings.append(
            MatchFinding(
                "unit_price",
                f"billed {invoice_price}, ordered at {order_price} (tolerance "
                f"{allowed_price} per unit)",
            )
        )
    return findings


def crossed_reorder_point(before: Decimal, after: Decimal, reorder_point: Decimal) -> bool:
    """True when on-hand went from above the reorder point to at or below it."""
    return before > reorder_point >= after


def reorder_quantity(par: Decimal, on_hand: Decimal, on_order: Decimal) -> Decimal:
    """What to order to bring stock back to par, counting what is already on order."""
    need = par - on_hand - on_order
    return need if need > 0 else ZERO


def within_budget(*, budget: Decimal | None, committed: Decimal, amount: Decimal) -> bool:
    """The cost center's budget holds `amount` on top of what is committed (None: no limit)."""
    return budget is None or committed + amount <= budget
