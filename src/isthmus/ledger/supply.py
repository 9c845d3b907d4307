"""Supply chain postings and the quantities behind them: stock on hand and GRNI (issue 8).

Three posting rules, each a balanced entry in one currency:

* goods receipt against a purchase-order line: DR inventory / CR GRNI (goods received not
  invoiced), at the order's unit price;
* supplier invoice line matched to that receipt: DR GRNI (what the receipt put there, at
  the order's price) / CR accounts payable (what the supplier bills), the difference to a
  purchase price variance account of its own (a debit when the supplier bills more);
* consumption by a procedure: DR supply expense (the cost center and service line that
  used it) / CR inventory, at the moving average cost of the item at that location.

Where the ERP owns accounts payable (it posts the supplier invoice itself, `[supply]
ap_owner = "erp"`), `split_erp_ap` cuts the invoice entry in two: the ERP's own move
(DR GRNI / CR AP at the invoice amount) on channel `ERP_AP_CHANNEL`, which the hub keeps
for its subledger and reconciliation but never exports (`MIRROR_CHANNELS`), and the
price variance (PPV against GRNI), which the hub does export. Together they are the one
entry above, so the hub's balances are the same either way.

`SupplyBook` keeps what those postings imply, per item x location (quantity and value on
hand) and per purchase-order line (received and invoiced quantity, GRNI value), and is the
only way entries are made here: each operation checks first and changes nothing when it
refuses, so stock and GRNI never go negative through the hub. Refusals are `LedgerRefusal`
subclasses named by what the caller does next (a work item, never a retry). The last unit
of an item or the last invoiced unit of a receipt takes the remaining value exactly, so no
rounding residue stays in inventory or GRNI.

Pure: no I/O. The flow (`flows.supply`) loads a book, applies events, stores the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from isthmus.ledger.currency import quantize
from isthmus.ledger.errors import InvalidAmount, LedgerError, LedgerRefusal
from isthmus.ledger.journal import (
    Dimensions,
    JournalEntry,
    JournalLine,
    Posting,
    cr,
    dr,
    require_valid,
)

ZERO = Decimal(0)
ERP_AP_CHANNEL = "supply-ap"
MIRROR_CHANNELS = frozenset({ERP_AP_CHANNEL})  # the ERP posts these itself: never exported


@dataclass(frozen=True)
class SupplyAccounts:
    """The chart accounts supply postings use (defaults: the demonstration chart)."""

    inventory: str = "1300"
    grni: str = "2050"
    ap: str = "2000"
    supply_expense: str = "6200"
    price_variance: str = "6210"


@dataclass(frozen=True)
class OrderLine:
    """One purchase-order line as the ERP holds it (read, never written, by the hub)."""

    po: str
    line: str
    item: str
    location: str
    quantity: Decimal
    unit_price: Decimal
    currency: str
    company: str
    cost_center: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.po, self.line)


class InsufficientStock(LedgerRefusal):
    """More is consumed than the hub knows is on hand; a person must count or receive."""


class NotReceived(LedgerRefusal):
    """An invoice bills more than was received and not yet invoiced; procurement decides."""


class UnknownOrderLine(LedgerRefusal):
    """No such purchase-order line is known; sync the order from the ERP first."""


def _refuse(kind: type[LedgerRefusal], key: str, message: str) -> LedgerRefusal:
    return kind(message, (LedgerError(code="bad_amount", message=message, entry_key=key),))


def _positive(qty: Decimal, key: str) -> Decimal:
    if not (isinstance(qty, Decimal) and qty.is_finite() and qty > 0):
        raise _refuse(InvalidAmount, key, f"quantity {qty} is not > 0")
    return qty


def _entry(p: Posting, lines: list[JournalLine]) -> JournalEntry:
    return require_valid(
        JournalEntry(
            entry_key=p.entry_key,
            posted_on=p.posted_on,
            period=p.period,
            channel=p.channel,
            memo=p.memo,
            lines=tuple(lines),
            correlation_id=p.correlation_id,
            causation_id=p.causation_id,
            moved_from=p.moved_from,
        )
    )


@dataclass
class GrniLine:
    """Received and invoiced quantity of one order line, and the GRNI value still open."""

    order: OrderLine
    received: Decimal = ZERO
    invoiced: Decimal = ZERO
    open_value: Decimal = ZERO

    @property
    def uninvoiced(self) -> Decimal:
        return self.received - self.invoiced


@dataclass
class SupplyBook:
    """Stock (quantity, value) per (item, location) and GRNI per (po, line), in one currency."""

    currency: str = "USD"
    accounts: SupplyAccounts = field(default_factory=SupplyAccounts)
    on_hand: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    value: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    grni: dict[tuple[str, str], GrniLine] = field(default_factory=dict)

    def open_order(self, order: OrderLine) -> None:
        """Know an order line (idempotent: a known line keeps its quantities)."""
        self.grni.setdefault(order.key, GrniLine(order))

    def quantity(self, item: str, location: str) -> Decimal:
        return self.on_hand.get((item, location), ZERO)

    def unit_cost(self, item: str, location: str) -> Decimal:
        """Moving average cost of one unit on hand (0 when nothing is)."""
        qty = self.quantity(item, location)
        return self.value.get((item, location), ZERO) / qty if qty else ZERO

    @property
    def open_grni(self) -> Decimal:
        return sum((g.open_value for g in self.grni.values()), ZERO)

    def _line(self, po: str, line: str, key: str) -> GrniLine:
        found = self.grni.get((po, line))
        if found is None:
            raise _refuse(UnknownOrderLine, key, f"order line {po}/{line} is not known")
        return found

    def receive(self, po: str, line: str, quantity: Decimal, posting: Posting) -> JournalEntry:
        """Goods in: DR inventory / CR GRNI at the order price; stock and GRNI go up."""
        qty = _positive(quantity, posting.entry_key)
        g = self._line(po, line, posting.entry_key)
        o = g.order
        amount = quantize(qty * o.unit_price, self.currency)
        dims = Dimensions(company=o.company)
        entry = _entry(
            posting,
            [
                dr(self.accounts.inventory, amount, self.currency, dims),
                cr(self.accounts.grni, amount, self.currency, dims),
            ],
        )
        key = (o.item, o.location)
        self.on_hand[key] = self.quantity(*key) + qty
        self.value[key] = self.value.get(key, ZERO) + amount
        g.received += qty
        g.open_value += amount
        return entry

    def invoice(
        self, po: str, line: str, quantity: Decimal, unit_price: Decimal, posting: Posting
    ) -> JournalEntry:
        """Supplier invoice line: DR GRNI / CR AP, the price variance to its own account.

        Refuses (NotReceived) to bill more than is received and not yet invoiced: the GRNI
        of a line never goes below zero.
        """
        qty = _positive(quantity, posting.entry_key)
        g = self._line(po, line, posting.entry_key)
        if qty > g.uninvoiced:
            raise _refuse(
                NotReceived,
                posting.entry_key,
                f"invoice for {qty} of {po}/{line}: only {g.uninvoiced} received and not invoiced",
            )
        o = g.order
        if qty == g.uninvoiced:
            clear = g.open_value
        else:
            clear = min(quantize(qty * o.unit_price, self.currency), g.open_value)
        payable = quantize(qty * unit_price, self.currency)
        if payable <= 0:
            raise _refuse(InvalidAmount, posting.entry_key, f"invoice amount {payable} is not > 0")
        dims = Dimensions(company=o.company, cost_center=o.cost_center)
        lines = [dr(self.accounts.grni, clear, self.currency, Dimensions(company=o.company))]
        variance = payable - clear
        if variance > 0:
            lines.append(dr(self.accounts.price_variance, variance, self.currency, dims))
        elif variance < 0:
            lines.append(cr(self.accounts.price_variance, -variance, self.currency, dims))
        lines.append(cr(self.accounts.ap, payable, self.currency, Dimensions(company=o.company)))
        lines = [ln for ln in lines if ln.debit or ln.credit]
        entry = _entry(posting, lines)
        g.invoiced += qty
        g.open_value -= clear
        return entry

    def restock(self, item: str, location: str, quantity: Decimal, value: Decimal) -> None:
        """Put back what a usage took (it was recorded in error): the quantity, at the value
        it was taken at. The caller posts the reversal of the usage's entry."""
        key = (item, location)
        self.on_hand[key] = self.quantity(item, location) + quantity
        self.value[key] = self.value.get(key, ZERO) + value

    def consume(
        self,
        item: str,
        location: str,
        quantity: Decimal,
        *,
        company: str,
        cost_center: str,
        service_line: str,
        posting: Posting,
    ) -> JournalEntry | None:
        """Used by a procedure: DR supply expense (cost center) / CR inventory at average cost.

        Refuses (InsufficientStock) to take more than is on hand. None when the stock has no
        value (received free of charge): the quantity still goes down.
        """
        qty = _positive(quantity, posting.entry_key)
        key = (item, location)
        have = self.quantity(item, location)
        if qty > have:
            raise _refuse(
                InsufficientStock,
                posting.entry_key,
                f"{qty} of item {item} used at {location}: only {have} on hand",
            )
        held = self.value.get(key, ZERO)
        amount = held if qty == have else min(quantize(held * qty / have, self.currency), held)
        entry = None
        if amount > 0:
            expense = Dimensions(
                company=company, cost_center=cost_center, service_line=service_line
            )
            entry = _entry(
                posting,
                [
                    dr(self.accounts.supply_expense, amount, self.currency, expense),
                    cr(self.accounts.inventory, amount, self.currency, Dimensions(company=company)),
                ],
            )
        self.on_hand[key] = have - qty
        self.value[key] = held - amount
        return entry


def split_erp_ap(
    entry: JournalEntry, accounts: SupplyAccounts
) -> tuple[JournalEntry, JournalEntry | None]:
    """An invoice entry (`SupplyBook.invoice`) as (the ERP's AP move, the hub's variance).

    The AP move mirrors what the ERP posts for the invoice: DR GRNI / CR AP, both at the
    amount billed. The rest of the entry (GRNI at the order price less the amount billed,
    and the variance line) is the variance entry, None when the price matched exactly."""
    [ap] = [ln for ln in entry.lines if ln.account == accounts.ap]
    mirror = require_valid(
        msgspec.structs.replace(
            entry,
            entry_key=f"{entry.entry_key}/ap",
            channel=ERP_AP_CHANNEL,
            lines=(dr(accounts.grni, ap.credit, ap.currency, ap.dims), ap),
        )
    )
    grni = (
        sum((ln.debit - ln.credit for ln in entry.lines if ln.account == accounts.grni), ZERO)
        - ap.credit
    )
    rest = [ln for ln in entry.lines if ln.account not in (accounts.grni, accounts.ap)]
    if not rest:
        return mirror, None
    side = dr if grni > 0 else cr
    variance = require_valid(
        msgspec.structs.replace(
            entry, lines=(*rest, side(accounts.grni, abs(grni), ap.currency, ap.dims))
        )
    )
    return mirror, variance
