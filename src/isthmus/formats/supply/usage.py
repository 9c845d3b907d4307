"""Supply usage CSV: the departmental inventory application's feed of items used.

One row per item used by a procedure (a point-of-use cabinet or OR inventory export):

    usage_id, item, location, quantity, used_on, department, facility, lot, serial,
    account_number, visit_number, charge_id

`usage_id` is the application's own id of the line: the same id twice is one usage (the
second is a finding in one file, a duplicate across files). `quantity` is a positive
decimal number of units. Header names are matched as in settlement files (case, spaces
and underscores ignored, common aliases); other columns (a patient name, say) are never
read. Every problem is a finding with row and column; a file with any finding is refused
whole.

Pure: bytes in, `SupplyConsumed` events and findings out.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from isthmus.formats.settlement.table import Cells, Finding, header_of, norm, read_table
from isthmus.model.events import SupplyConsumed

REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "usage_id": ("usage", "line_id", "transaction_id", "usage_line"),
    "item": ("item_number", "item_id", "item_code", "sku"),
    "location": ("stock_location", "inventory_location", "bin", "par_location"),
    "quantity": ("qty", "units", "quantity_used"),
    "used_on": ("used_date", "usage_date", "date", "procedure_date"),
}
OPTIONAL: Final[dict[str, tuple[str, ...]]] = {
    "department": ("dept",),
    "facility": ("site",),
    "lot": ("lot_number",),
    "serial": ("serial_number",),
    "account_number": ("account", "billing_account"),
    "visit_number": ("visit", "encounter"),
    "charge_id": ("charge", "charge_transaction_id"),
}


@dataclass(frozen=True)
class UsageFile:
    """A supply usage file read: its SupplyConsumed events and its findings (refused whole
    when there is any)."""

    events: tuple[SupplyConsumed, ...]
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.findings


def looks_like_usage(data: bytes) -> bool:
    """True when the header names a usage feed (usage id, item and quantity columns)."""
    names = {norm(h) for h in header_of(data)}
    return all(
        names & {norm(n) for n in (col, *REQUIRED[col])} for col in ("usage_id", "item", "quantity")
    )


def parse_usage(data: bytes) -> UsageFile:
    """Read a supply usage CSV; every problem is a finding with row and column."""
    table = read_table(data, required=REQUIRED, optional=OPTIONAL)
    findings = list(table.findings)
    out: list[SupplyConsumed] = []
    seen: dict[str, int] = {}
    for row in table.rows:
        c = Cells(row, findings)
        before = len(findings)
        usage_id = c.text("usage_id")
        item, location = c.text("item"), c.text("location")
        qty = c.money("quantity")
        when = c.day("used_on")
        if len(findings) > before or when is None:
            continue
        if qty <= 0:
            findings.append(Finding(row.number, "quantity", "must be > 0", str(qty)))
            continue
        if usage_id in seen:
            findings.append(
                Finding(row.number, "usage_id", f"the same usage as row {seen[usage_id]}", usage_id)
            )
            continue
        seen[usage_id] = row.number
        opt = {name: c.text(name, required=False) for name in OPTIONAL}
        out.append(
            SupplyConsumed(
                usage_id=usage_id,
                item=item,
                location=location,
                quantity=Decimal(qty),
                used_on=when,
                **opt,
            )
        )
    findings.sort(key=lambda f: (f.row, f.column))
    return UsageFile(tuple(out), tuple(findings))
