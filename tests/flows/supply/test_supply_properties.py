"""Properties of the supply flow through the hub's journal (issue 8): whatever order usages,
receipts and invoices arrive in (resends and refusals included), inventory and GRNI in the
ledger never go negative, GRNI equals receipts less invoices cleared, every entry balances."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.config import Mappings
from isthmus.flows.clock import FixedClock
from isthmus.flows.supply import SupplyFlow
from isthmus.flows.supply_state import Lineage, SupplyPolicy
from isthmus.ledger.journal import validate_entry
from isthmus.ledger.periods import FiscalCalendar
from isthmus.ledger.supply import OrderLine
from isthmus.model.events import SupplyConsumed
from isthmus.store.memory import MemoryStore
from tests.flows.supply.test_supply_flow import env

D = Decimal
qty = st.integers(min_value=1, max_value=8).map(D)
price = st.decimals(min_value=D("0.01"), max_value=D("99.99"), places=2)
step = st.one_of(
    st.tuples(st.just("use"), st.integers(0, 6), qty, st.just(D(0))),
    st.tuples(st.just("receive"), st.integers(0, 6), qty, st.just(D(0))),
    st.tuples(st.just("invoice"), st.integers(0, 6), qty, price),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(step, max_size=25), price, st.sampled_from(["hub", "erp"]))
def test_ledger_balances_never_go_negative_through_the_hub(
    steps: list[tuple[str, int, Decimal, Decimal]], order_price: Decimal, ap_owner: str
) -> None:
    """Also where the ERP owns AP: the mirror and variance entries add up to the same."""
    store = MemoryStore()
    flow = SupplyFlow(
        store,
        SupplyPolicy(ap_owner=ap_owner),
        Mappings({"CATH": "CC-CATH"}, {}, {}),
        FiscalCalendar(),
        clock=FixedClock(1_800_000_000.0),
    )
    with store.transaction() as tx:
        flow.open_order(
            tx,
            OrderLine(
                po="PO",
                line="1",
                item="A",
                location="OR",
                quantity=D(40),
                unit_price=order_price,
                currency="USD",
                company="C100",
            ),
        )
    for kind, n, q, p in steps:  # n repeats: the same id twice is a resend
        with store.transaction() as tx:
            if kind == "use":
                ev = SupplyConsumed(
                    usage_id=f"U{n}",
                    item="A",
                    location="OR",
                    quantity=q,
                    used_on=date(2026, 3, 2),
                    department="CATH",
                )
                flow.consume(tx, env(ev), ev)
            elif kind == "receive":
                flow.receive(
                    tx,
                    po="PO",
                    line="1",
                    quantity=q,
                    received_on=date(2026, 3, 1),
                    lineage=Lineage(f"GR{n}", "c"),
                )
            else:
                flow.invoice(
                    tx,
                    po="PO",
                    line="1",
                    quantity=q,
                    unit_price=p,
                    currency="USD",
                    invoiced_on=date(2026, 3, 3),
                    lineage=Lineage(f"INV{n}", "c"),
                )
        bal: dict[str, Decimal] = {}
        for line in store.journal_lines():
            bal[line.account] = bal.get(line.account, D(0)) + line.debit - line.credit
        assert bal.get("1300", D(0)) >= 0  # inventory: a debit balance or nothing
        assert bal.get("2050", D(0)) <= 0  # GRNI: a credit balance or nothing
    entries = store.entries()
    assert all(validate_entry(e) == [] for e in entries)
    received = sum((ln.credit for e in entries for ln in e.lines if ln.account == "2050"), D(0))
    cleared = sum((ln.debit for e in entries for ln in e.lines if ln.account == "2050"), D(0))
    state = flow.snapshot()
    assert received - cleared == state.book.open_grni
    assert (
        -sum((ln.debit - ln.credit for ln in store.journal_lines() if ln.account == "2050"), D(0))
        == state.book.open_grni
    )
    keys = [e.entry_key for e in entries]
    assert len(keys) == len(set(keys))  # nothing posted twice
