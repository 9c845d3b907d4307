"""The demo payer's 835 is valid X12 that balances, so every claim in it posts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from isthmus.demo.remit835 import ClaimToPay, remittance_835
from isthmus.flows.interchanges import x12_intake
from isthmus.formats.x12 import parse_835


def test_the_demo_835_is_accepted_and_balances() -> None:
    claims = [ClaimToPay(f"A{i}", Decimal(f"{100 + i}.55")) for i in range(6)]
    raw = remittance_835(claims, day=date(2026, 11, 3), seed=3)
    intake = x12_intake(raw, peer="t", now=0.0, tenant="t")
    assert (intake.inbound.status, intake.inbound.ack_code) == ("accepted", "999-A")
    assert not intake.findings and not intake.held
    [remit] = parse_835(raw).remittances
    assert [c.patient_control_number for c in remit.claims] == [c.account_number for c in claims]
    paid = sum((c.paid for c in remit.claims), Decimal(0))
    assert remit.amount == paid > 0
    assert remit.claims[-1].status == "4" and remit.claims[-1].paid == 0  # denied
    for c in remit.claims:
        assert c.charge - c.paid == sum((a.amount for a in c.adjustments), Decimal(0))
