"""Deriving status events from applied events (flows/status_events.py), one kind at a
time: what speaks, what stays silent (a duplicate, a hold), and which fields it carries."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from isthmus.flows.status_events import Derivation, derive
from isthmus.model.envelope import Envelope, Source
from isthmus.model.events import (
    ClaimRemitted,
    Event,
    PatientPaymentSettled,
    RemitAdjustment,
    ShiftWorked,
    SupplyRequested,
)
from isthmus.store.memory import MemoryStore

WHEN = datetime(2026, 11, 2, 10, 15, tzinfo=UTC)
HOW = Derivation("derive-secret")


def env(ev: Event, channel: str = "x12") -> Envelope:
    return Envelope(
        event_id=f"{channel}/C1/0",
        type=type(ev).__name__,
        occurred_at=WHEN,
        recorded_at=WHEN,
        source=Source(channel, "C1", f"{channel}/C1"),
        correlation_id=f"{channel}/C1",
        causation_id=f"{channel}/C1",
        key="K1",
        payload=ev,
    )


def remit(paid: str, status: str = "1", *adj: RemitAdjustment) -> ClaimRemitted:
    return ClaimRemitted(
        payer_id="P1",
        payer_name="PAYER",
        payee_npi="1",
        payee_tin="2",
        trace_number="TRN9",
        payment_method="ACH",
        patient_control_number="A77",
        claim_status=status,
        charge=Decimal("90.00"),
        paid=Decimal(paid),
        payer_claim_control_number="PCN1",
        adjustments=adj,
    )


def test_a_remittance_payment_and_a_denial() -> None:
    store = MemoryStore()
    with store.transaction() as tx:
        (paid,) = derive(tx, env(remit("60.00")), "posted", HOW)
        denied = derive(
            tx, env(remit("0", "4", RemitAdjustment("CO", "29", Decimal(90)))), "held", HOW
        )
        assert derive(tx, env(remit("60.00")), "duplicate", HOW) == []
        assert derive(tx, env(remit("60.00")), "held", HOW) == []
    assert (paid.type, paid.fields["amount"], paid.fields["trace_number"], paid.key) == (
        "PaymentPosted",
        "60.00",
        "TRN9",
        "K1",
    )
    assert paid.event_id == "x12/C1/0" and paid.channel == "x12"
    assert [(d.type, d.fields["reasons"], d.fields["charge"]) for d in denied] == [
        ("ClaimDenied", "CO-29", "90.00")
    ]


def test_settlements_supply_and_labor() -> None:
    store = MemoryStore()
    pay = PatientPaymentSettled(
        processor="STRIPE",
        deposit_id="D1",
        transaction_id="ch_1",
        kind="payment",
        account_number="A77",
        transaction_date=date(2026, 11, 2),
        deposit_date=date(2026, 11, 3),
        gross=Decimal("20.00"),
        fee=Decimal("0.88"),
        net=Decimal("19.12"),
    )
    req = SupplyRequested(
        request_id="R1",
        item="GLOVES-M",
        location="WARD3",
        quantity=Decimal("40"),
        requested_on=date(2026, 11, 2),
    )
    shift = ShiftWorked(
        shift_id="S1",
        employee_id="E9",
        work_date=date(2026, 11, 2),
        regular_hours=Decimal("8"),
        overtime_hours=Decimal("1.5"),
    )
    with store.transaction() as tx:
        (p,) = derive(tx, env(pay, "settlement"), "posted", HOW)
        (r,) = derive(tx, env(req, "supply"), "posted", HOW)
        (w,) = derive(tx, env(shift, "workforce"), "posted", HOW)
        refund = PatientPaymentSettled(
            **{**{f: getattr(pay, f) for f in pay.__struct_fields__}, "kind": "refund"}
        )
        assert derive(tx, env(refund, "settlement"), "posted", HOW) == []
    assert (p.type, p.fields["amount"], p.fields["processor"]) == (
        "PaymentPosted",
        "20.00",
        "STRIPE",
    )
    assert (r.type, r.fields["item"], r.fields["quantity"]) == ("RequisitionSent", "GLOVES-M", "40")
    assert (w.type, w.fields["hours"], w.fields["overtime_hours"]) == (
        "PayrollAccrued",
        "9.5",
        "1.5",
    )
