"""The supply decisions without a store (issue 17): what a usage, a void, a request, a
receipt and an invoice line post, open and resolve, from the facts a flow reads."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import msgspec

from isthmus.config import Mappings
from isthmus.flows.decision import Decision, Resolve, SaveState
from isthmus.flows.outcome import DUPLICATE, POSTED, Held
from isthmus.flows.supply_orders import AnnounceMatch, decide_invoice, decide_receipt
from isthmus.flows.supply_rules import Facts, MarkApplied, SupplyRules
from isthmus.flows.supply_state import (
    STATE,
    ParLevel,
    SupplyPolicy,
    SupplyState,
    Taken,
    decode_state,
    encode_state,
)
from isthmus.flows.supply_usage import decide_again, decide_request, decide_usage, decide_void
from isthmus.ledger.journal import JournalEntry, Posting
from isthmus.ledger.periods import FiscalCalendar
from isthmus.ledger.supply import OrderLine, SupplyBook
from isthmus.ledger.supply_match import Tolerance
from isthmus.model.envelope import Envelope, Source
from isthmus.model.events import SupplyConsumed, SupplyRequested, SupplyUsageVoided
from isthmus.ports.supply import InvoiceLine, ReceiptLine

D = Decimal
AT = datetime(2026, 3, 2, 10, tzinfo=UTC)
ORDER = OrderLine("PO1", "1", "STENT-01", "OR", D(10), D("12.50"), "USD", "C100", "CC-OR")


def rules(budget: str | None = None, ap_owner: str = "hub") -> SupplyRules:
    policy = SupplyPolicy(
        par_levels={"STENT-01|OR": ParLevel(D(10), D(4), "CC-OR", D("12.50"))},
        budgets={"CC-OR": D(budget)} if budget else {},
        tolerance=Tolerance(price_fraction=D("0.02")),
        ap_owner=ap_owner,
    )
    maps = Mappings(department_cost_center={"CATH": "CC-CATH"}, facility_company={"MAIN": "C100"})
    return SupplyRules(policy, maps, FiscalCalendar())


def stocked(received: int = 6) -> bytes:
    """The state after PO1 line 1 (10 x 12.50) was ordered and `received` received."""
    book = SupplyBook()
    book.open_order(ORDER)
    if received:
        post = Posting("gr", date(2026, 3, 1), "2026-03", "supply", "gr", "c", "gr")
        book.receive("PO1", "1", D(received), post)
    return encode_state(SupplyState(book=book))


def state_in(d: Decision) -> SupplyState:
    [s] = [w for w in d.writes if isinstance(w, SaveState)]
    assert s.name == STATE
    return decode_state(s.body)


def env(ev: object, event_id: str = "e1") -> Envelope:
    return Envelope(
        event_id=event_id,
        type=type(ev).__name__,
        occurred_at=AT,
        recorded_at=AT,
        source=Source("supply-csv", "f1", "1"),
        correlation_id="c1",
        causation_id="m1",
        key="STENT-01|OR",
        payload=ev,  # type: ignore[arg-type]
    )


def usage(qty: int = 1, dept: str = "CATH", n: int = 1) -> SupplyConsumed:
    return SupplyConsumed(
        usage_id=f"U{n}",
        item="STENT-01",
        location="OR",
        quantity=D(qty),
        used_on=date(2026, 3, 2),
        department=dept,
        facility="MAIN",
    )


def lines(entry: JournalEntry) -> set[tuple[str, Decimal, Decimal, str]]:
    return {(ln.account, ln.debit, ln.credit, ln.dims.cost_center) for ln in entry.lines}


def test_a_usage_posts_supply_expense_at_average_cost_and_reorders_past_the_point() -> None:
    ev = usage(qty=2)
    d = decide_usage(rules(), env(ev), ev, Facts(state=stocked()))
    assert d.outcome is POSTED
    [entry] = d.entries
    assert entry.entry_key == "supply/usage/U1"
    assert lines(entry) == {("6200", D("25.00"), D(0), "CC-CATH"), ("1300", D(0), D("25.00"), "")}
    mark = d.writes[0]
    assert isinstance(mark, MarkApplied) and mark.key == "supply/usage/U1"
    assert msgspec.json.decode(mark.body, type=Taken).value == D("25.00")
    after = state_in(d)
    assert after.book.quantity("STENT-01", "OR") == D(4)
    # par 10 - 4 on hand - 4 still on order: a requisition for 2, within the (absent) budget
    [req] = after.requisitions
    assert (req.quantity, req.amount, req.status) == (D(2), D("25.00"), "pending")
    assert d.open == () and d.resolve == (Resolve("e1", "posted after the fix"),)


def test_a_requisition_over_budget_opens_its_approval_item() -> None:
    ev = usage(qty=2)
    d = decide_usage(rules(budget="20.00"), env(ev), ev, Facts(state=stocked()))
    [item] = d.open
    assert (item.kind, item.queue, item.key, item.event_id) == (
        "budget_approval",
        "procurement",
        "CC-OR",
        "REQ-STENT-01-OR-U1",
    )
    assert state_in(d).requisitions[0].status == "approval"


def test_a_usage_the_hub_cannot_apply_is_held_with_its_event() -> None:
    ev = usage(dept="NOWHERE")
    d = decide_usage(rules(), env(ev), ev, Facts(state=stocked()))
    assert isinstance(d.outcome, Held) and d.outcome.queue == "procurement"
    [item] = d.open
    assert item.kind == "unmapped_department" and item.envelope and d.writes == ()
    too_much = usage(qty=7)
    d = decide_usage(rules(), env(too_much), too_much, Facts(state=stocked()))
    [item] = d.open
    assert item.kind == "insufficient_stock" and "only 6 on hand" in item.detail
    assert d.entries == () and state_in(d).book.quantity("STENT-01", "OR") == D(6)


def test_a_usage_seen_before_is_a_duplicate_unless_it_changed() -> None:
    first = decide_usage(rules(), env(usage(2)), usage(2), Facts(state=stocked()))
    taken = first.writes[0]
    assert isinstance(taken, MarkApplied)
    assert decide_again(env(usage(2)), usage(2), taken.body) == Decision(DUPLICATE)
    changed = decide_again(env(usage(3)), usage(3), taken.body)
    [item] = changed.open
    assert item.kind == "usage_changed" and "applied as 2 x STENT-01" in item.detail


def test_a_void_restocks_and_reverses_the_usage() -> None:
    used = decide_usage(rules(), env(usage(2)), usage(2), Facts(state=stocked()))
    taken = used.writes[0]
    assert isinstance(taken, MarkApplied)
    void = SupplyUsageVoided(usage_id="U1", voided_on=date(2026, 3, 3))
    d = decide_void(rules(), env(void, "e2"), void, Facts(None, taken.body, stocked(4)))
    [back] = d.entries
    assert back.entry_key == "supply/usage/U1/void"
    assert lines(back) == {("6200", D(0), D("25.00"), "CC-CATH"), ("1300", D("25.00"), D(0), "")}
    assert state_in(d).book.quantity("STENT-01", "OR") == D(6)
    early = decide_void(rules(), env(void), void, Facts())
    assert early.writes == (
        MarkApplied("supply/void/U1"),
        MarkApplied("supply/usage/U1", b"voided"),
    )
    assert decide_void(rules(), env(void), void, Facts(applied=b"")) == Decision(DUPLICATE)


def test_a_request_makes_a_requisition_at_the_estimated_price() -> None:
    ev = SupplyRequested(
        request_id="R1",
        item="STENT-01",
        location="OR",
        quantity=D(3),
        requested_on=date(2026, 3, 2),
        department="ICU",  # no cost center of its own: the par level's pays
    )
    d = decide_request(rules(budget="30.00"), env(ev), ev, Facts(state=stocked(0)))
    assert isinstance(d.outcome, Held) and "exceeds the budget of cost center" in d.outcome.reason
    [req] = state_in(d).requisitions
    assert (req.req_id, req.amount, req.cost_center) == ("REQ-R1", D("37.50"), "CC-OR")
    assert MarkApplied("supply/request/R1") in d.writes


def test_a_receipt_posts_inventory_against_grni_at_the_order_price() -> None:
    r = ReceiptLine("GR2", "PO1", "1", D(2), date(2026, 3, 2))
    d = decide_receipt(rules(), r, "c-gr2", Facts(state=stocked()))
    [entry] = d.entries
    assert lines(entry) == {("1300", D("25.00"), D(0), ""), ("2050", D(0), D("25.00"), "")}
    assert state_in(d).book.quantity("STENT-01", "OR") == D(8)
    unknown = ReceiptLine("GR3", "PO9", "1", D(2), date(2026, 3, 2))
    held = decide_receipt(rules(), unknown, "c-gr3", Facts(state=stocked()))
    [item] = held.open
    assert (item.kind, item.key, item.event_id) == (
        "receipt_refused",
        "PO9/1",
        "supply/receipt/GR3",
    )
    assert decide_receipt(rules(), r, "c", Facts(applied=b"")) == Decision(DUPLICATE)


def invoice(qty: int = 6, price: str = "12.60") -> InvoiceLine:
    return InvoiceLine("INV1", "PO1", "1", D(qty), D(price), "USD", date(2026, 3, 4), supplier="V1")


def test_a_matched_invoice_clears_grni_into_ap_with_the_variance() -> None:
    d = decide_invoice(rules(), invoice(), "c-inv", Facts(state=stocked()))
    assert d.outcome is POSTED
    [entry] = d.entries
    assert lines(entry) == {
        ("2050", D("75.00"), D(0), ""),
        ("6210", D("0.60"), D(0), "CC-OR"),
        ("2000", D(0), D("75.60"), ""),
    }
    assert any(isinstance(w, AnnounceMatch) and w.order_price == D("12.50") for w in d.writes)
    mirror, variance = decide_invoice(
        rules(ap_owner="erp"), invoice(), "c-inv", Facts(state=stocked())
    ).entries
    assert (mirror.entry_key, variance.entry_key) == (
        "supply/invoice/INV1/ap",
        "supply/invoice/INV1",
    )


def test_a_mismatch_posts_nothing_and_waits_once_in_procurement() -> None:
    d = decide_invoice(rules(), invoice(price="14.00"), "c-inv", Facts(state=stocked()))
    assert isinstance(d.outcome, Held) and d.entries == ()
    [item] = d.open
    assert (item.kind, item.queue, item.event_id) == (
        "invoice_mismatch",
        "procurement",
        "supply/invoice/INV1",
    )
    after = state_in(d)
    assert [u.invoice_id for u in after.unmatched] == ["INV1"]
    again = decide_invoice(rules(), invoice(price="14.00"), "c", Facts(state=encode_state(after)))
    assert again.open == ()
    fixed = decide_invoice(rules(), invoice(), "c", Facts(state=encode_state(after)))
    assert fixed.resolve == (Resolve("supply/invoice/INV1", "matched after the receipt or fix"),)
    assert state_in(fixed).unmatched[0].status == "resolved"
