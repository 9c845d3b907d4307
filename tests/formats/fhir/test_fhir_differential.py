"""Differential: fhirclient's R4 models read the same finance values as the fast decoder."""

from __future__ import annotations

import importlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.formats.fhir.fhir_corpus import finance_examples, ids

from isthmus.formats.fhir import CodeableConcept, Money, Reference, decode_resource

FINANCE = finance_examples()

# Our field name -> fhirclient attribute name, per element read by both.
FIELDS = {
    "Patient": ["birth_date:birthDate", "gender"],
    "Encounter": ["status", "subject", "service_provider:serviceProvider"],
    "Account": ["status", "service_period:servicePeriod", "owner"],
    "Coverage": ["status", "beneficiary", "subscriber_id:subscriberId"],
    "ChargeItem": [
        "status",
        "code",
        "subject",
        "context",
        "quantity",
        "price_override:priceOverride",
        "factor_override:factorOverride",
        "enterer",
        "occurrence_date_time:occurrenceDateTime",
    ],
    "Claim": ["status", "use", "patient", "provider", "insurer", "priority", "total", "created"],
    "ClaimResponse": ["status", "outcome", "request", "patient", "insurer", "created"],
    "ExplanationOfBenefit": ["status", "outcome", "patient", "claim", "provider", "insurer"],
    "PaymentNotice": ["status", "request", "payment", "amount", "payment_date:paymentDate"],
    "PaymentReconciliation": [
        "status",
        "payment_amount:paymentAmount",
        "payment_date:paymentDate",
        "created",
    ],
    "Invoice": [
        "status",
        "subject",
        "account",
        "total_net:totalNet",
        "total_gross:totalGross",
        "date",
    ],
}


def same(ours: Any, theirs: Any) -> None:
    """Compare one of our values with fhirclient's reading of the same element."""
    if ours is None or ours == ():
        assert theirs is None or theirs == []
    elif isinstance(ours, Money):
        assert ours.currency == theirs.currency
        assert float(ours.value) == theirs.value  # fhirclient reads floats
    elif isinstance(ours, Reference):
        assert (ours.reference, ours.display) == (theirs.reference, theirs.display)
    elif isinstance(ours, CodeableConcept):
        assert [c.code for c in ours.coding] == [c.code for c in theirs.coding or []]
    elif isinstance(ours, Decimal):
        assert float(ours) == theirs
    elif isinstance(ours, str) and hasattr(theirs, "isostring"):
        assert ours == theirs.origval
    elif hasattr(ours, "__struct_fields__"):
        for name in ours.__struct_fields__:
            value = getattr(ours, name)
            if value is not None:
                same(value, getattr(theirs, name))
    else:
        assert ours == theirs


@pytest.mark.parametrize("path", FINANCE, ids=ids(FINANCE))
def test_fhirclient_agrees(path: Path) -> None:
    rtype, resource = decode_resource(path.read_bytes())
    module = importlib.import_module(f"fhirclient.models.{rtype.lower()}")
    theirs = getattr(module, rtype)(json.loads(path.read_bytes()))
    assert theirs.id == resource.id
    for spec in FIELDS[rtype]:
        ours_name, _, their_name = spec.partition(":")
        same(getattr(resource, ours_name), getattr(theirs, their_name or ours_name))


@pytest.mark.parametrize(
    "path",
    [p for p in FINANCE if p.name.startswith(("Claim-", "Explanation"))],
    ids=ids([p for p in FINANCE if p.name.startswith(("Claim-", "Explanation"))]),
)
def test_fhirclient_agrees_on_items(path: Path) -> None:
    rtype, resource = decode_resource(path.read_bytes())
    module = importlib.import_module(f"fhirclient.models.{rtype.lower()}")
    theirs = getattr(module, rtype)(json.loads(path.read_bytes()))
    items: Any = resource.item
    assert len(items) == len(theirs.item or [])
    for ours, their in zip(items, theirs.item or [], strict=True):
        assert ours.sequence == their.sequence
        same(ours.net, their.net)
        same(ours.unit_price, their.unitPrice)
        same(ours.product_or_service, their.productOrService)
        same(ours.serviced_date, their.servicedDate)
        if rtype == "ExplanationOfBenefit":
            for a, b in zip(ours.adjudication, their.adjudication or [], strict=True):
                same(a.amount, b.amount)
                same(a.category, b.category)
                same(a.value, b.value)
    totals: Any = resource.total
    if rtype == "ExplanationOfBenefit":
        for a, b in zip(totals, theirs.total or [], strict=True):
            same(a.amount, b.amount)
    else:
        same(totals, theirs.total)
