"""Supply events (issue 8): stock used by a procedure, voided, or asked for.

From HL7 v2 DFT FT1 supply lines, FHIR R4 SupplyDelivery and SupplyRequest, and
departmental inventory CSV feeds. Imported through `isthmus.model.events`, which
re-exports every type.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import msgspec


class SupplyConsumed(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A supply or implant used by a procedure (issue 8), from an HL7 v2 DFT FT1 supply
    line, a FHIR R4 SupplyDelivery or a departmental inventory CSV feed.

    `usage_id` is the source's own id for the line (idempotency). `item` is the ERP item
    number, `location` the stock location it was taken from, `quantity` units used (> 0).
    `lot` / `serial` are kept where the source gives them (implant traceability). The link
    to the patient's finances is the billing account (PID-18), visit (PV1-19) and the charge
    line it was billed on (FT1-2 transaction id), never the patient's identity.
    """

    usage_id: str
    item: str
    location: str
    quantity: Decimal
    used_on: date
    department: str = ""
    facility: str = ""
    lot: str = ""
    serial: str = ""
    account_number: str = ""
    visit_number: str = ""
    charge_id: str = ""


class SupplyUsageVoided(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A usage recorded in error (FHIR R4 SupplyDelivery `entered-in-error`): the stock it
    took goes back and its cost is reversed; a usage voided before it arrived takes
    nothing when it does."""

    usage_id: str
    voided_on: date


class SupplyRequested(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A department asks for stock (issue 8; FHIR R4 SupplyRequest): a replenishment
    requisition for `quantity` of `item` delivered to `location`, budget-checked like one
    the hub makes at a reorder point. `request_id` is the source's id (idempotency)."""

    request_id: str
    item: str
    location: str
    quantity: Decimal
    requested_on: date
    department: str = ""
