"""Supply postings, stock and GRNI: examples and properties (issue 8)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.ledger.errors import InvalidAmount, LedgerRefusal
from isthmus.ledger.journal import JournalEntry, Posting, validate_entry
from isthmus.ledger.supply import (
    InsufficientStock,
    NotReceived,
    OrderLine,
    SupplyBook,
    UnknownOrderLine,
)
from isthmus.ledger.supply_match import (
    Tolerance,
    crossed_reorder_point,
    reorder_quantity,
    three_way_match,
    within_budget,
)

D = Decimal


def post(key: str) -> Posting:
    return Posting(
        entry_key=key,
        posted_on=date(2026, 3, 2),
        period="2026-03",
        channel="supply",
        memo=key,
        correlation_id="c-" + key,
        causation_id=key,
    )


def order(po: str = "PO1", line: str = "1", price: str = "12.50") -> OrderLine:
    return OrderLine(
        po=po,
        line=line,
        item="STENT-01",
        location="OR",
        quantity=D(10),
        unit_price=D(price),
        currency="USD",
        company="MAIN",
        cost_center="CC-OR",
    )


def balance(entries: list[JournalEntry], account: str) -> Decimal:
    return sum(
        (ln.debit - ln.credit for e in entries for ln in e.lines if ln.account == account), D(0)
    )


def test_receipt_invoice_consumption_post_the_three_rules() -> None:
    book = SupplyBook()
    book.open_order(order())
    rec = book.receive("PO1", "1", D(4), post("r1"))
    assert [(ln.account, ln.debit, ln.credit) for ln in rec.lines] == [
        ("1300", D("50.00"), D("0.00")),
        ("2050", D("0.00"), D("50.00")),
    ]
    inv = book.invoice("PO1", "1", D(4), D("13.00"), post("i1"))
    assert [(ln.account, ln.debit, ln.credit) for ln in inv.lines] == [
        ("2050", D("50.00"), D("0.00")),
        ("6210", D("2.00"), D("0.00")),
        ("2000", D("0.00"), D("52.00")),
    ]
    use = book.consume(
        "STENT-01",
        "OR",
        D(1),
        company="MAIN",
        cost_center="CC-CATH",
        service_line="Cardiology",
        posting=post("u1"),
    )
    assert use is not None
    assert use.lines[0].account == "6200" and use.lines[0].dims.cost_center == "CC-CATH"
    assert use.lines[0].dims.service_line == "Cardiology"
    assert use.lines[0].debit == D("12.50") and use.lines[1].account == "1300"
    assert book.quantity("STENT-01", "OR") == D(3) and book.open_grni == D(0)


def test_cheaper_invoice_credits_price_variance() -> None:
    book = SupplyBook()
    book.open_order(order())
    book.receive("PO1", "1", D(2), post("r1"))
    inv = book.invoice("PO1", "1", D(2), D("12.00"), post("i1"))
    assert ("6210", D("0.00"), D("1.00")) in [(ln.account, ln.debit, ln.credit) for ln in inv.lines]


def test_refusals_change_nothing() -> None:
    book = SupplyBook()
    book.open_order(order())
    book.receive("PO1", "1", D(2), post("r1"))
    with pytest.raises(InsufficientStock):
        book.consume(
            "STENT-01",
            "OR",
            D(3),
            company="MAIN",
            cost_center="X",
            service_line="",
            posting=post("u1"),
        )
    with pytest.raises(NotReceived):
        book.invoice("PO1", "1", D(3), D("12.50"), post("i1"))
    with pytest.raises(UnknownOrderLine):
        book.receive("PO9", "1", D(1), post("r2"))
    with pytest.raises(InvalidAmount):
        book.receive("PO1", "1", D(0), post("r3"))
    assert book.quantity("STENT-01", "OR") == D(2) and book.open_grni == D("25.00")


def test_three_way_match_tolerances() -> None:
    tol = Tolerance(price_fraction=D("0.02"), price_per_unit=D("0.10"), quantity_fraction=D("0.1"))

    def m(qty: str, price: str, cur: str = "USD") -> list[str]:
        return [
            f.field
            for f in three_way_match(
                ordered_qty=D(10),
                order_price=D("12.50"),
                order_currency="USD",
                uninvoiced_qty=D(4),
                invoice_qty=D(qty),
                invoice_price=D(price),
                invoice_currency=cur,
                tolerance=tol,
            )
        ]

    assert m("4", "12.75") == []  # 2% of 12.50 = 0.25
    assert m("4", "12.76") == ["unit_price"]
    assert m("5", "12.50") == []  # 10% of 10 ordered
    assert m("5.01", "12.50") == ["quantity"]
    assert m("4", "12.50", "EUR") == ["currency"]


def test_replenishment_decisions() -> None:
    assert crossed_reorder_point(D(6), D(5), D(5))
    assert not crossed_reorder_point(D(5), D(4), D(5))  # already below: once only
    assert not crossed_reorder_point(D(8), D(6), D(5))
    assert reorder_quantity(D(20), D(5), D(10)) == D(5)
    assert reorder_quantity(D(20), D(5), D(30)) == D(0)
    assert within_budget(budget=None, committed=D(9e9), amount=D(1))
    assert within_budget(budget=D(100), committed=D(60), amount=D(40))
    assert not within_budget(budget=D(100), committed=D(60), amount=D("40.01"))


qty = st.integers(min_value=0, max_value=30).map(D)
price = st.decimals(min_value=D("0.01"), max_value=D("999.99"), places=2)
op = st.one_of(
    st.tuples(st.just("receive"), st.sampled_from(["1", "2"]), qty, price),
    st.tuples(st.just("invoice"), st.sampled_from(["1", "2"]), qty, price),
    st.tuples(st.just("consume"), st.sampled_from(["1", "2"]), qty, price),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(op, max_size=40), price, price)
def test_stock_and_grni_never_negative_and_grni_is_receipts_less_invoices(
    ops: list[tuple[str, str, Decimal, Decimal]], p1: Decimal, p2: Decimal
) -> None:
    book = SupplyBook()
    book.open_order(
        OrderLine(
            po="PO",
            line="1",
            item="A",
            location="OR",
            quantity=D(50),
            unit_price=p1,
            currency="USD",
            company="MAIN",
        )
    )
    book.open_order(
        OrderLine(
            po="PO",
            line="2",
            item="B",
            location="OR",
            quantity=D(50),
            unit_price=p2,
            currency="USD",
            company="MAIN",
        )
    )
    entries: list[JournalEntry] = []
    for n, (kind, line, q, pr) in enumerate(ops):
        try:
            if kind == "receive":
                e: JournalEntry | None = book.receive("PO", line, q, post(f"r{n}"))
            elif kind == "invoice":
                e = book.invoice("PO", line, q, pr, post(f"i{n}"))
            else:
                e = book.consume(
                    "A" if line == "1" else "B",
                    "OR",
                    q,
                    company="MAIN",
                    cost_center="CC",
                    service_line="SL",
                    posting=post(f"u{n}"),
                )
        except LedgerRefusal:
            e = None
        if e is not None:
            assert validate_entry(e) == []
            entries.append(e)
        for g in book.grni.values():
            assert g.open_value >= 0 and g.uninvoiced >= 0
            if g.uninvoiced == 0:
                assert g.open_value == 0
        for k, v in book.on_hand.items():
            assert v >= 0 and book.value[k] >= 0
            if v == 0:
                assert book.value[k] == 0
    received = sum((e.lines[1].credit for e in entries if e.entry_key.startswith("r")), D(0))
    invoiced = sum((e.lines[0].debit for e in entries if e.entry_key.startswith("i")), D(0))
    assert received - invoiced == book.open_grni == -balance(entries, "2050")
    assert balance(entries, "1300") == sum(book.value.values(), D(0))
