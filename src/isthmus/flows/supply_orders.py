"""Goods receipts and supplier invoice lines against purchase-order lines, decided without
the store (issue 17, issue 8).

* A goods receipt against an order line posts DR inventory / CR GRNI at the order price,
  keyed `supply/receipt/<receipt id>`; one the book refuses (an unknown line, a quantity
  not above zero, a closed period) is a `receipt_refused` work item in queue `procurement`.
* A supplier invoice line is three-way matched (order price, received quantity, `[supply]`
  tolerances). A match posts DR GRNI / CR AP with the price variance to its own account,
  keyed `supply/invoice/<invoice id>`, tells the routes (`InvoiceMatched`, issue 18) and
  resolves what held the line before; a mismatch posts nothing and becomes an
  `invoice_mismatch` work item plus an `Unmatched` record that ages in the report until an
  invoice that matches arrives. Where the ERP owns AP (`[supply] ap_owner = "erp"`) the
  matched entry is split (`ledger.supply.split_erp_ap`): the AP part mirrors the invoice
  the ERP posts once the hub says it matched, and only the variance is exported.

Each function takes the facts the flow read (`supply_rules.Facts`) and returns a
`flows.decision.Decision`; it changes only a state of its own (`supply_state.state_of`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from isthmus.flows.decision import Decision, Resolve
from isthmus.flows.outcome import DUPLICATE, POSTED, Held
from isthmus.flows.status_events import invoice_matched
from isthmus.flows.supply_rules import (
    CHANNEL,
    QUEUE,
    Facts,
    MarkApplied,
    SupplyRules,
    saved,
    work_item,
)
from isthmus.flows.supply_state import SupplyState, Unmatched, state_of
from isthmus.ledger.errors import LedgerRefusal
from isthmus.ledger.journal import JournalEntry
from isthmus.ledger.supply import split_erp_ap
from isthmus.ledger.supply_match import three_way_match
from isthmus.model.status import StatusEvent
from isthmus.ports.supply import InvoiceLine, ReceiptLine
from isthmus.store.ports import Tx

StatusSink = Callable[[Tx, Sequence[StatusEvent]], object]


@dataclass(frozen=True, slots=True)
class AnnounceMatch:
    """Tell the routes that an invoice line matched (`InvoiceMatched`, issue 18), in the
    transaction that posts the match, stamped with the `now` it is written at; nothing
    when no routes listen (`sink` None)."""

    sink: StatusSink | None
    invoice: InvoiceLine
    order_price: Decimal  # the order line's unit price

    def write(self, tx: Tx, now: float) -> bool:
        if self.sink is not None:
            i = self.invoice
            self.sink(
                tx,
                [
                    invoice_matched(
                        invoice_id=i.invoice_id,
                        po=i.po,
                        line=i.line,
                        supplier=i.supplier,
                        quantity=i.quantity,
                        unit_price=i.unit_price,
                        order_price=self.order_price,
                        currency=i.currency,
                        invoiced_on=i.invoiced_on,
                        channel=CHANNEL,
                        at=now,
                    )
                ],
            )
        return True


def decide_receipt(
    rules: SupplyRules, r: ReceiptLine, correlation_id: str, facts: Facts
) -> Decision:
    """A goods receipt: posted, a duplicate, or held in a `receipt_refused` work item."""
    applied_id = f"supply/receipt/{r.receipt_id}"
    if facts.applied is not None:
        return Decision(DUPLICATE)
    state = state_of(facts.state, rules.policy)
    try:
        entry = state.book.receive(
            r.po,
            r.line,
            r.quantity,
            rules.posting(
                applied_id,
                r.received_on,
                f"receipt {r.receipt_id} {r.po}/{r.line}",
                correlation_id,
                applied_id,
            ),
        )
    except LedgerRefusal as exc:
        item = work_item(
            "receipt_refused", f"{r.po}/{r.line}", applied_id, correlation_id, str(exc)
        )
        return Decision(Held(QUEUE, str(exc)), open=(item,), writes=(saved(state),))
    return Decision(POSTED, writes=(MarkApplied(applied_id), saved(state)), entries=(entry,))


def findings_of(rules: SupplyRules, state: SupplyState, i: InvoiceLine) -> list[str]:
    """Why the invoice line fails the three-way match against its order line (empty: it
    matches)."""
    g = state.book.grni.get((i.po, i.line))
    if g is None:
        return [f"order line {i.po}/{i.line} is not known"]
    return [
        f"{f.field}: {f.detail}"
        for f in three_way_match(
            ordered_qty=g.order.quantity,
            order_price=g.order.unit_price,
            order_currency=g.order.currency,
            uninvoiced_qty=g.uninvoiced,
            invoice_qty=i.quantity,
            invoice_price=i.unit_price,
            invoice_currency=i.currency,
            tolerance=rules.policy.tolerance,
        )
    ]


def decide_invoice(
    rules: SupplyRules,
    i: InvoiceLine,
    correlation_id: str,
    facts: Facts,
    sink: StatusSink | None = None,
) -> Decision:
    """A supplier invoice line: posted when it matches (module docstring), a duplicate, or
    held (a mismatch: its `invoice_mismatch` work item opens once); `sink` hears of the
    match."""
    applied_id = f"supply/invoice/{i.invoice_id}"
    if facts.applied is not None:
        return Decision(DUPLICATE)
    state = state_of(facts.state, rules.policy)
    g = state.book.grni.get((i.po, i.line))
    order_price = g.order.unit_price if g is not None else Decimal(0)
    findings = findings_of(rules, state, i)
    entry = None
    if not findings:
        try:
            entry = state.book.invoice(
                i.po,
                i.line,
                i.quantity,
                i.unit_price,
                rules.posting(
                    applied_id,
                    i.invoiced_on,
                    f"invoice {i.invoice_id} {i.po}/{i.line}",
                    correlation_id,
                    applied_id,
                ),
            )
        except LedgerRefusal as exc:
            findings = [str(exc)]
    if entry is None:
        return _mismatch(state, i, applied_id, correlation_id, findings)
    entries: tuple[JournalEntry, ...] = (entry,)
    if rules.policy.ap_owner == "erp":
        mirror, variance = split_erp_ap(entry, state.book.accounts)
        entries = (mirror,) if variance is None else (mirror, variance)
    resolved = False
    for u in state.unmatched:
        if u.invoice_id == i.invoice_id and u.status == "open":
            u.status, resolved = "resolved", True
    told = () if g is None else (AnnounceMatch(sink, i, order_price),)
    return Decision(
        POSTED,
        writes=(MarkApplied(applied_id), *told, saved(state)),
        entries=entries,
        resolve=(Resolve(applied_id, "matched after the receipt or fix"),) if resolved else (),
    )


def _mismatch(
    state: SupplyState, i: InvoiceLine, applied_id: str, correlation_id: str, findings: list[str]
) -> Decision:
    """Held: the line joins the unmatched invoices, with its work item, the first time."""
    detail = "; ".join(findings)
    if any(u.invoice_id == i.invoice_id for u in state.unmatched):
        return Decision(Held(QUEUE, detail), writes=(saved(state),))
    state.unmatched.append(
        Unmatched(
            invoice_id=i.invoice_id,
            po=i.po,
            line=i.line,
            quantity=i.quantity,
            unit_price=i.unit_price,
            invoiced_on=i.invoiced_on,
            findings=findings,
        )
    )
    item = work_item("invoice_mismatch", f"{i.po}/{i.line}", applied_id, correlation_id, detail)
    return Decision(Held(QUEUE, detail), open=(item,), writes=(saved(state),))
