"""The supply flow: consumption, replenishment, receipt, three-way match (issue 8)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

from msgspec import structs

from isthmus.config import Mappings
from isthmus.flows.clock import FixedClock
from isthmus.flows.export import seal_batches
from isthmus.flows.supply import SupplyFlow
from isthmus.flows.supply_state import Lineage, ParLevel, SupplyPolicy
from isthmus.ledger.periods import FiscalCalendar
from isthmus.ledger.supply import ERP_AP_CHANNEL, OrderLine
from isthmus.ledger.supply_match import Tolerance
from isthmus.model.envelope import Envelope, Source
from isthmus.model.events import SupplyConsumed, SupplyRequested, SupplyUsageVoided
from isthmus.recon.erp import hub_balances
from isthmus.store.memory import MemoryStore

D = Decimal
NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)


def env(ev: SupplyConsumed) -> Envelope:
    return Envelope(
        event_id=f"e-{ev.usage_id}",
        type="SupplyConsumed",
        occurred_at=NOW,
        recorded_at=NOW,
        source=Source("supply-csv", ev.usage_id, "1"),
        correlation_id=f"c-{ev.usage_id}",
        causation_id="m1",
        key=f"{ev.item}|{ev.location}",
        payload=ev,
    )


def usage(n: int, qty: int = 1, dept: str = "CATH") -> SupplyConsumed:
    return SupplyConsumed(
        usage_id=f"U{n}",
        item="STENT-01",
        location="OR",
        quantity=D(qty),
        used_on=date(2026, 3, 2),
        department=dept,
        facility="MAIN",
        account_number="A100",
        charge_id=f"FT{n}",
    )


def flow(budget: str | None = None) -> tuple[SupplyFlow, MemoryStore]:
    policy = SupplyPolicy(
        par_levels={
            "STENT-01|OR": ParLevel(
                par=D(10), reorder_point=D(4), cost_center="CC-OR", unit_price=D("12.50")
            )
        },
        budgets={"CC-OR": D(budget)} if budget else {},
        tolerance=Tolerance(price_fraction=D("0.02")),
    )
    maps = Mappings(
        department_cost_center={"CATH": "CC-CATH"},
        facility_company={"MAIN": "C100"},
        charge_codes={},
    )
    store = MemoryStore()
    f = SupplyFlow(store, policy, maps, FiscalCalendar(), clock=FixedClock(NOW.timestamp()))
    with store.transaction() as tx:
        f.open_order(
            tx,
            OrderLine(
                po="PO1",
                line="1",
                item="STENT-01",
                location="OR",
                quantity=D(10),
                unit_price=D("12.50"),
                currency="USD",
                company="C100",
                cost_center="CC-OR",
            ),
        )
    return f, store


def stock(f: SupplyFlow, store: MemoryStore, qty: int = 6) -> None:
    with store.transaction() as tx:
        assert (
            f.receive(
                tx,
                po="PO1",
                line="1",
                quantity=D(qty),
                received_on=date(2026, 3, 1),
                lineage=Lineage("GR1", "c-gr1"),
            )
            == "posted"
        )


def balances(store: MemoryStore) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for ln in store.journal_lines():
        out[ln.account] = out.get(ln.account, D(0)) + ln.debit - ln.credit
    return out


def test_consumption_posts_to_the_cost_center_and_crossing_reorder_requisitions() -> None:
    f, store = flow()
    stock(f, store)
    with store.transaction() as tx:
        assert f.consume(tx, env(usage(1)), usage(1)) == "posted"
        assert f.consume(tx, env(usage(1)), usage(1)) == "duplicate"
        assert f.pending_requisitions() == []
        assert f.consume(tx, env(usage(2)), usage(2)) == "posted"  # 6 -> 4: crosses
    reqs = f.pending_requisitions()
    # par 10 - 4 on hand - 4 still on order (PO1: 10 ordered, 6 received)
    assert [(r.item, r.quantity, r.cost_center) for r in reqs] == [("STENT-01", D(2), "CC-OR")]
    assert balances(store) == {"1300": D("50.00"), "2050": D("-75.00"), "6200": D("25.00")}
    expense = [ln for ln in store.journal_lines() if ln.account == "6200"]
    assert {ln.dims.cost_center for ln in expense} == {"CC-CATH"}
    with store.transaction() as tx:
        assert f.consume(tx, env(usage(3)), usage(3)) == "posted"  # 4 -> 3: already below
    assert len(f.pending_requisitions()) == 1
    f.mark_sent(reqs[0].req_id, "PR-7")
    assert f.pending_requisitions() == []


def test_budget_breach_holds_the_requisition_for_approval() -> None:
    f, store = flow(budget="20.00")
    stock(f, store)
    with store.transaction() as tx:
        f.consume(tx, env(usage(1, qty=2)), usage(1, qty=2))
    assert f.pending_requisitions() == []
    items = store.work_items()
    assert [(w.kind, w.queue) for w in items] == [("budget_approval", "procurement")]
    assert "exceeds the budget of cost center CC-OR" in items[0].detail
    with store.transaction() as tx:
        assert f.approve(tx, items[0].event_id)
    assert store.work_items(status="open") == []
    assert [r.quantity for r in f.pending_requisitions()] == [D(2)]


def test_more_than_on_hand_is_a_work_item_and_changes_nothing() -> None:
    f, store = flow()
    stock(f, store, qty=1)
    with store.transaction() as tx:
        assert f.consume(tx, env(usage(1, qty=2)), usage(1, qty=2)) == "held"
        assert f.consume(tx, env(usage(2, dept="NOPE")), usage(2, dept="NOPE")) == "held"
    assert [w.kind for w in store.work_items()] == ["insufficient_stock", "unmapped_department"]
    assert balances(store)["1300"] == D("12.50")


def test_the_worker_s_now_stamps_what_a_usage_opens_else_the_flow_clock_does() -> None:
    f, store = flow()
    stock(f, store, qty=1)
    with store.transaction() as tx:  # the worker passes its `now` (issue 17)
        assert f.consume(tx, env(usage(1, qty=2)), usage(1, qty=2), 1234.5) == "held"
        assert f.consume(tx, env(usage(2, qty=2)), usage(2, qty=2)) == "held"  # the CLI's path
    stamps = [w.created_at for w in store.work_items()]
    assert stamps == [1234.5, f.clock.now()] and f.clock.now() != 1234.5


def test_matched_invoice_posts_to_ap_and_a_price_variance_beyond_tolerance_posts_nothing() -> None:
    f, store = flow()
    stock(f, store, qty=4)
    with store.transaction() as tx:
        held = f.invoice(
            tx,
            po="PO1",
            line="1",
            quantity=D(4),
            unit_price=D("13.00"),
            currency="USD",
            invoiced_on=date(2026, 3, 5),
            lineage=Lineage("INV-1", "c-inv1"),
        )
    assert held == "held"
    assert balances(store) == {"1300": D("50.00"), "2050": D("-50.00")}
    assert [(w.kind, w.queue) for w in store.work_items()] == [("invoice_mismatch", "procurement")]
    with store.transaction() as tx:
        assert (
            f.invoice(
                tx,
                po="PO1",
                line="1",
                quantity=D(4),
                unit_price=D("12.60"),
                currency="USD",
                invoiced_on=date(2026, 3, 6),
                lineage=Lineage("INV-2", "c-inv2"),
            )
            == "posted"
        )
        assert (
            f.invoice(
                tx,
                po="PO1",
                line="1",
                quantity=D(4),
                unit_price=D("12.60"),
                currency="USD",
                invoiced_on=date(2026, 3, 6),
                lineage=Lineage("INV-2", "c-inv2"),
            )
            == "duplicate"
        )
    assert balances(store) == {
        "1300": D("50.00"),
        "2050": D("0.00"),
        "6210": D("0.40"),
        "2000": D("-50.40"),
    }


def test_a_rolled_back_transaction_takes_the_stock_back_and_the_retry_posts_once() -> None:
    f, store = flow()
    stock(f, store)

    class Crash(Exception):
        pass

    try:
        with store.transaction() as tx:
            assert f.consume(tx, env(usage(1)), usage(1)) == "posted"
            raise Crash  # the hub's transaction fails after the supply flow applied it
    except Crash:
        pass
    assert "6200" not in balances(store)
    assert f.snapshot().book.quantity("STENT-01", "OR") == D(6)  # state rolled back too
    with store.transaction() as tx:
        assert f.consume(tx, env(usage(1)), usage(1)) == "posted"
    assert balances(store)["6200"] == D("12.50")
    assert f.snapshot().book.quantity("STENT-01", "OR") == D(5)
    with store.transaction() as tx:
        f.consume(tx, env(usage(1)), usage(1))
    assert balances(store)["6200"] == D("12.50")  # never twice


def test_an_invoice_held_for_a_missing_receipt_posts_once_the_goods_arrive() -> None:
    f, store = flow()
    stock(f, store, qty=2)
    args = {
        "po": "PO1",
        "line": "1",
        "quantity": D(4),
        "unit_price": D("12.50"),
        "currency": "USD",
        "invoiced_on": date(2026, 3, 5),
        "lineage": Lineage("INV-3", "c-inv3"),
    }
    with store.transaction() as tx:
        assert f.invoice(tx, **args) == "held"  # type: ignore[arg-type]
    assert [w.status for w in store.work_items()] == ["open"]
    with store.transaction() as tx:
        f.receive(
            tx,
            po="PO1",
            line="1",
            quantity=D(2),
            received_on=date(2026, 3, 6),
            lineage=Lineage("GR2", "c-gr2"),
        )
        assert f.invoice(tx, **args) == "posted"  # type: ignore[arg-type]
    assert [w.status for w in store.work_items()] == ["resolved"]
    assert balances(store)["2050"] == D("0.00")


def test_where_the_erp_owns_ap_the_mirror_is_kept_and_only_the_variance_is_exported() -> None:
    f, store = flow()
    f.policy = replace(f.policy, ap_owner="erp")
    stock(f, store, qty=4)
    with store.transaction() as tx:
        assert (
            f.invoice(
                tx,
                po="PO1",
                line="1",
                quantity=D(4),
                unit_price=D("12.60"),
                currency="USD",
                invoiced_on=date(2026, 3, 6),
                lineage=Lineage("INV-2", "c-inv2"),
            )
            == "posted"
        )
    assert balances(store) == {
        "1300": D("50.00"),
        "2050": D("0.00"),
        "6210": D("0.40"),
        "2000": D("-50.40"),
    }  # the same as when the hub owns AP
    by_channel = {
        e.channel: e for e in store.entries() if e.entry_key.startswith("supply/invoice/")
    }
    mirror = by_channel[ERP_AP_CHANNEL]
    assert {(ln.account, ln.debit, ln.credit) for ln in mirror.lines} == {
        ("2050", D("50.40"), D("0.00")),
        ("2000", D("0.00"), D("50.40")),
    }  # the ERP's move
    assert {(ln.account, ln.debit, ln.credit) for ln in by_channel["supply"].lines} == {
        ("6210", D("0.40"), D("0.00")),
        ("2050", D("0.00"), D("0.40")),
    }
    sealed = seal_batches(store, policy_of=lambda _: "detailed", now=1.0)
    exported = {x.account for b in sealed for x in b.lines}
    assert "2000" not in exported and "6210" in exported
    assert store.unbatched_channels() == [ERP_AP_CHANNEL]
    total, unsealed = hub_balances(store, None)
    assert total[("2000", "")] == D("-50.40") and unsealed == {}  # not "in transit"


def test_a_department_request_is_a_budget_checked_requisition_once() -> None:
    f, store = flow(budget="100.00")
    ask = SupplyRequested(
        request_id="SR-1",
        item="STENT-01",
        location="OR",
        quantity=D(6),
        requested_on=date(2026, 3, 2),
    )  # its par rule pays
    e = Envelope(
        event_id="e-SR-1",
        type="SupplyRequested",
        occurred_at=NOW,
        recorded_at=NOW,
        source=Source("fhir", "SR-1", "1"),
        correlation_id="c-SR-1",
        causation_id="m1",
        key="STENT-01|OR",
        payload=ask,
    )
    with store.transaction() as tx:
        assert f.request(tx, e, ask) == "posted"
        assert f.request(tx, e, ask) == "duplicate"
    [req] = f.pending_requisitions()
    assert (req.req_id, req.quantity, req.cost_center, req.amount) == (
        "REQ-SR-1",
        D(6),
        "CC-OR",
        D("75.00"),
    )
    big = structs.replace(ask, request_id="SR-2", quantity=D(4))
    with store.transaction() as tx:  # 75.00 + 50.00 is over the 100.00 budget
        assert f.request(tx, structs.replace(e, event_id="e-SR-2", payload=big), big) == "held"
    assert [w.kind for w in store.work_items()] == ["budget_approval"]
    nobody = structs.replace(ask, request_id="SR-3", item="GAUZE", department="NOPE")
    with store.transaction() as tx:
        got = f.request(tx, structs.replace(e, event_id="e-SR-3", payload=nobody), nobody)
    assert got == "held"
    assert store.work_items()[-1].kind == "unmapped_department"


def test_a_rejected_requisition_gives_its_budget_back_and_is_never_sent() -> None:
    f, store = flow(budget="100.00")
    ask = SupplyRequested(
        request_id="SR-1",
        item="STENT-01",
        location="OR",
        quantity=D(6),
        requested_on=date(2026, 3, 2),
    )
    e = Envelope(
        event_id="e-SR-1",
        type="SupplyRequested",
        occurred_at=NOW,
        recorded_at=NOW,
        source=Source("fhir", "SR-1", "1"),
        correlation_id="c-SR-1",
        causation_id="m1",
        key="STENT-01|OR",
        payload=ask,
    )
    with store.transaction() as tx:
        assert f.request(tx, e, ask) == "posted"  # 75.00 of 100.00 committed
        assert f.reject(tx, "REQ-SR-1", "duplicate of a standing order")
        assert not f.reject(tx, "REQ-SR-1", "twice")
    assert f.pending_requisitions() == []
    assert f.snapshot().committed("CC-OR") == D("0.00")
    again = structs.replace(ask, request_id="SR-2")
    with store.transaction() as tx:  # the budget is free again: no approval needed
        assert (
            f.request(tx, structs.replace(e, event_id="e-SR-2", payload=again), again) == "posted"
        )
    assert [r.req_id for r in f.pending_requisitions()] == ["REQ-SR-2"]


def void_env(usage_id: str) -> tuple[Envelope, SupplyUsageVoided]:
    ev = SupplyUsageVoided(usage_id=usage_id, voided_on=date(2026, 3, 3))
    return Envelope(
        event_id=f"e-void-{usage_id}",
        type="SupplyUsageVoided",
        occurred_at=NOW,
        recorded_at=NOW,
        source=Source("fhir", usage_id, "2"),
        correlation_id=f"c-{usage_id}",
        causation_id="m2",
        key="STENT-01|OR",
        payload=ev,
    ), ev


def test_a_usage_recorded_in_error_is_reversed_and_its_stock_put_back() -> None:
    f, store = flow()
    stock(f, store)
    with store.transaction() as tx:
        assert f.consume(tx, env(usage(1, qty=2)), usage(1, qty=2)) == "posted"
    assert balances(store)["6200"] == D("25.00")
    e, voided = void_env("U1")
    with store.transaction() as tx:
        assert f.void(tx, e, voided) == "posted"
        assert f.void(tx, e, voided) == "duplicate"
        assert f.consume(tx, env(usage(1, qty=2)), usage(1, qty=2)) == "duplicate"
    assert balances(store) == {"1300": D("75.00"), "2050": D("-75.00"), "6200": D("0.00")}
    book = f.snapshot().book
    assert book.quantity("STENT-01", "OR") == D(6) and book.value[("STENT-01", "OR")] == D("75.00")
    [rev] = [x for x in store.entries() if x.reverses]
    assert rev.reverses == "supply/usage/U1" and rev.period == "2026-03"


def test_a_usage_voided_before_it_arrives_takes_nothing() -> None:
    f, store = flow()
    stock(f, store)
    e, voided = void_env("U1")
    with store.transaction() as tx:
        assert f.void(tx, e, voided) == "posted"
        assert f.consume(tx, env(usage(1)), usage(1)) == "duplicate"
    assert "6200" not in balances(store)
    assert f.snapshot().book.quantity("STENT-01", "OR") == D(6)


def test_a_changed_version_of_an_applied_usage_is_a_work_item_not_a_silent_drop() -> None:
    f, store = flow()
    stock(f, store)
    with store.transaction() as tx:
        assert f.consume(tx, env(usage(1, qty=2)), usage(1, qty=2)) == "posted"
        assert f.consume(tx, env(usage(1, qty=3)), usage(1, qty=3)) == "held"
        assert f.consume(tx, env(usage(1, qty=2)), usage(1, qty=2)) == "duplicate"
    [item] = store.work_items()
    assert (item.kind, item.queue) == ("usage_changed", "procurement")
    assert "applied as 2 x STENT-01 at OR; this version says 3" in item.detail
    assert f.snapshot().book.quantity("STENT-01", "OR") == D(4)
