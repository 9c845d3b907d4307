"""Supply feeds: the usage CSV and FHIR SupplyDelivery / SupplyRequest (issue 8)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.formats.supply.fhir import LOT_URL, SupplyRequestLine, supply_delivery, supply_request
from isthmus.formats.supply.usage import looks_like_usage, parse_usage
from isthmus.model.events import SupplyConsumed

CSV = (
    b"\xef\xbb\xbfUsage ID,Item,Location,Qty,Used On,Dept,Lot,Account,Patient Name\r\n"
    b"U1,STENT-01,OR,2,2026-03-02,CATH,L77,A100,Jane Doe\r\n"
    b"U2,GAUZE,OR,1.5,03/02/2026,CATH,,A100,Jane Doe\r\n"
)


def test_usage_csv_reads_rows_and_never_the_patient_name() -> None:
    assert looks_like_usage(CSV)
    f = parse_usage(CSV)
    assert f.ok
    assert f.events[0] == SupplyConsumed(
        usage_id="U1",
        item="STENT-01",
        location="OR",
        quantity=Decimal(2),
        used_on=date(2026, 3, 2),
        department="CATH",
        lot="L77",
        account_number="A100",
    )
    assert f.events[1].quantity == Decimal("1.5")
    assert "Jane" not in repr(f.events)


def test_usage_csv_findings_name_row_and_column() -> None:
    bad = (
        b"usage_id,item,location,quantity,used_on\n"
        b"U1,A,OR,0,2026-03-02\nU2,A,OR,x,2026-03-02\nU1,A,OR,1,2026-03-02\n"
        b"U3,A,OR,1,2026-03-02\nU3,A,OR,1,yesterday\n"
    )
    f = parse_usage(bad)
    assert [(x.row, x.column) for x in f.findings] == [
        (2, "quantity"),
        (3, "quantity"),
        (6, "used_on"),
    ]
    assert not looks_like_usage(b"deposit_date,amount,reference\n")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_usage_csv_any_bytes_are_events_or_findings(data: bytes) -> None:
    f = parse_usage(data)
    assert f.ok or f.findings
    assert all(e.quantity > 0 for e in f.events)


def delivery(**over: Any) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "SupplyDelivery",
        "id": "sd1",
        "status": "completed",
        "patient": {"reference": "Patient/p1", "display": "Jane Doe"},
        "suppliedItem": {
            "quantity": {"value": 1},
            "itemCodeableConcept": {"coding": [{"code": "STENT-01"}]},
        },
        "occurrenceDateTime": "2026-03-02T10:00:00Z",
        "destination": {"reference": "Location/OR"},
        "partOf": [{"reference": "Procedure/proc9"}],
        "extension": [{"url": LOT_URL, "valueString": "L77"}],
    }
    res.update(over)
    return res


def test_supply_delivery_becomes_consumption() -> None:
    ev = supply_delivery(delivery())
    assert ev == SupplyConsumed(
        usage_id="SupplyDelivery/sd1",
        item="STENT-01",
        location="OR",
        quantity=Decimal(1),
        used_on=date(2026, 3, 2),
        lot="L77",
        charge_id="proc9",
    )


def test_supply_delivery_problems_name_the_element() -> None:
    got = supply_delivery(
        delivery(status="in-progress", suppliedItem={"quantity": {"value": -1}}, destination=None)
    )
    assert isinstance(got, list)
    assert [p for p, _ in got] == [
        "status",
        "suppliedItem.itemCodeableConcept.coding[0].code",
        "suppliedItem.quantity.value",
        "destination",
    ]


def test_supply_request() -> None:
    got = supply_request(
        {
            "resourceType": "SupplyRequest",
            "id": "r1",
            "status": "active",
            "itemCodeableConcept": {"coding": [{"code": "GAUZE"}]},
            "quantity": {"value": "20"},
            "deliverTo": {"reference": "Location/OR"},
            "authoredOn": "2026-03-01",
        }
    )
    assert got == SupplyRequestLine("r1", "GAUZE", Decimal(20), "OR", "active", date(2026, 3, 1))
    assert isinstance(supply_request({"resourceType": "SupplyRequest"}), list)


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "id",
                "status",
                "suppliedItem",
                "quantity",
                "occurrenceDateTime",
                "destination",
                "partOf",
                "extension",
                "itemCodeableConcept",
                "authoredOn",
            ]
        ),
        json_value,
    )
)
def test_fhir_supply_any_shape_is_an_answer(body: dict[str, Any]) -> None:
    for kind, fn in (("SupplyDelivery", supply_delivery), ("SupplyRequest", supply_request)):
        got = fn({**body, "resourceType": kind})
        assert isinstance(got, list | SupplyConsumed | SupplyRequestLine)
