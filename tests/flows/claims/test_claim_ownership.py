"""`[ownership]` governs the claim life's inbound answers: 999, 277CA/277 (claim and batch
level) and 271 write the `remittance` domain, as the 835s of the same payers and
clearinghouses do; a sender that does not own it is refused, with no event."""

from __future__ import annotations

import pytest

from isthmus.flows.interchanges import owned_x12, x12_intake
from isthmus.governance import contracts, ownership
from tests.flows.claims.test_claim_batch_status import ca_277

ANSWERS = (
    "AcknowledgementReceived",
    "ClaimStatusReported",
    "ClaimBatchStatusReported",
    "EligibilityReported",
)


def test_every_claim_event_type_has_a_domain() -> None:
    claim_types = [t for t in contracts.event_types() if t.startswith("Claim") or t in ANSWERS]
    assert set(ANSWERS) <= set(claim_types)
    assert {t: ownership.EVENT_DOMAINS.get(t) for t in claim_types} == {
        "AcknowledgementReceived": "remittance",
        "ClaimBatchStatusReported": "remittance",
        "ClaimRemitted": "remittance",
        "ClaimStatusReported": "remittance",
        "ClaimSubmitted": "claim",
        "EligibilityReported": "remittance",
    }


@pytest.mark.parametrize(("owners", "status"), [("CLEARING", "accepted"), ("PAYERX", "rejected")])
def test_a_277ca_is_refused_unless_its_sender_owns_remittances(owners: str, status: str) -> None:
    # the ISA of the test 277CA names SENDER; the table names who owns remittances
    raw = ca_277("B1", "A3:24").replace("SENDER         ", f"{owners:<15}", 1)
    table = ownership.parse({"remittance": ["CLEARING"]})
    got = owned_x12(x12_intake(raw.encode(), peer="t", now=1.8e9, tenant="t"), table)
    assert got.inbound.status == status
    assert ("remittance" in got.inbound.error) is (status == "rejected")
    assert len(got.events) == (1 if status == "accepted" else 0)
