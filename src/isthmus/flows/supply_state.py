"""What the supply flow remembers between events, the records it trades with the ERP, its
policy, and where it keeps them.

`SupplyState` holds the stock and GRNI book (`ledger.supply.SupplyBook`), the replenishment
requisitions (pending for the ERP, waiting for budget approval, or sent with the ERP's
purchase request id; what each cost center has committed follows from them), and the
supplier invoice lines that failed the three-way match (they age in `isthmus supply
report`).

The ERP's records as the flow takes them (`ReceiptLine`, `InvoiceLine`, and the
`Requisition` it sends, all in `ports/supply.py`), with their `Lineage`; what one sync
applied (`SyncReport`), and what one usage took (`Taken`, its applied record: enough to
void it later).

`SupplyPolicy` is the site's `[supply]` table: par level and reorder point per item and
location (with the cost center that pays and an estimated unit price for the budget
check), budgets per cost center, match tolerances, chart accounts.

`session` keeps the state in the hub's own store (`Tx.load_state`/`save_state`: SQLite
embedded, PostgreSQL in scale-out), inside the transaction of the event that changes it,
and the ids already applied (a replayed usage, receipt or invoice changes nothing) go to
the store's `applied` table in the same transaction, so the state does not grow with every
event. The state itself grows with items, order lines, requisitions and unmatched invoices;
a table per record is the next step when that is too much. The codec is msgspec JSON with
Decimals as strings.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import msgspec

from isthmus.errors import ConfigurationError
from isthmus.ledger.journal import JournalEntry
from isthmus.ledger.supply import GrniLine, OrderLine, SupplyAccounts, SupplyBook
from isthmus.ledger.supply_match import Tolerance
from isthmus.ports.supply import Requisition
from isthmus.store.ports import Tx


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
    service_lines: dict[str, str] = field(default_factory=dict)  # department -> service line
    ap_owner: str = "hub"  # "erp": the ERP posts supplier invoices (AP), the hub mirrors
    locations: dict[str, str] = field(default_factory=dict)  # ERP location -> hub location


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


@dataclass(frozen=True)
class Lineage:
    """Where a receipt or invoice came from, for the entry and any work item."""

    source_id: str
    correlation_id: str


@dataclass
class SyncReport:
    """What one sync applied: counts per outcome, and each invoice line's outcome
    ("posted", "duplicate" for one matched before, "held") by its id."""

    counts: dict[str, int] = field(default_factory=dict)
    invoices: dict[str, str] = field(default_factory=dict)

    def add(self, outcome: str) -> str:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        return outcome


class Taken(msgspec.Struct, frozen=True):
    """What one usage took, kept as its applied record: enough to void it later."""

    item: str
    location: str
    quantity: Decimal
    value: Decimal
    entry: JournalEntry | None


@dataclass
class SupplyState:
    """The supply flow's state: the book, the requisitions and the unmatched invoice lines."""

    book: SupplyBook = field(default_factory=SupplyBook)
    requisitions: list[Requisition] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)

    def committed(self, cost_center: str) -> Decimal:
        """What the cost center's requisitions hold of its budget: those pending for the
        ERP or sent (a held or rejected one holds nothing)."""
        return sum(
            (
                r.amount
                for r in self.requisitions
                if r.cost_center == cost_center and r.status in ("pending", "sent")
            ),
            Decimal(0),
        )

    def on_order(self, item: str, location: str) -> Decimal:
        """Ordered and not yet received, plus requisitions not yet rejected."""
        ordered = sum(
            (
                g.order.quantity - g.received
                for g in self.book.grni.values()
                if (g.order.item, g.order.location) == (item, location)
                and g.order.quantity > g.received
            ),
            Decimal(0),
        )
        asked = sum(
            (
                r.quantity
                for r in self.requisitions
                if (r.item, r.location) == (item, location) and r.status in ("pending", "approval")
            ),
            Decimal(0),
        )
        return ordered + asked


class _Stored(msgspec.Struct):
    currency: str
    stock: list[tuple[str, str, Decimal, Decimal]]
    lines: list[tuple[OrderLine, Decimal, Decimal, Decimal]]
    requisitions: list[Requisition]
    unmatched: list[Unmatched]


_enc = msgspec.json.Encoder(decimal_format="string")
_decoder = msgspec.json.Decoder(_Stored)


def encode_state(state: SupplyState) -> bytes:
    """The supply state as the bytes the store keeps."""
    b = state.book
    return _enc.encode(
        _Stored(
            currency=b.currency,
            stock=[
                (i, loc, q, b.value.get((i, loc), Decimal(0)))
                for (i, loc), q in sorted(b.on_hand.items())
            ],
            lines=[
                (g.order, g.received, g.invoiced, g.open_value) for _, g in sorted(b.grni.items())
            ],
            requisitions=state.requisitions,
            unmatched=state.unmatched,
        )
    )


def decode_state(data: bytes, accounts: SupplyAccounts | None = None) -> SupplyState:
    """The supply state from its stored bytes, its book using `accounts`."""
    s = _decoder.decode(data)
    book = SupplyBook(currency=s.currency, accounts=accounts or SupplyAccounts())
    for item, loc, qty, value in s.stock:
        book.on_hand[(item, loc)] = qty
        book.value[(item, loc)] = value
    for order, received, invoiced, open_value in s.lines:
        book.grni[order.key] = GrniLine(order, received, invoiced, open_value)
    return SupplyState(book=book, requisitions=s.requisitions, unmatched=s.unmatched)


STATE = "supply"  # its name among the store's flow states


def state_of(raw: bytes | None, policy: SupplyPolicy) -> SupplyState:
    """The supply state from its saved bytes, a new one when none was saved (pure: each
    call decodes a state of its own, which a decision may change)."""
    return (
        decode_state(raw, policy.accounts)
        if raw is not None
        else SupplyState(book=SupplyBook(currency=policy.currency, accounts=policy.accounts))
    )


def load(tx: Tx, policy: SupplyPolicy) -> SupplyState:
    """The supply state as the store holds it (held against other writers until the
    transaction ends); a new one when none was saved."""
    return state_of(tx.load_state(STATE), policy)


@contextmanager
def session(tx: Tx, policy: SupplyPolicy) -> Iterator[SupplyState]:
    """The supply state inside the caller's transaction, written back when the block ends
    without an error, so state, journal entries, work items and applied ids commit or roll
    back together."""
    state = load(tx, policy)
    yield state
    tx.save_state(STATE, encode_state(state))


class SupplyConfigError(ConfigurationError, ValueError):
    """The [supply] table is wrong; fix the configuration (exit 2)."""


def _dec(value: object, name: str) -> Decimal:
    try:
        out = Decimal(str(value))
    except ArithmeticError as exc:
        raise SupplyConfigError(f"{name} must be a decimal number, not {value!r}") from exc
    if not out.is_finite() or out < 0:
        raise SupplyConfigError(f"{name} must be a decimal number >= 0, not {value!r}")
    return out


def _sub(raw: dict[str, object], name: str) -> dict[str, object]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise SupplyConfigError(f"supply.{name} must be a table")
    return value


KNOWN = {
    "company",
    "currency",
    "price_tolerance",
    "price_tolerance_per_unit",
    "quantity_tolerance",
    "unmatched_limit_days",
    "accounts",
    "budgets",
    "par_levels",
    "charge_items",
    "service_lines",
    "ap_owner",
    "locations",
}


def policy_from_table(raw: dict[str, object]) -> tuple[SupplyPolicy, int]:
    """The [supply] table of the config as a policy, and the unmatched-invoice age limit."""
    unknown = sorted(set(raw) - KNOWN)
    if unknown:
        raise SupplyConfigError(f"[supply] has no setting {', '.join(unknown)}")
    d = SupplyPolicy()
    pars = {}
    for key, spec in _sub(raw, "par_levels").items():
        if not isinstance(spec, dict) or "|" not in key:
            raise SupplyConfigError(
                f'supply.par_levels.{key!r} must be a table keyed "item|location"'
            )
        missing = {"par", "reorder_point", "cost_center"} - set(spec)
        if missing:
            raise SupplyConfigError(f"supply.par_levels.{key!r} needs {', '.join(sorted(missing))}")
        pars[key] = ParLevel(
            par=_dec(spec["par"], f"{key}.par"),
            reorder_point=_dec(spec["reorder_point"], f"{key}.reorder_point"),
            cost_center=str(spec["cost_center"]),
            unit_price=_dec(spec.get("unit_price", 0), f"{key}.unit_price"),
            company=str(spec.get("company", raw.get("company", d.company))),
        )
    accounts = SupplyAccounts(
        **{
            k: str(v)
            for k, v in _sub(raw, "accounts").items()
            if k in SupplyAccounts.__dataclass_fields__
        }
    )
    tol = Tolerance(
        price_fraction=_dec(raw.get("price_tolerance", "0.02"), "price_tolerance"),
        price_per_unit=_dec(raw.get("price_tolerance_per_unit", "0"), "price_tolerance_per_unit"),
        quantity_fraction=_dec(raw.get("quantity_tolerance", "0"), "quantity_tolerance"),
    )
    ap_owner = str(raw.get("ap_owner", d.ap_owner))
    if ap_owner not in ("hub", "erp"):
        raise SupplyConfigError(f'supply.ap_owner must be "hub" or "erp", not {ap_owner!r}')
    limit = raw.get("unmatched_limit_days", 30)
    if not isinstance(limit, int) or limit < 0:
        raise SupplyConfigError("supply.unmatched_limit_days must be a whole number >= 0")
    return SupplyPolicy(
        par_levels=pars,
        budgets={str(k): _dec(v, f"budgets.{k}") for k, v in _sub(raw, "budgets").items()},
        tolerance=tol,
        accounts=accounts,
        currency=str(raw.get("currency", d.currency)),
        company=str(raw.get("company", d.company)),
        charge_items={str(k): str(v) for k, v in _sub(raw, "charge_items").items()},
        service_lines={str(k): str(v) for k, v in _sub(raw, "service_lines").items()},
        ap_owner=ap_owner,
        locations={str(k): str(v) for k, v in _sub(raw, "locations").items()},
    ), limit
