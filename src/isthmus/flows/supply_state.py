"""What the supply flow remembers between events, its policy, and the port that keeps it.

`SupplyState` holds the stock and GRNI book (`ledger.supply.SupplyBook`), the ids already
applied (a replayed usage, receipt or invoice changes nothing), the replenishment
requisitions (pending for the ERP, waiting for budget approval, or sent with the ERP's
purchase request id), the amount each cost center has committed, and the supplier invoice
lines that failed the three-way match (they age in `isthmus supply report`).

`SupplyPolicy` is the site's `[supply]` table: par level and reorder point per item and
location (with the cost center that pays and an estimated unit price for the budget
check), budgets per cost center, match tolerances, chart accounts.

`SupplyStore` is the port: load the whole state, save it back, in one transaction of the
adapter (`store/supply_sqlite.py`, or `MemorySupplyStore` here for tests). Whole-state
load/save is fine for a department's few thousand items; a table per record is the next
step when it is not. The codec is msgspec JSON with Decimals as strings.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Protocol

import msgspec

from isthmus.ledger.supply import GrniLine, OrderLine, SupplyAccounts, SupplyBook
from isthmus.ledger.supply_match import Tolerance


@dataclass(frozen=True)
class ParLevel:
    """Replenishment rule of one item at one location."""

    par: Decimal
    reorder_point: Decimal
    cost_center: str
    unit_price: Decimal  # estimate for the budget check; the ERP's order price is what posts
    company: str = "C100"


@dataclass(frozen=True)
class SupplyPolicy:
    """[supply]: par levels ("item|location"), budgets per cost center, tolerances."""

    par_levels: dict[str, ParLevel] = field(default_factory=dict)
    budgets: dict[str, Decimal] = field(default_factory=dict)
    tolerance: Tolerance = field(default_factory=Tolerance)
    accounts: SupplyAccounts = field(default_factory=SupplyAccounts)
    currency: str = "USD"
    company: str = "C100"  # when the facility of a usage has no ERP company mapping
    charge_items: dict[str, str] = field(default_factory=dict)  # FT1-7 code -> item number


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


class Unmatched(msgspec.Struct, kw_only=True):
    """A supplier invoice line that failed the three-way match; nothing posted for it."""

    invoice_id: str
    po: str
    line: str
    quantity: Decimal
    unit_price: Decimal
    invoiced_on: date
    findings: list[str]
    status: str = "open"  # open | resolved


@dataclass
class SupplyState:
    book: SupplyBook = field(default_factory=SupplyBook)
    applied: set[str] = field(default_factory=set)
    requisitions: list[Requisition] = field(default_factory=list)
    committed: dict[str, Decimal] = field(default_factory=dict)
    unmatched: list[Unmatched] = field(default_factory=list)

    def on_order(self, item: str, location: str) -> Decimal:
        """Ordered and not yet received, plus requisitions not yet rejected."""
        ordered = sum((g.order.quantity - g.received for g in self.book.grni.values()
                       if (g.order.item, g.order.location) == (item, location)
                       and g.order.quantity > g.received), Decimal(0))
        asked = sum((r.quantity for r in self.requisitions
                     if (r.item, r.location) == (item, location)
                     and r.status in ("pending", "approval")), Decimal(0))
        return ordered + asked


class _Stored(msgspec.Struct):
    currency: str
    stock: list[tuple[str, str, Decimal, Decimal]]
    lines: list[tuple[OrderLine, Decimal, Decimal, Decimal]]
    applied: list[str]
    requisitions: list[Requisition]
    committed: dict[str, Decimal]
    unmatched: list[Unmatched]


_enc = msgspec.json.Encoder(decimal_format="string")
_dec = msgspec.json.Decoder(_Stored)


def encode_state(state: SupplyState) -> bytes:
    b = state.book
    return _enc.encode(_Stored(
        currency=b.currency,
        stock=[(i, loc, q, b.value.get((i, loc), Decimal(0))) for (i, loc), q in
               sorted(b.on_hand.items())],
        lines=[(g.order, g.received, g.invoiced, g.open_value) for _, g in
               sorted(b.grni.items())],
        applied=sorted(state.applied), requisitions=state.requisitions,
        committed=state.committed, unmatched=state.unmatched))


def decode_state(data: bytes, accounts: SupplyAccounts | None = None) -> SupplyState:
    s = _dec.decode(data)
    book = SupplyBook(currency=s.currency, accounts=accounts or SupplyAccounts())
    for item, loc, qty, value in s.stock:
        book.on_hand[(item, loc)] = qty
        book.value[(item, loc)] = value
    for order, received, invoiced, open_value in s.lines:
        book.grni[order.key] = GrniLine(order, received, invoiced, open_value)
    return SupplyState(book=book, applied=set(s.applied), requisitions=s.requisitions,
                       committed=s.committed, unmatched=s.unmatched)


class SupplyStore(Protocol):
    """Load and save the supply state atomically (one writer at a time)."""

    def session(self) -> AbstractContextManager[SupplyState]:
        """Yields the state, and saves it when the block ends without an error."""
        ...


class MemorySupplyStore:
    """In-memory fake of the port: the state survives as encoded bytes, like on disk."""

    def __init__(self) -> None:
        self.data: bytes | None = None

    @contextmanager
    def session(self) -> Iterator[SupplyState]:
        state = decode_state(self.data) if self.data is not None else SupplyState()
        yield state
        self.data = encode_state(state)
