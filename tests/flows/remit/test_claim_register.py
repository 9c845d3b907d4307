"""837 claims go into the claim register; a remittance that names the claim only by the
payer's claim id (CLP07 = REF*F8) still finds its billing account through it."""

from __future__ import annotations

import re

import pytest

from isthmus.model import ClaimSubmitted
from tests.flows.helpers import Rig, hl7, msh, pid, pv1
from tests.flows.remit.helpers import Clp, Remit, ingest_x12
from tests.flows.remit.test_remit_corpus import CORPUS

CLAIM = CORPUS / "linuxforhealth" / "837_005010X222A2" / "demo.example1.837"


def _corrected_claim() -> bytes:
    """The corpus claim with a REF*F8 (payer claim control number) added, SE01 kept right."""
    text = CLAIM.read_text()
    text = re.sub(r"(CLM\*26463774\*[^~]*~)", r"\1REF*F8*ICN777~", text)
    return re.sub(r"SE\*(\d+)\*", lambda m: f"SE*{int(m.group(1)) + 1}*", text).encode()


def test_a_payment_matches_through_the_claim_register(rig: Rig) -> None:
    if not CLAIM.exists():
        pytest.skip(f"{CLAIM} is missing")
    intake = ingest_x12(rig, _corrected_claim())
    assert intake.inbound.ack_code == "999-A", intake.findings
    [claim] = [k.event for k in intake.events if isinstance(k.event, ClaimSubmitted)]
    assert claim.patient_control_number == "26463774"
    assert claim.payer_claim_control_number == "ICN777"
    rig.ingest(
        [
            hl7(
                msh("B1", "BAR^P01^BAR_P01"),
                "EVN|P01|20261102101500",
                pid("700001", account="26463774"),
                pv1("V1"),
            )
        ]
    )
    rig.drain()
    remit = Remit(
        [
            Clp(
                pcn="PAYER-ONLY-REF",
                paid="80.00",
                charge="100.00",
                icn="ICN777",
                cas=[("CO", "45", "20.00")],
            )
        ],
        icn=5,
    )
    ingest_x12(rig, remit.build())
    rig.drain()
    assert rig.store.work_items() == []
    [entry] = [e for e in rig.store.entries() if e.channel == "x12"]
    assert "claim register" in entry.memo
    assert rig.balanced()


def test_reingesting_a_claim_file_registers_nothing_twice(rig: Rig) -> None:
    if not CLAIM.exists():
        pytest.skip(f"{CLAIM} is missing")
    ingest_x12(rig, CLAIM.read_bytes())
    rig.drain()
    ingest_x12(rig, CLAIM.read_bytes())
    assert rig.drain() == 0
    assert rig.store.counts()["messages"] == 1
