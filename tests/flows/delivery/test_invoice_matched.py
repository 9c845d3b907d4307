"""InvoiceMatched (issue 18): a supplier invoice line that passes the three-way match
(flows/supply.py) becomes a status event in the transaction that posts it, and a route
for InvoiceMatched delivers it, once; a mismatch or a duplicate says nothing.

The hub runs in the mode of the environment (embedded SQLite, or PostgreSQL + NATS in the
scale-out pass); the destination is a `file` one, read back as its peer would."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path

from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.demo import supply_day
from isthmus.flows.status_events import invoice_matched
from isthmus.store.ports import DeliveryQuery

CONFIG = """
[supply]
price_tolerance = "0.02"

[destinations.ap]
kind = "file"
path = "{out}"

[[routes]]
name = "matched-invoices"
events = ["InvoiceMatched"]
destinations = ["ap"]
"""


def test_a_matched_invoice_line_is_delivered_once(tmp_path: Path) -> None:
    out = tmp_path / "ap"
    conf = tmp_path / "isthmus.toml"
    conf.write_text(CONFIG.format(out=out))
    hub = Hub.open(load_settings(conf, data_dir=tmp_path / "data"))
    try:
        flow = hub.processor.supply
        assert flow is not None and flow.on_status is not None
        with hub.store.transaction() as tx:
            flow.sync(
                tx, orders=list(supply_day.ORDERS), receipts=list(supply_day.RECEIPTS), invoices=[]
            )
        assert hub.store.deliveries(DeliveryQuery(destination="ap")) == []
        stent, suture = supply_day.INVOICES  # at the order price; 6.90 against 6.25
        lines = [dataclasses.replace(stent, supplier="V-ACME"), suture]
        for _ in range(2):  # the second sync: a duplicate and the same mismatch
            with hub.store.transaction() as tx:
                flow.sync(tx, orders=[], receipts=[], invoices=lines)
        [queued] = hub.store.deliveries(DeliveryQuery(destination="ap"))
        assert queued.event_type == "InvoiceMatched"
        assert queued.event_id == "supply/invoice/SI-77/1"
        assert hub.deliver() == 1
    finally:
        hub.close()
    [sent] = [p for p in out.iterdir() if p.suffix == ".jsonl"]
    records = [json.loads(x) for x in sent.read_text().splitlines()]
    body = records[0]
    assert body["type"] == "InvoiceMatched"
    assert {
        k: body[k]
        for k in (
            "invoice_id",
            "po",
            "line",
            "supplier",
            "amount",
            "currency",
            "match",
            "price_variance",
        )
    } == {
        "invoice_id": "SI-77/1",
        "po": "PO-1001",
        "line": "1",
        "supplier": "V-ACME",
        "amount": "4500.00",
        "currency": "USD",
        "match": "matched",
        "price_variance": "0.00",
    }
    assert records[-1]["control"]["count"] == 1


def test_a_price_within_tolerance_says_so() -> None:
    ev = invoice_matched(
        invoice_id="SI-9/1",
        po="PO-9",
        line="2",
        supplier="V1",
        quantity=Decimal(40),
        unit_price=Decimal("6.30"),
        order_price=Decimal("6.25"),
        currency="USD",
        invoiced_on=supply_day.INVOICES[0].invoiced_on,
        channel="supply",
        at=1_800_000_000.0,
    )
    assert (ev.type, ev.key, ev.channel) == ("InvoiceMatched", "PO-9", "supply")
    assert ev.fields["match"] == "matched_within_tolerance"
    assert ev.fields["price_variance"] == "2.00" and ev.fields["amount"] == "252.00"
