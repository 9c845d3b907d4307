"""Status events from what the flows applied (flows/status_events.py, flows/outbound.py):
a posted charge and payment become ChargePosted, PaymentPosted and AccountBalanceChanged
deliveries, queued in the worker's transaction, once, with the allow-list applied; a
decided refund becomes RefundApproved/RefundRejected."""

from __future__ import annotations

import json
from pathlib import Path

from isthmus.config import DestinationSettings, RouteSettings
from isthmus.flows.outbound import Outbound
from isthmus.flows.routes import compile_routes
from isthmus.flows.status_events import Derivation
from isthmus.model.status import STATUS_TYPES
from isthmus.store.ports import DeliveryQuery
from tests.flows.helpers import AR, SECRET, Rig, adt, charge, make_rig, token

DESTS = {
    "portal": DestinationSettings(name="portal", kind="webhook", url="http://x"),
    "pas": DestinationSettings(
        name="pas",
        kind="mllp",
        port=2576,
        allow=(
            "mrn",
            "account_number",
            "amount",
            "currency",
            "transaction_id",
            "ft1_type",
            "balance",
        ),
    ),
}


def wired(tmp_path: Path, *routes: RouteSettings) -> tuple[Rig, Outbound]:
    rig = make_rig(tmp_path)
    out = Outbound(
        compile_routes(routes, DESTS),
        Derivation(SECRET, AR),
        message_of=rig.store.message_by_control_id,
    )
    rig.worker.on_applied = out.on_applied
    return rig, out


def test_a_posted_charge_and_payment_become_status_deliveries(tmp_path: Path) -> None:
    rig, _ = wired(
        tmp_path,
        RouteSettings("all", STATUS_TYPES, ("portal",)),
        RouteSettings("pas", ("PaymentPosted", "AccountBalanceChanged"), ("pas",)),
    )
    rig.ingest(
        [adt("C1", "M1"), charge("C2", "M1", "100.00"), charge("C3", "M1", "40.00", ttype="PY")]
    )
    rig.drain()
    portal = rig.store.deliveries(DeliveryQuery(destination="portal"))
    bodies = [json.loads(d.body) for d in portal]
    assert [(b["type"], b.get("amount"), b.get("balance")) for b in bodies] == [
        ("ChargePosted", "100.00", None),
        ("AccountBalanceChanged", None, "100.00"),
        ("PaymentPosted", "40.00", None),
        ("AccountBalanceChanged", None, "60.00"),
    ]
    assert {b["account_token"] for b in bodies} == {token("M1")}
    assert all(b"M1" not in d.body for d in portal)  # no MRN, account or visit number
    assert len({d.key for d in portal}) == 1  # one account: one ordering key
    assert portal[0].key.startswith("K-") and "M1" not in portal[0].key  # opaque
    assert portal[0].event_id.startswith("mllp/EHR^NORTH:C2")
    pas = rig.store.deliveries(DeliveryQuery(destination="pas"))
    assert [d.event_type for d in pas] == [
        "AccountBalanceChanged",
        "PaymentPosted",
        "AccountBalanceChanged",
    ]
    assert pas[1].body.startswith(b"MSH|") and b"DFT^P03" in pas[1].body
    assert b"|M1" in pas[1].body and b"|AM1" in pas[1].body  # pas admits MRN, account
    assert b"BAR^P05" in pas[2].body and b"|60.00" in pas[2].body
    # the same messages again: the same facts, no second delivery
    rig.ingest([charge("C2", "M1", "100.00")], now=1_800_000_100.0)
    rig.drain()
    assert len(rig.store.deliveries()) == 7


def test_without_routes_nothing_is_queued(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    assert rig.worker.on_applied is None
    rig.ingest([adt("C1", "M1"), charge("C2", "M1", "100.00")])
    rig.drain()
    assert rig.store.deliveries() == [] and rig.entry_keys()


def test_only_the_types_a_route_names_are_queued(tmp_path: Path) -> None:
    rig, out = wired(
        tmp_path,
        RouteSettings("pay", ("PaymentPosted",), ("portal",), where={"currency": ("USD",)}),
    )
    rig.ingest(
        [adt("C1", "M1"), charge("C2", "M1", "100.00"), charge("C3", "M1", "40.00", ttype="PY")]
    )
    rig.drain()
    assert [d.event_type for d in rig.store.deliveries()] == ["PaymentPosted"]
    assert out.queued == 1


def test_source_messages_are_forwarded_once_per_message(tmp_path: Path) -> None:
    dests = {**DESTS, "archive": DestinationSettings(name="archive", path="/tmp/a", allow=("raw",))}
    rig = make_rig(tmp_path)
    out = Outbound(
        compile_routes([RouteSettings("adt", ("ADT",), ("archive",), channels=("mllp",))], dests),
        Derivation(SECRET, AR),
        message_of=rig.store.message_by_control_id,
    )
    rig.worker.on_applied = out.on_applied
    raw = adt("C1", "M1")
    rig.ingest([raw, charge("C2", "M1", "100.00")])
    rig.drain()
    (fwd,) = rig.store.deliveries()
    assert (fwd.event_type, fwd.body, fwd.idempotency_key) == (
        "ADT^A04",
        raw,
        "source:mllp:EHR^NORTH:C1",
    )


def test_decided_refunds_become_refund_status_deliveries() -> None:
    from isthmus.store.memory import MemoryStore  # noqa: PLC0415
    from isthmus.store.memory_governance import MemoryGovernance  # noqa: PLC0415
    from tests.flows.refunds.helpers import BOB, desk, move_ar, open_account  # noqa: PLC0415
    from tests.flows.refunds.test_refund_flow import ask  # noqa: PLC0415

    store = MemoryStore()
    token = open_account(store)
    move_ar(store, token, "-1000.00", key="overpaid-1")
    out = Outbound(
        compile_routes(
            [RouteSettings("refunds", ("RefundApproved", "RefundRejected"), ("portal",))], DESTS
        ),
        Derivation(SECRET, AR),
    )
    d = desk(store, MemoryGovernance())
    d.on_status = out.publish
    approved = ask(d, key="k1").refund.id
    d.approve(approved, approver=BOB)
    rejected = ask(d, key="k2", amount="50.00").refund.id
    d.reject(rejected, approver=BOB, reason="duplicate request")
    bodies = [json.loads(x.body) for x in store.deliveries()]
    assert [(b["type"], b["refund_id"], b["amount"], b["status"]) for b in bodies] == [
        ("RefundApproved", approved, "600.00", "posted"),
        ("RefundRejected", rejected, "50.00", "rejected"),
    ]
    assert all(
        "overpayment" not in json.dumps(b) and "A100" not in json.dumps(b) for b in bodies
    )  # the reason text and account number stay home


def test_the_message_trace_shows_each_delivery_and_its_answer(tmp_path: Path) -> None:
    from isthmus.flows.delivery import DeliveryEngine  # noqa: PLC0415
    from isthmus.observe.lineage import trace  # noqa: PLC0415
    from isthmus.ports.destination import Answer  # noqa: PLC0415
    from tests.flows.delivery.test_delivery import Fake  # noqa: PLC0415
    from tests.flows.helpers import corr  # noqa: PLC0415

    rig, _ = wired(tmp_path, RouteSettings("all", STATUS_TYPES, ("portal",)))
    rig.ingest([adt("C1", "M1"), charge("C2", "M1", "100.00")])
    rig.drain()
    DeliveryEngine(rig.store, Fake(lambda i: Answer("202", "Accepted")), DESTS["portal"]).run_once(
        1_800_000_000.0
    )
    shown = trace(rig.store, corr("C2"))
    assert shown is not None
    assert [
        (d["destination"], d["event_type"], d["status"], d["answer"]) for d in shown["deliveries"]
    ] == [
        ("portal", "ChargePosted", "sent", "202"),
        ("portal", "AccountBalanceChanged", "sent", "202"),
    ]
    assert trace(rig.store, corr("C1"))["deliveries"] == []  # type: ignore[index]
