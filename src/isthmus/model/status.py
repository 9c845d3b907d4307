"""Status events: what the hub tells other systems back (issue 18, "a two-way hub").

The seed architecture names them: a charge, payment or adjustment posted, a claim denied,
a refund approved or rejected, an account's balance changed, a requisition sent, an
invoice matched, payroll accrued. A status event is small and flat on purpose: `fields`
holds strings only (an amount is its Decimal as text, beside a `currency` field), so a
route's template or a destination's allow-list sees every value the same way.

PHI stays in unless asked for: the names in `PHI_FIELDS` (MRN, account and visit numbers)
leave only to a destination whose `allow` list names them (flows/routes.py cuts the
fields before a template sees them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Final

CHARGE_POSTED: Final = "ChargePosted"
PAYMENT_POSTED: Final = "PaymentPosted"
ADJUSTMENT_POSTED: Final = "AdjustmentPosted"
CLAIM_DENIED: Final = "ClaimDenied"
REFUND_APPROVED: Final = "RefundApproved"
REFUND_REJECTED: Final = "RefundRejected"
ACCOUNT_BALANCE_CHANGED: Final = "AccountBalanceChanged"
REQUISITION_SENT: Final = "RequisitionSent"
INVOICE_MATCHED: Final = "InvoiceMatched"
PAYROLL_ACCRUED: Final = "PayrollAccrued"
STATUS_TYPES: Final = (
    CHARGE_POSTED,
    PAYMENT_POSTED,
    ADJUSTMENT_POSTED,
    CLAIM_DENIED,
    REFUND_APPROVED,
    REFUND_REJECTED,
    ACCOUNT_BALANCE_CHANGED,
    REQUISITION_SENT,
    INVOICE_MATCHED,
    PAYROLL_ACCRUED,
)

# identifiers of a person or their stay: out unless a destination's allow-list names them
PHI_FIELDS: Final = frozenset(
    {
        "mrn",
        "assigning_authority",
        "account_number",
        "visit_number",
        "patient_control_number",
        "employee_id",
    }
)


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """One status event. `key` orders it (the bus key of what caused it: an account, a
    claim, a refund); `event_id` leads back to the source event (or refund) it came from."""

    type: str
    key: str
    event_id: str
    occurred_at: datetime
    fields: dict[str, str] = field(default_factory=dict)
    channel: str = ""  # the source channel, for a route's channel filter

    @staticmethod
    def amount(value: Decimal) -> str:
        """An amount as a field: its Decimal as plain text, never an exponent."""
        return format(value, "f")
