"""One rule for payments without charges (issue 15, item 6), and charges from FHIR Claims.

A site with no ChargeItem or DFT feed sets `[channels.fhir] charges_from = "claim"`: each
Claim item is a charge (keyed by the claim and the item, so the Claim sent again charges
nothing twice), partitioned with the claim so its EOB pays down what it charged. Without
it, an EOB that matches no account, only a patient with no charges, is unapplied cash with
a work item (as an 835 for an unknown account is), never a credit balance. Only one source
charges per channel: under "claim" a ChargeItem is kept without a charge. Through
`Hub.open` and the file intake, so on the embedded adapters and, in the scale-out pass, on
PostgreSQL + NATS.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from isthmus.app import Hub
from isthmus.config import ConfigError, load_settings
from isthmus.flows import workitems
from isthmus.flows.file_intake import take_file
from isthmus.flows.relay import relay_unpublished
from isthmus.formats.fhir import decode_resource
from isthmus.formats.fhir.claim_charges import claim_charges, item_key
from isthmus.ledger.balance import trial_balance
from isthmus.model.envelope import Envelope
from isthmus.model.events import PatientRef
from tests.synthea_chart import organizations

ORG = "org-north"
CHART = f"""[mappings.facility_company]
"{ORG}" = "C1"
[mappings.department_cost_center]
"{ORG}" = "CC-1"
[mappings.charge_codes]
"185349003" = {{ revenue_account = "4000", service_line = "Ambulatory" }}
"140" = {{ revenue_account = "4010", service_line = "Pharmacy" }}
"80053" = {{ revenue_account = "4020", service_line = "Lab" }}
"""


def _claim(cid: str = "cl-1") -> dict[str, Any]:
    """Synthea's shape: an encounter item without a net, a vaccine item with one."""
    return {
        "resourceType": "Claim",
        "id": cid,
        "status": "active",
        "use": "claim",
        "patient": {"reference": "Patient/p-1"},
        "billablePeriod": {"start": "2026-11-02T10:00:00+00:00"},
        "created": "2026-11-02",
        "provider": {"reference": f"Organization/{ORG}"},
        "item": [
            {
                "sequence": 1,
                "productOrService": {
                    "coding": [{"system": "http://snomed.info/sct", "code": "185349003"}]
                },
                "encounter": [{"reference": "Encounter/e-1"}],
            },
            {
                "sequence": 2,
                "productOrService": {
                    "coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]
                },
                "net": {"value": 140.52, "currency": "USD"},
            },
        ],
        "total": {"value": 265.52, "currency": "USD"},
    }


def _eob(eid: str = "eob-1", claim: str = "cl-1", paid: str = "112.42") -> dict[str, Any]:
    return {
        "resourceType": "ExplanationOfBenefit",
        "id": eid,
        "status": "active",
        "use": "claim",
        "outcome": "complete",
        "patient": {"reference": "Patient/p-1"},
        "claim": {"reference": f"Claim/{claim}"},
        "provider": {"reference": f"Organization/{ORG}"},
        "created": "2026-11-03",
        "insurer": {"display": "ACME"},
        "payment": {"amount": {"value": float(paid), "currency": "USD"}},
        "total": [
            {
                "category": {"coding": [{"code": "submitted"}]},
                "amount": {"value": 265.52, "currency": "USD"},
            }
        ],
    }


def _charge_item() -> dict[str, Any]:
    return {
        "resourceType": "ChargeItem",
        "id": "ci-1",
        "status": "billable",
        "code": {"coding": [{"code": "80053"}]},
        "subject": {"reference": "Patient/p-1"},
        "occurrenceDateTime": "2026-11-02",
        "priceOverride": {"value": 40.0, "currency": "USD"},
        "performingOrganization": {"reference": f"Organization/{ORG}"},
    }


PATIENT = {
    "resourceType": "Patient",
    "id": "p-1",
    "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-9"}],
}


def _bundle(*resources: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": r} for r in resources],
        }
    ).encode()


def _hub(tmp_path: Path, charges_from: str | None) -> Hub:
    extra = f'[channels.fhir]\ncharges_from = "{charges_from}"\n' if charges_from else ""
    config = tmp_path / "site.toml"
    config.write_text(extra + CHART)
    return Hub.open(load_settings(config, data_dir=tmp_path / "data"))


@pytest.fixture
def claims_site(tmp_path: Path) -> Iterator[Hub]:
    hub = _hub(tmp_path, "claim")
    try:
        yield hub
    finally:
        hub.close()


@pytest.fixture
def default_site(tmp_path: Path) -> Iterator[Hub]:
    hub = _hub(tmp_path, None)
    try:
        yield hub
    finally:
        hub.close()


def _send(hub: Hub, *files: bytes) -> None:
    for i, raw in enumerate(files):
        [row] = take_file(hub.store, hub.settings, raw, f"b{i}.json", time.time())
        assert row["status"] == "accepted", row["error"]
        relay_unpublished(hub.store, hub.bus)
        hub.worker().drain()


def _net(hub: Hub, account: str) -> Decimal:
    return sum(
        (ln.debit - ln.credit for ln in hub.store.journal_lines() if ln.account == account),
        Decimal(0),
    )


def test_claim_items_become_charges_with_their_own_business_keys() -> None:
    _, claim = decode_resource(json.dumps(_claim()).encode())
    got = claim_charges(claim, lambda ref: PatientRef("MRN-9", "urn:oid:1.2.3"))  # type: ignore[arg-type]
    assert [
        (seq, c.charge_code, c.amount.amount, c.department, c.visit_number) for seq, c in got
    ] == [(2, "140", Decimal("140.52"), ORG, ""), (1, "185349003", Decimal("125.00"), ORG, "e-1")]
    assert {c.transaction_id for _, c in got} == {"Claim/cl-1/item/1", "Claim/cl-1/item/2"}
    assert item_key("cl-1", 2) == "fhir|Claim/cl-1|item/2"
    pre = json.dumps({**_claim(), "use": "preauthorization"}).encode()
    assert claim_charges(decode_resource(pre)[1], lambda ref: None) == []  # type: ignore[arg-type]


def test_with_charges_from_claim_the_eob_pays_down_what_the_claim_charged(claims_site: Hub) -> None:
    _send(claims_site, _bundle(PATIENT, _claim(), _eob()))
    assert claims_site.store.work_items("open") == []
    assert _net(claims_site, "1010") == Decimal("112.42")  # the cash posted
    assert _net(claims_site, "1200") == Decimal("265.52") - Decimal("112.42")
    assert _net(claims_site, "4000") == Decimal("-125.00")
    assert _net(claims_site, "4010") == Decimal("-140.52")
    stored = claims_site.store.message_by_control_id("fhir", "Claim/cl-1")
    assert stored is not None
    keys = {e.business_key for e in msgspec.json.decode(stored.events, type=list[Envelope])}
    assert {item_key("cl-1", 1), item_key("cl-1", 2)} <= keys
    # the same Claim in another file (a new envelope): its items charge nothing twice
    _send(claims_site, _bundle(PATIENT, {**_claim(), "meta": {"versionId": "2"}}))
    assert _net(claims_site, "1200") == Decimal("153.10")
    # a ChargeItem on this channel is kept, and charges nothing: the Claim is the charge
    _send(claims_site, _bundle(_charge_item()))
    assert _net(claims_site, "4020") == 0
    assert claims_site.store.message_by_control_id("fhir", "ChargeItem/ci-1") is not None
    assert trial_balance(claims_site.store.journal_lines()).balanced


def test_without_charges_an_eob_payment_is_unapplied_cash(default_site: Hub) -> None:
    _send(default_site, _bundle(PATIENT, _claim(), _eob()))
    # the Claim only registers: no charge, and its payment has nothing to apply to
    assert _net(default_site, "1200") == 0 and _net(default_site, "1010") == 0
    [item] = default_site.store.work_items("open")
    assert (item.kind, item.queue) == ("unapplied_cash", "cash-posting")
    assert "112.42 USD" in item.detail and "MRN-9" not in item.detail
    # a second EOB of another claim: its own item (each payment is its own cash)
    _send(default_site, _bundle(_eob("eob-2", "cl-2", "10.00")))
    assert len(default_site.store.work_items("open")) == 2
    # the charges arrive (a ChargeItem feed): a resubmit applies the first payment
    _send(
        default_site,
        _bundle({**_charge_item(), "priceOverride": {"value": 300.0, "currency": "USD"}}),
    )
    workitems.resubmit(default_site.store, default_site.bus, item.id, "", time.time())
    default_site.worker().drain()
    assert _net(default_site, "1010") == Decimal("112.42")
    assert _net(default_site, "1200") == Decimal("300.00") - Decimal("112.42")
    assert [w.kind for w in default_site.store.work_items("open")] == ["unapplied_cash"]


def test_charges_from_takes_chargeitem_or_claim_only(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[channels.fhir]\ncharges_from = "claims"\n')
    with pytest.raises(ConfigError, match="charges_from must be chargeitem or claim"):
        load_settings(config, data_dir=tmp_path / "data")
    config.write_text('[channels.fhir]\ncharge_from = "claim"\n')
    with pytest.raises(ConfigError, match=r"did you mean channels\.fhir\.charges_from"):
        load_settings(config, data_dir=tmp_path / "data")


SYNTHEA = sorted(
    (Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora" / "fhir-r4" / "synthea")
    .resolve()
    .glob("*.json")
)[:3]
VALUES = {
    "unmapped_facility": {"company": "C1"},
    "unmapped_department": {"cost_center": "CC-1"},
    "unmapped_charge_code": {"revenue_account": "4000", "service_line": "General"},
}


def test_a_synthea_site_with_no_chart_maps_each_key_once_and_then_everything_posts(
    tmp_path: Path,
) -> None:
    """The issue's trial: Synthea bundles on a site with no chart opened one item per
    message. Now each missing facility and code is one item; mapping them in any order
    releases the Claims' charges and then their EOBs, which post: no unapplied cash, and
    the cash posted is the EOBs' payments. (The site's cost centers are in its config:
    a department longer than an HL7 code is shown by a digest, formats/hl7v2/
    code_display.py, and mapped in the config, not from the item.)"""
    config = tmp_path / "site.toml"
    config.write_text(
        '[channels.fhir]\ncharges_from = "claim"\n'
        "[mappings.department_cost_center]\n"
        + "".join(f'"{o}" = "CC-1"\n' for o in organizations(SYNTHEA))
    )
    hub = Hub.open(load_settings(config, data_dir=tmp_path / "data"))
    try:
        _send(hub, *(p.read_bytes() for p in SYNTHEA))
        first = hub.store.work_items("open")
        keys = [(w.kind, w.key) for w in first]
        assert keys and len(keys) == len(set(keys))  # one item per missing key
        assert {k for k, _ in keys} == {"unmapped_facility"}  # the first thing missing
        eobs = [
            e["resource"]
            for p in SYNTHEA
            for e in json.loads(p.read_bytes())["entry"]
            if e["resource"]["resourceType"] == "ExplanationOfBenefit"
        ]
        held = sum(t.count for t in hub.store.hold_totals([w.event_id for w in first]).values())
        assert held > len(eobs) > len(first)  # the charges and the payments, behind few items
        rounds = 0
        while open_items := hub.store.work_items("open"):
            rounds += 1
            assert rounds <= 3, [(w.kind, w.key) for w in open_items]
            for w in open_items:
                assert w.kind in VALUES, (w.kind, w.detail)  # never unapplied cash
                workitems.resolve(hub.store, w.id, VALUES[w.kind], "", time.time(), bus=hub.bus)
            hub.worker().drain()
        cash = sum(
            (Decimal(str(r["payment"]["amount"]["value"])).quantize(Decimal("0.01")) for r in eobs),
            Decimal(0),
        )
        assert abs(_net(hub, "1010") - cash) <= Decimal("0.01") * len(eobs)
        assert _net(hub, "1010") > 0
        assert trial_balance(hub.store.journal_lines()).balanced
    finally:
        hub.close()
