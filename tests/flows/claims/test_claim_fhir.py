"""FHIR Claim, ClaimResponse and ExplanationOfBenefit in the claim's life, through the
hub's one FHIR intake (`Hub.open`, the file intake, the worker): a Claim is created and
scrubbed (or left created with a claim-edits item), a ClaimResponse accepts or rejects it,
an EOB pays it with the 835's posting rules; states, items and the ledger asserted."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.flows.file_intake import take_file
from isthmus.flows.relay import relay_unpublished
from isthmus.ledger.balance import trial_balance

ORG = "org-north"
CHART = f"""[channels.fhir]
charges_from = "claim"
[mappings.facility_company]
"{ORG}" = "C1"
[mappings.department_cost_center]
"{ORG}" = "CC-1"
[mappings.charge_codes]
"140" = {{ revenue_account = "4010", service_line = "Pharmacy" }}
"""
PATIENT = {
    "resourceType": "Patient",
    "id": "p-1",
    "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-9"}],
}


def claim(cid: str, total: str, *, items: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "Claim",
        "id": cid,
        "status": "active",
        "use": "claim",
        "patient": {"reference": "Patient/p-1"},
        "insurer": {"reference": "Organization/acme"},
        "billablePeriod": {"start": "2026-11-02T10:00:00+00:00"},
        "created": "2026-11-02",
        "provider": {"reference": f"Organization/{ORG}"},
        "total": {"value": float(total), "currency": "USD"},
    }
    if items:
        doc["item"] = [
            {
                "sequence": 1,
                "productOrService": {
                    "coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]
                },
                "net": {"value": float(total), "currency": "USD"},
            }
        ]
    return doc


def response(rid: str, cid: str, outcome: str, paid: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "id": rid,
        "status": "active",
        "use": "claim",
        "outcome": outcome,
        "patient": {"reference": "Patient/p-1"},
        "created": "2026-11-03",
        "insurer": {"reference": "Organization/acme"},
        "request": {"reference": f"Claim/{cid}"},
        "requestor": {"reference": f"Organization/{ORG}"},
    }
    if outcome == "error":
        doc["error"] = [{"code": {"coding": [{"code": "a001"}]}}]
    if paid is not None:
        doc["payment"] = {
            "amount": {"value": float(paid), "currency": "USD"},
            "identifier": {"value": f"EFT-{rid}"},
        }
    return doc


def eob(eid: str, cid: str, paid: str, charge: str) -> dict[str, Any]:
    return {
        "resourceType": "ExplanationOfBenefit",
        "id": eid,
        "status": "active",
        "use": "claim",
        "outcome": "complete",
        "patient": {"reference": "Patient/p-1"},
        "claim": {"reference": f"Claim/{cid}"},
        "created": "2026-11-04",
        "provider": {"reference": f"Organization/{ORG}"},
        "insurer": {"reference": "Organization/acme"},
        "payment": {
            "amount": {"value": float(paid), "currency": "USD"},
            "identifier": {"value": f"EFT-{eid}"},
        },
        "total": [
            {
                "category": {"coding": [{"code": "submitted"}]},
                "amount": {"value": float(charge), "currency": "USD"},
            }
        ],
    }


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    config = tmp_path / "site.toml"
    config.write_text(CHART)
    h = Hub.open(load_settings(config, data_dir=tmp_path / "data"))
    try:
        yield h
    finally:
        h.close()


def send(hub: Hub, *resources: dict[str, Any]) -> None:
    raw = json.dumps(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": r} for r in resources],
        }
    ).encode()
    [row] = take_file(hub.store, hub.settings, raw, "b.json", time.time())
    assert row["status"] == "accepted", row["error"]
    relay_unpublished(hub.store, hub.bus)
    hub.worker().drain()


def states(hub: Hub) -> dict[str, str]:
    return {c.claim_key: c.state for c in hub.store.claim_states()}


def items(hub: Hub) -> set[tuple[str, str]]:
    return {(w.queue, w.key) for w in hub.store.work_items(status="open")}


def ar(hub: Hub) -> Decimal:
    return sum(
        (ln.debit - ln.credit for ln in hub.store.journal_lines() if ln.account == "1200"),
        Decimal(0),
    )


def test_a_fhir_claim_is_scrubbed_accepted_and_paid(hub: Hub) -> None:
    send(hub, PATIENT, claim("cl-1", "140.52"), claim("cl-0", "0.00", items=False))
    assert states(hub) == {"cl-1": "scrubbed", "cl-0": "created"}
    assert items(hub) == {("claim-edits", "cl-0")}  # a total of 0.00: not sent
    [edit] = hub.store.work_items(status="open")
    assert "charge-total: Claim.total 0" in edit.detail
    assert ar(hub) == Decimal("140.52")  # the Claim's item charged the patient

    send(hub, response("cr-1", "cl-1", "complete"))  # adjudicated, nothing paid yet
    assert states(hub)["cl-1"] == "accepted"
    assert ar(hub) == Decimal("140.52")

    send(hub, eob("eob-1", "cl-1", "112.42", "140.52"))
    assert states(hub)["cl-1"] == "paid"
    assert ar(hub) == Decimal("28.10")  # the 835 posting rule: cash against A/R
    assert trial_balance(hub.store.journal_lines()).balanced
    timeline = hub.store.claim_events("cl-1")
    assert [(e.kind, e.to_state) for e in timeline] == [
        ("created", "created"),
        ("edits_passed", "scrubbed"),
        ("submitted", "submitted"),
        ("ack_accepted", "accepted"),
        ("remit_paid", "paid"),
    ]
    assert timeline[2].causation_id.startswith("fhir/ClaimResponse/cr-1")
    assert all(e.actor in ("fhir", "hub") for e in timeline)


def test_a_claim_response_error_rejects_and_one_that_pays_accepts_then_pays(hub: Hub) -> None:
    send(hub, PATIENT, claim("cl-2", "50.00"), claim("cl-3", "60.00"))
    send(hub, response("cr-2", "cl-2", "error"))
    assert states(hub)["cl-2"] == "rejected"
    assert items(hub) == {("claim-rejections", "cl-2")}  # not a denial: no denials item
    assert ar(hub) == Decimal("110.00")  # nothing posted
    send(hub, response("cr-3", "cl-3", "complete", paid="60.00"))
    assert states(hub)["cl-3"] == "paid"
    kinds = [e.kind for e in hub.store.claim_events("cl-3")]
    assert kinds[-3:] == ["submitted", "ack_accepted", "remit_paid"]
    assert ar(hub) == Decimal("50.00")
    assert trial_balance(hub.store.journal_lines()).balanced
