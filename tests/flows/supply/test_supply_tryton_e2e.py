"""The procurement loop end to end against a real Tryton (issue 8), AP owned by Tryton.

Opening stock: the buyer orders 10 stents in Tryton and they are received; the hub syncs
the receipt. Surgery uses 7: the sixth takes stock to its reorder point (4) and the hub
makes a requisition for 6 (par 10 - 4), which it sends to Tryton. There a person
approves it, the buyer turns its purchase request into a purchase order and confirms it,
the goods are received, and the supplier's invoice is validated. The hub syncs: the
receipt posts, the invoice is three-way matched and, matched, posted in Tryton (its AP
move, DR 2050 / CR 2000). The hub exports its own entries (consumption, receipts, any
price variance) to the same Tryton, and hub and Tryton agree on every account and cost
center of the period.

An invoice beyond the price tolerance is held instead: an invoice_mismatch work item in
queue procurement, no hub entry, and the invoice stays validated (unposted) in Tryton.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from isthmus.app import Hub, SystemClock
from isthmus.cli.main import run
from isthmus.config import load_settings
from isthmus.connectors import erp_tryton_buyer as buyer
from isthmus.connectors import erp_tryton_procure as procure
from isthmus.connectors.erp_ports import ErpBatchSink
from isthmus.connectors.erp_rpc import TrytonRpc
from isthmus.connectors.erp_tryton import TrytonErp
from isthmus.connectors.erp_tryton_supply import TrytonSupply
from isthmus.demo.chart import demo_mappings
from isthmus.flows.export import Dispatcher, seal_batches
from isthmus.flows.retry import RetryPolicy
from isthmus.flows.supply import SupplyFlow
from isthmus.flows.supply_state import ParLevel, SupplyPolicy, SyncReport
from isthmus.ledger.periods import FiscalCalendar
from isthmus.ledger.supply_match import Tolerance
from isthmus.model.envelope import Envelope, Source
from isthmus.model.events import SupplyConsumed
from isthmus.recon.erp import reconcile
from isthmus.store.sqlite import SqliteStore
from tests.chart import DEMO_CHART
from tests.flows.supply.conftest import ProcurePool

pytestmark = pytest.mark.service

D = Decimal
TODAY = datetime.now(UTC).date()  # Tryton dates its purchases and receipts today
PERIOD = f"{TODAY:%Y-%m}"
PRICE = D("450.00")


def usage(n: int) -> tuple[Envelope, SupplyConsumed]:
    ev = SupplyConsumed(
        usage_id=f"OR-{n}",
        item="STENT-01",
        location="SURG",
        quantity=D(1),
        used_on=TODAY,
        department="SURG",
        facility="NORTH",
        account_number=f"A{5000 + n}",
        charge_id=f"FT{n}",
    )
    now = datetime.now(UTC)
    return Envelope(
        event_id=f"e-{ev.usage_id}",
        type="SupplyConsumed",
        occurred_at=now,
        recorded_at=now,
        source=Source("supply-csv", ev.usage_id, "1"),
        correlation_id=f"c-{ev.usage_id}",
        causation_id="m1",
        key="STENT-01|SURG",
        payload=ev,
    ), ev


class Loop:
    """The hub (SQLite store, supply flow with AP owned by the ERP) and its Tryton."""

    def __init__(self, store: SqliteStore, rpc: TrytonRpc) -> None:
        policy = SupplyPolicy(
            par_levels={
                "STENT-01|SURG": ParLevel(
                    par=D(10), reorder_point=D(4), cost_center="CC-4500", unit_price=PRICE
                )
            },
            tolerance=Tolerance(price_fraction=D("0.02")),
            ap_owner="erp",
        )
        self.store, self.rpc = store, rpc
        self.flow = SupplyFlow(
            store, policy, demo_mappings(), FiscalCalendar(), clock=SystemClock()
        )
        self.erp = TrytonSupply(rpc, company="C100", locations={procure.WAREHOUSE: "SURG"})

    def sync(self) -> tuple[SyncReport, list[str]]:
        """What `isthmus supply sync` does: pull, apply in one transaction, then post in
        Tryton the invoices that matched."""
        orders, receipts, invoices = self.erp.pull()
        with self.store.transaction() as tx:
            report = self.flow.sync(tx, orders=orders, receipts=receipts, invoices=invoices)
        return report, self.erp.post_matched(invoices, report.invoices)

    def opening_stock(self) -> str:
        [po] = [buyer.create_purchase(self.rpc, {"STENT-01": D(10)})]
        buyer.confirm_purchases(self.rpc, [po])
        buyer.receive(self.rpc, po)
        report, posted = self.sync()
        assert report.counts == {"posted": 1} and posted == []
        assert self.flow.snapshot().book.quantity("STENT-01", "SURG") == 10
        return str(po)

    def consume_past_reorder_point(self) -> None:
        with self.store.transaction() as tx:
            for n in range(7):
                assert self.flow.consume(tx, *usage(n)) == "posted"
        [req] = self.flow.pending_requisitions()
        assert (req.item, req.quantity, req.cost_center) == ("STENT-01", D(6), "CC-4500")

    def requisition_to_receipt(self) -> tuple[int, str]:
        """Hub -> Tryton requisition; Tryton's approval, purchase, confirmation, receipt."""
        pushed = self.flow.push_requisitions(self.erp.push_requisition)
        assert pushed["stopped"] == "" and pushed["refused"] == []
        [req] = self.flow.snapshot().requisitions
        assert req.status == "sent"
        [state] = self.rpc.model(
            "purchase.requisition", "read", [int(req.erp_id)], ["state", "description"]
        )
        assert (state["state"], state["description"]) == ("waiting", req.req_id)
        requests = buyer.approve_requisitions(self.rpc, [int(req.erp_id)])
        [po] = buyer.create_purchases(self.rpc, requests)
        [number] = buyer.confirm_purchases(self.rpc, [po])
        buyer.receive(self.rpc, po)
        report, posted = self.sync()
        assert report.counts == {"posted": 1, "duplicate": 1} and posted == []
        return po, number

    def export(self) -> TrytonErp:
        now = time.time()
        seal_batches(self.store, policy_of=lambda _c: "summary", now=now)
        tryton = TrytonErp(self.rpc, journal="HUB")
        Dispatcher(self.store, ErpBatchSink(tryton), RetryPolicy()).run_once(now)
        assert {o.status for o in self.store.outbox_items()} == {"sent"}
        return tryton


@pytest.fixture
def loop(tmp_path: Path, procure_rpc: TrytonRpc) -> Iterator[Loop]:
    store = SqliteStore(tmp_path / "hub.db", synchronous="NORMAL")
    try:
        yield Loop(store, procure_rpc)
    finally:
        store.close()


def move_of(rpc: TrytonRpc, invoice: int) -> tuple[str, dict[str, tuple[Decimal, Decimal]]]:
    [inv] = rpc.model("account.invoice", "read", [invoice], ["state", "move"])
    lines = rpc.model(
        "account.move.line",
        "search_read",
        [("move", "=", inv["move"])],
        0,
        None,
        None,
        ["account.code", "debit", "credit", "move.state"],
    )
    return inv["state"], {str(x["account."]["code"]): (x["debit"], x["credit"]) for x in lines}


@pytest.mark.parametrize("billed", ["450.00", "454.50"])  # exact; 1 % over, within 2 %
def test_reorder_to_matched_invoice_posts_in_tryton_and_reconciles(loop: Loop, billed: str) -> None:
    loop.opening_stock()
    loop.consume_past_reorder_point()
    po, number = loop.requisition_to_receipt()

    invoice = buyer.supplier_invoice(loop.rpc, po, on=TODAY, prices={"STENT-01": D(billed)})
    assert move_of(loop.rpc, invoice)[0] == "validated"
    report, posted = loop.sync()
    assert report.counts == {"posted": 1, "duplicate": 2}
    assert list(report.invoices.values()) == ["posted"]
    assert posted == [str(invoice)]
    amount = D(billed) * 6
    state, lines = move_of(loop.rpc, invoice)
    assert state == "posted"
    assert lines == {"2050": (amount, D(0)), "2000": (D(0), amount)}

    again, posted_again = loop.sync()  # idempotent: nothing new, nothing posted twice
    assert set(again.counts) == {"duplicate"} and posted_again == []

    tryton = loop.export()
    recon = reconcile(loop.store, tryton, PERIOD)
    assert recon["zero_variance"], recon["rows"]
    assert {c["state"] for c in recon["batches"]} == {"posted"}
    rows = {(r["account"], r["cost_center"]): D(r["erp"]) for r in recon["rows"]}
    assert rows[("2000", "")] == -amount  # Tryton's AP, from its own invoice
    assert rows[("6200", "CC-4500")] == 7 * PRICE  # consumption, exported by the hub
    assert rows.get(("6210", ""), D(0)) == amount - 6 * PRICE  # price variance
    book = loop.flow.snapshot().book
    [line] = [g for (n, _), g in book.grni.items() if n == number]
    assert (line.invoiced, line.open_value) == (D(6), D(0))  # GRNI cleared for that line


def test_invoice_beyond_tolerance_is_held_and_not_posted(loop: Loop) -> None:
    loop.opening_stock()
    loop.consume_past_reorder_point()
    po, _ = loop.requisition_to_receipt()
    before = {e.entry_key for e in loop.store.entries()}

    invoice = buyer.supplier_invoice(loop.rpc, po, on=TODAY, prices={"STENT-01": D("480.00")})
    report, posted = loop.sync()
    assert list(report.invoices.values()) == ["held"] and posted == []
    [item] = loop.store.work_items("open")
    assert (item.kind, item.queue) == ("invoice_mismatch", "procurement")
    assert "unit_price" in item.detail
    assert {e.entry_key for e in loop.store.entries()} == before  # no hub entry for it
    assert move_of(loop.rpc, invoice)[0] == "validated"  # not posted in Tryton

    _, posted_again = loop.sync()  # still held on the next sync: still not posted
    assert posted_again == [] and move_of(loop.rpc, invoice)[0] == "validated"
    tryton = loop.export()
    assert reconcile(loop.store, tryton, PERIOD)["zero_variance"]
    assert ("2000", "") not in tryton.balances(PERIOD)
    [line] = loop.rpc.model(
        "account.invoice.line", "search", [("invoice", "=", invoice)], 0, None, None
    )
    [unmatched] = loop.flow.snapshot().unmatched
    assert unmatched.invoice_id == f"invoice/{invoice}/{line}"


CLI_CONFIG = """
[erp]
kind = "tryton"
url = "{url}"
database = "{database}"
password_file = "{password_file}"
journal = "HUB"
[supply]
ap_owner = "erp"
price_tolerance = "0.02"
[supply.locations]                 # Tryton warehouse code -> the hub's stock location
WH = "SURG"
[supply.par_levels."STENT-01|SURG"]
par = 10
reorder_point = 4
cost_center = "CC-4500"
unit_price = "450.00"
"""


def test_cli_supply_sync_posts_the_matched_invoice_and_recon_is_zero(
    tmp_path: Path, procure_pool: ProcurePool, procure_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same loop through `isthmus supply sync` and `isthmus recon erp`, with Tryton's
    warehouse WH mapped to the hub's stock location SURG."""
    pw = tmp_path / "tryton.pass"
    pw.write_text(procure_pool.site.password)
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(
        DEMO_CHART
        + CLI_CONFIG.format(url=procure_pool.server.url, database=procure_db, password_file=pw)
    )
    data = tmp_path / "data"
    args = ["--data-dir", str(data), "--config", str(cfg), "--json"]
    rpc = procure_pool.rpc(procure_db)

    def sync() -> dict[str, Any]:
        assert run(["supply", "sync", *args]) == 0
        return dict(json.loads(capsys.readouterr().out))

    try:
        opening = buyer.create_purchase(rpc, {"STENT-01": D(10)})
        buyer.confirm_purchases(rpc, [opening])
        buyer.receive(rpc, opening)
        assert sync()["applied"] == {"posted": 1}
        hub = Hub.open(load_settings(cfg, data_dir=data))
        try:
            flow = hub.processor.supply
            assert flow is not None
            with hub.store.transaction() as tx:
                for n in range(7):
                    e, ev = usage(n)
                    assert ev.location == "SURG"
                    assert flow.consume(tx, e, ev) == "posted"
        finally:
            hub.close()
        assert len(sync()["sent"]) == 1
        [rid] = rpc.model(
            "purchase.requisition", "search", [("state", "=", "waiting")], 0, None, None
        )
        [po] = buyer.create_purchases(rpc, buyer.approve_requisitions(rpc, [rid]))
        buyer.confirm_purchases(rpc, [po])
        buyer.receive(rpc, po)
        assert sync()["applied"] == {"posted": 1, "duplicate": 1}
        invoice = buyer.supplier_invoice(rpc, po, on=TODAY)
        d = sync()
        assert d["applied"] == {"posted": 1, "duplicate": 2}
        assert d["posted_in_erp"] == [str(invoice)]
        [inv] = rpc.model("account.invoice", "read", [invoice], ["state"])
        assert inv["state"] == "posted"
    finally:
        rpc.close()
    hub = Hub.open(load_settings(cfg, data_dir=data))
    try:
        made, sent = hub.export()
        assert made >= 1 and sent >= 1
    finally:
        hub.close()
    assert run(["recon", "erp", "--period", PERIOD, *args]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["zero_variance"], report["rows"]
    rows = {(r["account"], r["cost_center"]): D(r["erp"]) for r in report["rows"]}
    assert rows[("2000", "")] == -6 * PRICE and rows[("6200", "CC-4500")] == 7 * PRICE
