"""A ChargeItem's account is its Account's business number, not the Account's logical id.

``ChargeItem.account`` names ``Account/<id>``, an id a real FHIR server assigns; the Account
registers its billing account under ``Account.identifier[0].value`` (the PID-18
equivalent, `formats.fhir.events.account_number`). The charge posts to that number, so the
account's lineage (A/R by account), its closed status (an HL7 BAR P06 by that number) and
its balance see it; a charge before its Account is held (``awaiting_account``, the
mechanism of `flows.references`) and posts to that number when the Account arrives."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from msgspec.json import decode

from isthmus.flows import lineage
from isthmus.flows.hl7_inbound import classify
from isthmus.flows.relay import relay_unpublished
from isthmus.model import Charge
from isthmus.model.envelope import Envelope
from isthmus.observe.views import trial_balance_view
from tests.api.test_fhir_api import Site, _balance, _charge, _patient, _site
from tests.chart import DEMO_CHART

MRN_AUTHORITY = "urn:oid:1.2.36.146.595.217.0.1"  # _patient()'s MR identifier
NUMBER = "A1007"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    config = tmp_path / "site.toml"
    config.write_text(DEMO_CHART + '[mappings.facility_company]\n"NORTH" = "C100"\n')
    yield from _site(tmp_path / "data", config)


def _account(identifier: str = NUMBER) -> dict[str, Any]:
    return {
        "resourceType": "Account",
        "id": "acc-7",
        "status": "active",
        "identifier": [{"system": "urn:oid:1.2.3.4.5", "value": identifier}],
        "subject": [{"reference": "Patient/p1"}],
        "owner": {"reference": "Organization/NORTH"},
    }


def _charge_to_acc7(cid: str = "ci1", amount: float = 125.50) -> dict[str, Any]:
    return {**_charge(cid, amount), "account": [{"reference": "Account/acc-7"}]}


def _post(s: Site, path: str, body: dict[str, Any], status: int = 201) -> None:
    r = s.call("POST", path, body)
    assert r.status_code == status, r.text


def _open(s: Site) -> list[tuple[str, str, str]]:
    return [(w.kind, w.queue, w.correlation_id) for w in s.hub.store.work_items("open")]


def _by_account(s: Site, number: str) -> Decimal:
    """A/R attributed to a billing account (`flows.lineage`: what merges and moves use)."""
    with s.hub.store.transaction() as tx:
        cells = lineage.load_account(tx, number).cells
    return sum((c.amount for c in cells), Decimal(0))


def _registered(s: Site, number: str) -> bool:
    with s.hub.store.transaction() as tx:
        return tx.get_billing_account(number) is not None


def _charged_numbers(s: Site) -> list[str]:
    out = []
    for m in s.hub.store.messages(status="accepted"):
        if m.message_type == "ChargeItem" and m.events:
            out += [
                e.payload.account_number
                for e in decode(m.events, type=list[Envelope])
                if isinstance(e.payload, Charge)
            ]
    return out


def _lines(s: Site) -> int:
    return len(list(s.hub.store.journal_lines()))


def _bar_p06(s: Site, number: str) -> None:
    """HL7 BAR^P06 ending billing account `number` of _patient() (PID-3 its MR)."""
    raw = (
        "MSH|^~\\&|EHR|NORTH|ISTHMUS|HUB|20250305101500||BAR^P06^BAR_P06|E1|P|2.5.1\r"
        "EVN|P06|20250305101500\r"
        f"PID|1||MRN-77^^^{MRN_AUTHORITY}^MR||DOE^JANE||19800101|F||||||||||"
        f"{number}^^^NORTH^AN\r"
    ).encode()
    inbound, _ = classify(
        raw, channel="mllp", peer="test", now=1_800_000_000.0, tenant="default", currency="USD"
    )
    s.hub.store.accept([inbound])
    relay_unpublished(s.hub.store, s.hub.bus)


def test_a_charge_posts_to_its_accounts_identifier_not_its_id(site: Site) -> None:
    _post(site, "/fhir/Patient", _patient())
    _post(site, "/fhir/Account", _account())
    site.hub.worker().drain()
    _post(site, "/fhir/ChargeItem", _charge_to_acc7())
    site.hub.worker().drain()
    assert _charged_numbers(site) == [NUMBER]
    assert _balance(site.call("GET", "/fhir/Account/acc-7")) == {"USD": Decimal("125.50")}
    assert _by_account(site, NUMBER) == Decimal("125.50")  # its lineage sees it
    assert _by_account(site, "acc-7") == 0 and not _registered(site, "acc-7")
    assert _registered(site, NUMBER) and _open(site) == []
    # BAR P06 ends A1007 (HL7, by the business number): a later FHIR charge to it is held
    _bar_p06(site, NUMBER)
    site.hub.worker().drain()
    _post(site, "/fhir/ChargeItem", _charge_to_acc7("ci2", 10.0))
    site.hub.worker().drain()
    assert _open(site) == [
        ("charge_to_closed_account", "patient-accounting", "fhir/ChargeItem/ci2")
    ]
    [item] = site.hub.store.work_items("open")
    assert "MRN-77" not in item.detail and "JANE" not in item.detail
    assert _by_account(site, NUMBER) == Decimal("125.50")
    assert trial_balance_view(site.hub.store)["balanced"]


def test_a_charge_before_its_account_is_held_then_posts_to_the_identifier(site: Site) -> None:
    _post(site, "/fhir/Patient", _patient())
    _post(site, "/fhir/ChargeItem", _charge_to_acc7())
    site.hub.worker().drain()
    assert _lines(site) == 0  # nothing on a number no Account registered
    assert _open(site) == [("awaiting_account", "revenue-integrity", "fhir/ChargeItem/ci1")]
    [item] = site.hub.store.work_items("open")
    assert "Account/acc-7" in item.detail
    assert "MRN-77" not in item.detail and NUMBER not in item.detail

    _post(site, "/fhir/Account", _account())
    site.hub.worker().drain()
    assert _open(site) == []
    assert site.hub.store.work_item(item.id).status == "resolved"  # type: ignore[union-attr]
    assert _balance(site.call("GET", "/fhir/Account/acc-7")) == {"USD": Decimal("125.50")}
    assert _by_account(site, NUMBER) == Decimal("125.50")
    assert not _registered(site, "acc-7") and _by_account(site, "acc-7") == 0
    lines = _lines(site)
    # resends (POST, PUT, a Bundle) change nothing
    _post(site, "/fhir/ChargeItem", _charge_to_acc7(), 200)
    _post(site, "/fhir/Account", _account(), 200)
    assert site.call("PUT", "/fhir/ChargeItem/ci1", _charge_to_acc7()).status_code == 200
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": _charge_to_acc7(), "request": {"method": "PUT", "url": "ChargeItem/ci1"}},
            {"resource": _account(), "request": {"method": "PUT", "url": "Account/acc-7"}},
        ],
    }
    r = site.call("POST", "/fhir", raw=json.dumps(bundle).encode())
    assert r.status_code == 200, r.text
    site.hub.worker().drain()
    assert _lines(site) == lines and _open(site) == []
    assert _by_account(site, NUMBER) == Decimal("125.50")
    # the Account is known now: a later charge carries its number from the intake on
    _post(site, "/fhir/ChargeItem", _charge_to_acc7("ci2", 10.0))
    site.hub.worker().drain()
    assert _charged_numbers(site) == ["urn:isthmus:fhir:reference|Account/acc-7", NUMBER]
    assert _by_account(site, NUMBER) == Decimal("135.50") and _open(site) == []
    assert trial_balance_view(site.hub.store)["balanced"]


def test_a_charge_before_its_patient_and_account_waits_for_both(site: Site) -> None:
    _post(site, "/fhir/ChargeItem", _charge_to_acc7())
    site.hub.worker().drain()
    assert _open(site) == [("awaiting_patient", "revenue-integrity", "fhir/ChargeItem/ci1")]
    _post(site, "/fhir/Patient", _patient())
    site.hub.worker().drain()
    assert _lines(site) == 0
    assert _open(site) == [("awaiting_account", "revenue-integrity", "fhir/ChargeItem/ci1")]
    _post(site, "/fhir/Account", _account())
    site.hub.worker().drain()
    assert _open(site) == [] and _by_account(site, NUMBER) == Decimal("125.50")
    assert _balance(site.call("GET", "/fhir/Account/acc-7")) == {"USD": Decimal("125.50")}


def test_an_account_later_in_the_same_bundle_gives_its_number_at_once(site: Site) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": _charge_to_acc7(), "request": {"method": "POST", "url": "ChargeItem"}},
            {"resource": _patient(), "request": {"method": "POST", "url": "Patient"}},
            {"resource": _account(), "request": {"method": "POST", "url": "Account"}},
        ],
    }
    r = site.call("POST", "/fhir", raw=json.dumps(bundle).encode())
    assert r.status_code == 200, r.text
    site.hub.worker().drain()
    assert _charged_numbers(site) == [NUMBER]
    assert _by_account(site, NUMBER) == Decimal("125.50")
    assert site.hub.store.work_items() == []  # never held
