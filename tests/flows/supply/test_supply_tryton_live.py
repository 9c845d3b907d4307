"""The procurement connector against a live trytond with procurement set up
(`erp_tryton_procure`, the template of tests/flows/supply/conftest.py): its reads are accepted,
what it writes has the fields Tryton has, refusals and outages arrive as the flow's
errors, and `post_matched` posts only what still is what the hub matched.

The whole loop (reorder -> requisition -> purchase -> receipt -> invoice -> match -> AP
posted in Tryton -> zero variance) is test_supply_tryton_e2e.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from isthmus.connectors import erp_tryton_buyer as buyer
from isthmus.connectors import erp_tryton_procure as procure
from isthmus.connectors.erp_rpc import TrytonRpc
from isthmus.connectors.erp_tryton_server import free_port
from isthmus.connectors.erp_tryton_supply import TrytonSupply
from isthmus.flows.export import ErpRejected, ErpUnavailable
from isthmus.flows.supply_state import Requisition

pytestmark = pytest.mark.service

D = Decimal
TODAY = datetime.now(UTC).date()


def req(item: str = "STENT-01") -> Requisition:
    return Requisition(
        req_id="REQ-L1",
        item=item,
        location="SURG",
        quantity=D(3),
        cost_center="CC-4500",
        amount=D("100.00"),
        created_on=TODAY,
    )


def test_reads_are_accepted_and_masters_are_there(procure_rpc: TrytonRpc) -> None:
    t = TrytonSupply(procure_rpc, company="C100")
    assert t.pull() == ([], [], [])
    assert set(t.product_ids([*procure.ITEMS, "NOPE"])) == set(procure.ITEMS)


def test_requisition_waits_in_tryton_with_a_rounded_price(procure_rpc: TrytonRpc) -> None:
    rid = TrytonSupply(
        procure_rpc, company="C100", locations={procure.WAREHOUSE: "SURG"}
    ).push_requisition(req())
    [r] = procure_rpc.model(
        "purchase.requisition",
        "read",
        [int(rid)],
        ["state", "description", "lines", "warehouse.code"],
    )
    assert (r["state"], r["description"], r["warehouse."]["code"]) == (
        "waiting",
        "REQ-L1",
        procure.WAREHOUSE,
    )
    [line] = procure_rpc.model(
        "purchase.requisition.line", "read", r["lines"], ["quantity", "unit_price", "product.code"]
    )
    assert (line["quantity"], line["unit_price"]) == (3.0, D("33.3333"))  # 100.00 / 3


def test_an_unknown_item_or_an_unmapped_location_is_refused(procure_rpc: TrytonRpc) -> None:
    mapped = TrytonSupply(procure_rpc, company="C100", locations={procure.WAREHOUSE: "SURG"})
    with pytest.raises(ErpRejected, match=r"no product\.product"):
        mapped.push_requisition(req("NOPE"))
    with pytest.raises(ErpRejected, match=r"no stock\.location .*'SURG'"):
        TrytonSupply(procure_rpc, company="C100").push_requisition(req())


def test_an_unreachable_tryton_is_unavailable() -> None:
    rpc = TrytonRpc(f"http://127.0.0.1:{free_port()}", "nope", "admin", "x", timeout_s=2)
    with pytest.raises(ErpUnavailable):
        TrytonSupply(rpc, company="C100").pull()


def _received_and_invoiced(rpc: TrytonRpc, on: date) -> tuple[TrytonSupply, int]:
    po = buyer.create_purchase(rpc, {"STENT-01": D(2), "GLOVE-M": D(5)})
    buyer.confirm_purchases(rpc, [po])
    buyer.receive(rpc, po)
    return TrytonSupply(rpc, company="C100"), buyer.supplier_invoice(rpc, po, on=on)


def test_post_matched_posts_only_invoices_whose_every_line_matched(procure_rpc: TrytonRpc) -> None:
    t, invoice = _received_and_invoiced(procure_rpc, TODAY)
    _, receipts, lines = t.pull()
    assert len(receipts) == 2 and {ln.erp_invoice for ln in lines} == {str(invoice)}
    first, second = lines
    assert t.post_matched(lines, {first.invoice_id: "posted", second.invoice_id: "held"}) == []
    assert t.post_matched(lines[:1], {first.invoice_id: "posted"}) == []  # a line unseen
    state = procure_rpc.model("account.invoice", "read", [invoice], ["state"])[0]["state"]
    assert state == "validated"
    assert t.post_matched(lines, {first.invoice_id: "posted", second.invoice_id: "duplicate"}) == [
        str(invoice)
    ]
    assert (
        t.post_matched(lines, dict.fromkeys((x.invoice_id for x in lines), "posted")) == []
    )  # posted already
    _, _, again = t.pull()  # a posted invoice is still read, under the same ids
    assert [x.invoice_id for x in again] == [x.invoice_id for x in lines]


def test_an_invoice_edited_after_the_match_is_not_posted(procure_rpc: TrytonRpc) -> None:
    t, invoice = _received_and_invoiced(procure_rpc, TODAY)
    _, _, lines = t.pull()
    procure_rpc.model("account.invoice", "draft", [invoice])  # someone reprices it
    procure_rpc.model(
        "account.invoice.line",
        "write",
        [int(lines[0].invoice_id.rsplit("/", 1)[1])],
        {"unit_price": lines[0].unit_price + 1},
    )
    procure_rpc.model("account.invoice", "validate_invoice", [invoice])
    assert t.post_matched(lines, dict.fromkeys((x.invoice_id for x in lines), "posted")) == []
    state = procure_rpc.model("account.invoice", "read", [invoice], ["state"])[0]["state"]
    assert state == "validated"  # the next sync matches it as it now is
