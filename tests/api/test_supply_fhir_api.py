"""SupplyDelivery and SupplyRequest over /fhir (issue 8), through `build_app(hub)`, the real
inbox, the worker and the supply flow: stock taken (DR 6200 / CR 1300), requisitions made,
each once however often it is sent or replayed; bad resources answered with an
OperationOutcome naming the element and kept as rejected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.operationoutcome import OperationOutcome
from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.flows.file_intake import take_file
from isthmus.flows.relay import publications, relay_unpublished
from isthmus.flows.supply import SupplyFlow
from isthmus.flows.supply_state import Lineage
from isthmus.formats.supply.fhir import DEPARTMENT_URL, LOT_URL, supply_events
from isthmus.governance import identity, rbac
from isthmus.ledger.journal import JournalEntry
from isthmus.ledger.supply import OrderLine
from isthmus.model.events import SupplyConsumed, SupplyRequested
from tests.api.fhir_call import call

NOW = 1_700_000_000.0
FHIR = "application/fhir+json"
CONFIG = """
[mappings.department_cost_center]
OR = "CC-OR"
CARDIO = "CC-CARD"
[supply.par_levels."STENT-01|OR"]
par = 10
reorder_point = 2
cost_center = "CC-OR"
unit_price = "12.50"
"""


@dataclass
class Site:
    """A hub with 6 STENT-01 on hand at OR (received at 12.50), and tokens."""

    hub: Hub
    admin: str
    reader: str

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = "admin",
        raw: bytes | None = None,
        media: str = FHIR,
    ) -> httpx.Response:
        tok = {"admin": self.admin, "reader": self.reader}.get(token or "", token)
        return call(self.hub, method, path, body, token=tok, raw=raw, media=media)

    @property
    def flow(self) -> SupplyFlow:
        assert self.hub.processor.supply is not None
        return self.hub.processor.supply

    def on_hand(self, item: str = "STENT-01", location: str = "OR") -> Decimal:
        self.hub.worker().drain()
        return self.flow.snapshot().book.quantity(item, location)

    def usage_entries(self) -> list[JournalEntry]:
        return [e for e in self.hub.store.entries() if e.memo.startswith("usage ")]

    def postings(self) -> list[tuple[str, Decimal, Decimal, str]]:
        """(account, debit, credit, cost center) of every supply consumption line."""
        return sorted(
            (ln.account, ln.debit, ln.credit, ln.dims.cost_center)
            for e in self.usage_entries()
            for ln in e.lines
        )

    def replay_all(self) -> None:
        """`isthmus replay --correlation` for every stored message: its events on the bus
        again, then the worker."""
        for m in self.hub.store.messages(limit=10_000):
            if m.events:
                self.hub.bus.replay(publications(m.events))
        self.hub.worker().drain()


def open_site(path: Path) -> Iterator[Site]:
    cfg = path / "isthmus.toml"
    cfg.write_text(CONFIG)
    hub = Hub.open(load_settings(cfg, data_dir=path / "data"))
    try:
        admin = identity.principal("root", "user", (rbac.ADMIN,), NOW)
        issued = identity.issue(admin, (rbac.ADMIN,), NOW)
        assert hub.governance.initialize(admin, issued.token)
        reader = identity.principal("dash", "service", (rbac.READ_ONLY,), NOW)
        hub.governance.save_principal(reader)
        r = identity.issue(reader, (rbac.READ_ONLY,), NOW)
        hub.governance.add_token(r.token)
        flow = hub.processor.supply
        assert flow is not None
        with hub.store.transaction() as tx:
            flow.open_order(
                tx,
                OrderLine(
                    po="PO1",
                    line="1",
                    item="STENT-01",
                    location="OR",
                    quantity=Decimal(6),
                    unit_price=Decimal("12.50"),
                    currency="USD",
                    company="C100",
                    cost_center="CC-OR",
                ),
            )
        with hub.store.transaction() as tx:
            flow.receive(
                tx,
                po="PO1",
                line="1",
                quantity=Decimal(6),
                received_on=date(2026, 3, 1),
                lineage=Lineage("GR1", "c1"),
            )
        yield Site(hub, issued.clear, r.clear)
    finally:
        hub.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from open_site(tmp_path)


def delivery(rid: str = "sd1", qty: Any = 2, **over: Any) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "SupplyDelivery",
        "id": rid,
        "status": "completed",
        "patient": {"reference": "Patient/p1", "display": "Jane Doe"},
        "suppliedItem": {
            "quantity": {"value": qty},
            "itemCodeableConcept": {"coding": [{"code": "STENT-01"}]},
        },
        "occurrenceDateTime": "2026-03-02T10:00:00Z",
        "destination": {"reference": "Location/OR"},
        "extension": [{"url": LOT_URL, "valueString": "L77"}],
    }
    res.update(over)
    return res


def request(rid: str = "r1", **over: Any) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "SupplyRequest",
        "id": rid,
        "status": "active",
        "itemCodeableConcept": {"coding": [{"code": "STENT-01"}]},
        "quantity": {"value": 5},
        "deliverTo": {"reference": "Location/OR"},
        "authoredOn": "2026-03-03",
    }
    res.update(over)
    return res


def issues(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.headers["content-type"].startswith(FHIR)
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    OperationOutcome(body)  # a valid R4 OperationOutcome for a real FHIR client
    return list(body["issue"])


def rejected(site: Site) -> list[str]:
    return [m.control_id for m in site.hub.store.messages(status="rejected")]


TWO_STENTS = [
    ("1300", Decimal(0), Decimal("25.00"), ""),  # inventory: no cost center
    ("6200", Decimal("25.00"), Decimal(0), "CC-OR"),
]  # 2 x 12.50, DR 6200 CR 1300


def test_capability_statement_lists_supply_create_update_read(site: Site) -> None:
    r = site.call("GET", "/fhir/metadata", token="reader")
    cs = CapabilityStatement(r.json())
    found = {res.type: {i.code for i in res.interaction} for res in cs.rest[0].resource}
    for rtype in ("SupplyDelivery", "SupplyRequest"):
        assert found[rtype] >= {"create", "update", "read"}


def test_supply_delivery_takes_stock_once_over_resend_and_replay(site: Site) -> None:
    r = site.call("POST", "/fhir/SupplyDelivery", delivery())
    assert r.status_code == 201, r.text
    # absolute, with the version the hub gave it (issue 19, API conventions)
    assert re.fullmatch(
        r"https?://[^/]+/fhir/SupplyDelivery/sd1/_history/\w+", r.headers["location"]
    ), r.headers["location"]
    assert site.on_hand() == Decimal(4)
    assert site.postings() == TWO_STENTS
    [entry] = site.usage_entries()
    assert entry.correlation_id == "fhir/SupplyDelivery/sd1"  # traced to the message
    assert "SupplyDelivery/sd1" in entry.memo
    assert site.call("POST", "/fhir/SupplyDelivery", delivery()).status_code == 200
    assert site.call("PUT", "/fhir/SupplyDelivery/sd1", delivery()).status_code == 200
    site.replay_all()
    assert site.on_hand() == Decimal(4)
    assert site.postings() == TWO_STENTS
    read = site.call("GET", "/fhir/SupplyDelivery/sd1", token="reader")
    assert read.status_code == 200 and read.json()["suppliedItem"]["quantity"]["value"] == 2
    journal = json.dumps([str(e) for e in site.usage_entries()])
    assert "Jane" not in journal and "p1" not in journal  # the patient is never read


def test_transaction_and_batch_bundles_take_stock(site: Site) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:3f1c2a4e-0000-4000-8000-000000000001",
                "resource": {k: v for k, v in delivery("sd-b1").items() if k != "id"},
                "request": {"method": "POST", "url": "SupplyDelivery"},
            },
            {
                "resource": delivery("sd-b2", qty=1),
                "request": {"method": "PUT", "url": "SupplyDelivery/sd-b2"},
            },
        ],
    }
    r = site.call("POST", "/fhir", bundle)
    assert r.status_code == 200, r.text
    assert [e["response"]["status"] for e in r.json()["entry"]] == ["201 Created"] * 2
    assert site.on_hand() == Decimal(3)
    assert site.call("POST", "/fhir", bundle).status_code == 200  # the same again
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": delivery("sd-b3", qty=1),
                "request": {"method": "PUT", "url": "SupplyDelivery/sd-b3"},
            }
        ],
    }
    r = site.call("POST", "/fhir", batch)
    assert [e["response"]["status"] for e in r.json()["entry"]] == ["201 Created"]
    site.replay_all()
    assert site.on_hand() == Decimal(2)
    debits = [d for a, d, _, _ in site.postings() if a == "6200"]
    assert sorted(debits) == [Decimal("12.50"), Decimal("12.50"), Decimal("25.00")]


def test_department_is_the_extension_else_the_destination(site: Site) -> None:
    ext: list[dict[str, Any]] = [{"url": DEPARTMENT_URL, "valueString": "CARDIO"}]
    assert (
        site.call(
            "PUT", "/fhir/SupplyDelivery/sd-c", delivery("sd-c", qty=1, extension=ext)
        ).status_code
        == 201
    )
    assert site.call("PUT", "/fhir/SupplyDelivery/sd-o", delivery("sd-o", qty=1)).status_code == 201
    assert site.on_hand() == Decimal(4)
    assert [cc for a, _, _, cc in site.postings() if a == "6200"] == ["CC-CARD", "CC-OR"]
    # a department the hub cannot map holds the usage for procurement; no stock moves
    ext = [{"url": DEPARTMENT_URL, "valueReference": {"reference": "Organization/ONCO"}}]
    assert (
        site.call(
            "PUT", "/fhir/SupplyDelivery/sd-x", delivery("sd-x", qty=1, extension=ext)
        ).status_code
        == 201
    )
    assert site.on_hand() == Decimal(4)
    held = [w for w in site.hub.store.work_items("open") if w.kind == "unmapped_department"]
    assert len(held) == 1 and "ONCO" in str(held[0].detail)


def test_in_progress_delivery_takes_stock_when_completed(site: Site) -> None:
    assert (
        site.call(
            "PUT", "/fhir/SupplyDelivery/sd-p", delivery("sd-p", status="in-progress")
        ).status_code
        == 201
    )
    assert site.on_hand() == Decimal(6)
    assert site.call("PUT", "/fhir/SupplyDelivery/sd-p", delivery("sd-p")).status_code == 200
    assert site.on_hand() == Decimal(4)
    assert site.postings() == TWO_STENTS


def test_a_delivery_entered_in_error_puts_the_stock_back_and_reverses_its_cost(site: Site) -> None:
    assert site.call("PUT", "/fhir/SupplyDelivery/sd-e", delivery("sd-e")).status_code == 201
    assert site.on_hand() == Decimal(4)
    assert (
        site.call(
            "PUT", "/fhir/SupplyDelivery/sd-e", delivery("sd-e", status="entered-in-error")
        ).status_code
        == 200
    )
    assert site.on_hand() == Decimal(6)
    [reversal] = [e for e in site.hub.store.entries() if e.reverses]
    assert reversal.reverses == "supply/usage/SupplyDelivery/sd-e"
    assert (
        sum(
            (
                ln.debit - ln.credit
                for e in site.hub.store.entries()
                for ln in e.lines
                if ln.account == "6200"
            ),
            Decimal(0),
        )
        == 0
    )
    site.replay_all()  # replays change nothing, in either order of arrival
    assert site.on_hand() == Decimal(6)
    # a second version saying another quantity is not dropped silently: a work item
    assert site.call("PUT", "/fhir/SupplyDelivery/sd-q", delivery("sd-q")).status_code == 201
    assert site.call("PUT", "/fhir/SupplyDelivery/sd-q", delivery("sd-q", qty=1)).status_code == 200
    assert site.on_hand() == Decimal(4)
    assert [w.kind for w in site.hub.store.work_items(status="open")] == ["usage_changed"]


@pytest.mark.parametrize(
    ("over", "element"),
    [
        ({"status": "done"}, "SupplyDelivery.status"),
        ({"status": ["completed"]}, "SupplyDelivery.status"),
        (
            {
                "suppliedItem": {
                    "quantity": {"value": -1},
                    "itemCodeableConcept": {"coding": [{"code": "STENT-01"}]},
                }
            },
            "SupplyDelivery.suppliedItem.quantity.value",
        ),
        (
            {"suppliedItem": {"quantity": {"value": 1}}},
            "SupplyDelivery.suppliedItem.itemCodeableConcept.coding[0].code",
        ),
        ({"destination": None}, "SupplyDelivery.destination"),
        ({"occurrenceDateTime": "yesterday"}, "SupplyDelivery.occurrenceDateTime"),
    ],
)
def test_bad_delivery_is_a_422_naming_the_element_and_kept(
    site: Site, over: dict[str, Any], element: str
) -> None:
    r = site.call("PUT", "/fhir/SupplyDelivery/bad1", delivery("bad1", **over))
    assert r.status_code == 422
    assert element in [e for i in issues(r) for e in i.get("expression", [])]
    assert [c.split("#")[0] for c in rejected(site)] == ["SupplyDelivery/bad1"]
    assert site.call("GET", "/fhir/SupplyDelivery/bad1").status_code == 404
    assert site.on_hand() == Decimal(6)


def test_bad_delivery_in_a_bundle_refuses_the_transaction(site: Site) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": delivery("ok1", qty=1),
                "request": {"method": "PUT", "url": "SupplyDelivery/ok1"},
            },
            {
                "resource": delivery("bad2", qty="lots"),
                "request": {"method": "PUT", "url": "SupplyDelivery/bad2"},
            },
        ],
    }
    r = site.call("POST", "/fhir", bundle)
    assert r.status_code == 422
    exprs = [e for i in issues(r) for e in i.get("expression", [])]
    assert exprs == ["Bundle.entry[1].resource.suppliedItem.quantity.value"]
    assert site.on_hand() == Decimal(6)  # all or nothing


def test_body_that_is_not_the_url_type_or_not_json_is_a_400(site: Site) -> None:
    r = site.call("POST", "/fhir/SupplyDelivery", request())
    assert r.status_code == 400
    assert issues(r)[0]["expression"] == ["resourceType"]
    r = site.call("PUT", "/fhir/SupplyDelivery/other", delivery("sd1"))
    assert r.status_code == 400 and issues(r)[0]["expression"] == ["SupplyDelivery.id"]
    assert site.call("POST", "/fhir/SupplyDelivery", raw=b"[1, 2").status_code == 400


def test_supply_request_makes_one_requisition(site: Site) -> None:
    assert site.call("POST", "/fhir/SupplyRequest", request()).status_code == 201
    assert site.call("POST", "/fhir/SupplyRequest", request()).status_code == 200
    site.hub.worker().drain()
    site.replay_all()
    reqs = [r for r in site.flow.snapshot().requisitions if r.req_id == "REQ-SupplyRequest/r1"]
    assert [
        (r.item, r.location, r.quantity, r.cost_center, r.created_on, r.status) for r in reqs
    ] == [("STENT-01", "OR", Decimal(5), "CC-OR", date(2026, 3, 3), "pending")]
    assert site.on_hand() == Decimal(6)  # a request takes no stock


def test_supply_request_without_authored_on_is_dated_the_day_received(site: Site) -> None:
    body = {k: v for k, v in request("r2").items() if k != "authoredOn"}
    today = datetime.now(UTC).date()
    assert site.call("PUT", "/fhir/SupplyRequest/r2", body).status_code == 201
    site.hub.worker().drain()
    [req] = [r for r in site.flow.snapshot().requisitions if r.req_id == "REQ-SupplyRequest/r2"]
    assert req.created_on in (today, datetime.now(UTC).date())


def test_draft_request_waits_and_active_needs_deliver_to(site: Site) -> None:
    assert (
        site.call("PUT", "/fhir/SupplyRequest/r3", request("r3", status="draft")).status_code == 201
    )
    site.hub.worker().drain()
    assert not site.flow.snapshot().requisitions
    r = site.call("PUT", "/fhir/SupplyRequest/r4", request("r4", deliverTo=None))
    assert r.status_code == 422
    assert [e for i in issues(r) for e in i["expression"]] == ["SupplyRequest.deliverTo"]
    r = site.call("PUT", "/fhir/SupplyRequest/r5", request("r5", quantity={"value": 0}))
    assert r.status_code == 422
    assert [e for i in issues(r) for e in i["expression"]] == ["SupplyRequest.quantity.value"]
    assert len(rejected(site)) == 2


def test_supply_writes_need_a_writing_role(site: Site) -> None:
    assert site.call("POST", "/fhir/SupplyDelivery", delivery(), token="reader").status_code == 403
    assert site.call("POST", "/fhir/SupplyDelivery", delivery(), token=None).status_code == 401
    assert site.on_hand() == Decimal(6)


def test_a_supply_delivery_file_in_the_drop_folder_takes_stock_once(
    site: Site, tmp_path: Path
) -> None:
    f = tmp_path / "sd-file.json"
    f.write_text(json.dumps(delivery("sd-f")))
    for _ in range(2):
        [row] = take_file(site.hub.store, site.hub.settings, f, f.name, NOW)
        relay_unpublished(site.hub.store, site.hub.bus)
        assert row["status"] == "accepted", row
    assert site.on_hand() == Decimal(4)
    assert site.postings() == TWO_STENTS
    # the same delivery over /fhir afterwards is the same resource: nothing more
    assert site.call("PUT", "/fhir/SupplyDelivery/sd-f", delivery("sd-f")).status_code == 200
    assert site.on_hand() == Decimal(4)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["SupplyDelivery", "SupplyRequest"]),
    st.dictionaries(
        st.sampled_from(
            [
                "id",
                "status",
                "suppliedItem",
                "quantity",
                "occurrenceDateTime",
                "destination",
                "deliverTo",
                "extension",
                "itemCodeableConcept",
                "authoredOn",
            ]
        ),
        _json,
    ),
)
def test_any_supply_resource_is_events_or_problems_never_both(
    kind: str, body: dict[str, Any]
) -> None:
    got = supply_events({**body, "resourceType": kind}, date(2026, 3, 9))
    assert not (got.events and got.problems)
    assert all(path is not None and text for path, text in got.problems)
    for key, ev in got.events:
        assert isinstance(ev, SupplyConsumed | SupplyRequested)
        assert key == f"supply/{ev.item}|{ev.location}" and ev.quantity > 0
        assert ev.department  # the extension, else the location: never empty
