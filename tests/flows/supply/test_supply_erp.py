"""Tryton procurement records through the supply flow, with a recorded fake RPC (issue 8).

`connectors/erp_tryton_supply.py` is run here against the shapes trytond's search_read
answers with; against a live Tryton in test_supply_tryton_live.py and, the whole loop
(requisition -> purchase request -> purchase order -> shipment -> invoice posted in
Tryton), in test_supply_tryton_e2e.py.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from isthmus.config import Mappings
from isthmus.connectors.erp_tryton_supply import TrytonSupply
from isthmus.flows.clock import FixedClock
from isthmus.flows.supply import SupplyFlow
from isthmus.flows.supply_state import Requisition, SupplyPolicy, session
from isthmus.ledger.periods import FiscalCalendar
from isthmus.store.memory import MemoryStore

D = Decimal


class FakeRpc:
    def __init__(self, answers: dict[tuple[str, str], Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str, tuple[Any, ...]]] = []

    def model(
        self, model: str, method: str, *args: Any, context: dict[str, Any] | None = None
    ) -> Any:
        self.calls.append((model, method, args))
        return self.answers.get((model, method))


def _line(price: str) -> dict[str, Any]:
    return {
        "id": 42,
        "quantity": 10.0,
        "unit_price": D(price),
        "product.": {"code": "STENT-01"},
        "purchase.": {"number": "PO-7", "currency.": {"code": "USD"}, "warehouse.": {"code": "WH"}},
    }


def erp(invoice_price: str) -> FakeRpc:
    return FakeRpc(
        {
            ("purchase.line", "search_read"): [_line("12.50")],
            ("stock.move", "search_read"): [
                {
                    "id": 7,
                    "origin": "purchase.line,42",
                    "quantity": 10.0,
                    "effective_date": date(2026, 3, 3),
                },
                {
                    "id": 8,
                    "origin": "purchase.line,99",
                    "quantity": 1.0,
                    "effective_date": date(2026, 3, 3),
                },
            ],
            ("account.invoice.line", "search_read"): [
                {
                    "id": 3,
                    "invoice": 1,
                    "origin": "purchase.line,42",
                    "quantity": 10.0,
                    "unit_price": D(invoice_price),
                    "invoice.": {
                        "number": "SI-1",
                        "invoice_date": "2026-03-04",
                        "currency.": {"code": "USD"},
                    },
                }
            ],
            ("purchase.requisition", "create"): [5],
        }
    )


def sync(rpc: FakeRpc) -> tuple[dict[str, int], MemoryStore, SupplyFlow]:
    tryton = TrytonSupply(rpc, company="C100", locations={"WH": "OR"})
    orders = tryton.order_lines()
    numbers = {o.line: o.po for o in orders}
    store = MemoryStore()
    flow = SupplyFlow(
        store,
        SupplyPolicy(),
        Mappings({}, {}, {}),
        FiscalCalendar(),
        clock=FixedClock(1_800_000_000.0),
    )
    with store.transaction() as tx:
        got = flow.sync(
            tx,
            orders=orders,
            receipts=tryton.receipts(numbers),
            invoices=tryton.invoice_lines(numbers),
        ).counts
        again = flow.sync(
            tx,
            orders=orders,
            receipts=tryton.receipts(numbers),
            invoices=tryton.invoice_lines(numbers),
        ).counts
    assert set(again) <= {"duplicate", "held"}
    return got, store, flow


def balances(store: MemoryStore) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for ln in store.journal_lines():
        out[ln.account] = out.get(ln.account, D(0)) + ln.debit - ln.credit
    return out


def test_erp_order_receipt_and_matched_invoice_post_and_reconcile_to_zero_grni() -> None:
    got, store, flow = sync(erp("12.50"))
    assert got == {"posted": 2}
    assert balances(store) == {"1300": D("125.00"), "2050": D("0.00"), "2000": D("-125.00")}
    state = flow.snapshot()
    assert state.book.open_grni == 0 and state.book.quantity("STENT-01", "OR") == 10


def test_erp_invoice_beyond_tolerance_is_a_work_item_and_posts_nothing() -> None:
    got, store, _ = sync(erp("14.00"))
    assert got == {"posted": 1, "held": 1}
    assert "2000" not in balances(store)
    [item] = store.work_items()
    assert (item.kind, item.queue) == ("invoice_mismatch", "procurement")
    assert "unit_price" in item.detail


def test_requisition_is_created_and_sent_to_waiting() -> None:
    rpc = erp("12.50")
    rid = TrytonSupply(rpc, company="C100").create_requisition(
        Requisition(
            req_id="REQ-1",
            item="STENT-01",
            location="OR",
            quantity=D(4),
            cost_center="CC-OR",
            amount=D("50.00"),
            created_on=date(2026, 3, 2),
        ),
        employee=1,
        warehouse=2,
        product=3,
        unit=4,
        currency=5,
    )
    assert rid == "5"
    create, wait = rpc.calls
    assert create[:2] == ("purchase.requisition", "create")
    line = create[2][0][0]["lines"][0][1][0]
    assert line["quantity"] == 4.0 and line["unit_price"] == D("12.50")
    assert wait == ("purchase.requisition", "wait", ([5],))
    assert all(
        m not in ("product.product", "party.party") or meth == "search_read"
        for m, meth, _ in rpc.calls
    )  # masters are read, never written


def test_push_requisitions_reads_the_masters_and_marks_sent() -> None:
    rpc = erp("12.50")
    rpc.answers.update(
        {
            ("product.product", "search_read"): [{"id": 3, "purchase_uom": 4, "default_uom": 9}],
            ("stock.location", "search_read"): [{"id": 2}],
            ("company.employee", "search_read"): [{"id": 1, "company": 1}],
            ("company.company", "search_read"): [{"id": 1, "currency": 5}],
        }
    )
    store = MemoryStore()
    flow = SupplyFlow(
        store,
        SupplyPolicy(),
        Mappings({}, {}, {}),
        FiscalCalendar(),
        clock=FixedClock(1_800_000_000.0),
    )
    with store.transaction() as tx, session(tx, flow.policy) as state:
        state.requisitions.append(
            Requisition(
                req_id="REQ-1",
                item="STENT-01",
                location="OR",
                quantity=D(4),
                cost_center="CC-OR",
                amount=D("50.00"),
                created_on=date(2026, 3, 2),
            )
        )
    got = flow.push_requisitions(TrytonSupply(rpc, company="C100").push_requisition)
    assert got == {"sent": ["REQ-1"], "refused": [], "stopped": ""}
    assert flow.pending_requisitions() == []
    create = next(c for c in rpc.calls if c[:2] == ("purchase.requisition", "create"))
    values = create[2][0][0]
    assert (values["employee"], values["warehouse"], values["currency"]) == (1, 2, 5)
    assert values["lines"][0][1][0]["unit"] == 4
    written = {(m, meth) for m, meth, _ in rpc.calls if meth not in ("search_read", "read")}
    assert written == {("purchase.requisition", "create"), ("purchase.requisition", "wait")}


def test_an_unknown_item_is_refused_and_stays_pending() -> None:
    rpc = erp("12.50")
    rpc.answers[("product.product", "search_read")] = []
    store = MemoryStore()
    flow = SupplyFlow(
        store,
        SupplyPolicy(),
        Mappings({}, {}, {}),
        FiscalCalendar(),
        clock=FixedClock(1_800_000_000.0),
    )
    with store.transaction() as tx, session(tx, flow.policy) as state:
        state.requisitions.append(
            Requisition(
                req_id="REQ-1",
                item="NOPE",
                location="OR",
                quantity=D(1),
                cost_center="CC",
                amount=D("1.00"),
                created_on=date(2026, 3, 2),
            )
        )
    got = flow.push_requisitions(TrytonSupply(rpc, company="C100").push_requisition)
    assert got["sent"] == [] and "no product.product" in got["refused"][0]
    assert [r.req_id for r in flow.pending_requisitions()] == ["REQ-1"]
