"""The export's bulk row path (analytics/facts.py) against the model it reads: the slim
charge struct stays in step with `Charge`, and a stored charge event becomes its row
(an accepted message's only; the patient and the account number never reach it); the
collector pause of the export is undone on every exit."""

from __future__ import annotations

import gc
from datetime import UTC, date, datetime
from decimal import Decimal

import msgspec
import pytest

from isthmus.analytics import export, facts
from isthmus.model.events import Charge, PatientRef
from isthmus.model.money import Money


def test_the_charge_columns_are_charge_fields_with_the_same_types_and_defaults() -> None:
    full = {f.encode_name: f for f in msgspec.structs.fields(Charge)}
    for f in msgspec.structs.fields(facts._ChargeColumns):
        assert f.encode_name in full, f.name
        assert (f.type, f.default) == (full[f.encode_name].type, full[f.encode_name].default)
        assert f.required == full[f.encode_name].required, f.name


def test_a_charge_message_becomes_its_row() -> None:
    ev = Charge(
        patient=PatientRef(mrn="MRN0042", authority="HOSP"),
        transaction_id="T1",
        transaction_type="CG",
        quantity=2,
        amount=Money(Decimal("250.00"), "USD"),
        charge_code="80053",
        department="LAB",
        facility="MAIN",
        performing_provider="1234567893",
        service_date=date(2026, 11, 30),
        account_number="A1",
        negative=False,
    )
    envelope = {"event_id": "E1", "type": "Charge", "payload": ev}
    rows = facts.Rows()
    facts.inbox_rows(
        [
            (7, "accepted", 1_764_460_800.0, msgspec.json.encode([envelope])),
            (8, "rejected", 1.0, msgspec.json.encode([envelope])),
        ],
        lambda n: ("", ""),
        rows,
    )
    at = datetime.fromtimestamp(1_764_460_800.0, UTC)
    assert rows.tables["fact_charge"] == [
        (
            7,
            "E1",
            at,
            date(2026, 11, 30),
            "2026-11",
            "CG",
            "80053",
            2,
            Decimal("250.00"),
            "USD",
            "LAB",
            "MAIN",
            "1234567893",
            False,
        )
    ]
    assert "MRN0042" not in repr(rows.tables) and "'A1'" not in repr(rows.tables)


def test_the_collector_pause_is_undone_on_any_exit() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), export._bulk():
        assert not gc.isenabled()
        raise RuntimeError("a failing page")
    assert gc.isenabled()
    gc.disable()  # a host that runs without the collector keeps it off
    try:
        with export._bulk():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
