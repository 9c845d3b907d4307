"""Issue 14, items 2 and 5 for FHIR: a posting whose Patient has not arrived is held (an
``awaiting_patient`` work item in the queue that owns its money), then linked and posted to
that patient's account token when the Patient arrives, never to an account of its own; and
a resource version is one fact, whichever path brings it (POST, PUT, a Bundle, a file)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from msgspec.json import decode

from isthmus.flows import workitems
from isthmus.flows.accounts import account_token
from isthmus.flows.fhir_intake import FhirIntake
from isthmus.model.envelope import Envelope
from isthmus.observe.views import trial_balance_view
from tests.api.test_fhir_api import (
    CORPUS,
    Site,
    _account,
    _balance,
    _charge,
    _patient,
    _site,
)
from tests.chart import DEMO_CHART

MRN_KEY = "urn:oid:1.2.36.146.595.217.0.1|MRN-77"  # _patient()'s MR identifier


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    config = tmp_path / "site.toml"
    config.write_text(DEMO_CHART + '[mappings.facility_company]\n"1" = "C100"\n"NORTH" = "C100"\n')
    yield from _site(tmp_path / "data", config)


def _tokens(s: Site, account: str) -> set[str]:
    return {ln.dims.account_token for ln in s.hub.store.journal_lines() if ln.account == account}


def _open(s: Site) -> list[tuple[str, str, str]]:
    return [(w.kind, w.queue, w.correlation_id) for w in s.hub.store.work_items("open")]


def test_a_charge_before_its_patient_is_held_then_posts_to_the_patients_account(site: Site) -> None:
    assert site.call("POST", "/fhir/ChargeItem", _charge()).status_code == 201
    site.hub.worker().drain()
    assert list(site.hub.store.journal_lines()) == []  # nothing on an account of its own
    assert _open(site) == [("awaiting_patient", "revenue-integrity", "fhir/ChargeItem/ci1")]
    [item] = site.hub.store.work_items("open")
    assert "Patient/p1" in item.detail and "MRN-77" not in item.detail

    for path, body in (("/fhir/Patient", _patient()), ("/fhir/Account", _account())):
        assert site.call("POST", path, body).status_code == 201
    site.hub.worker().drain()
    assert _balance(site.call("GET", "/fhir/Account/acct1")) == {"USD": Decimal("125.50")}
    ar = site.hub.processor.ar_account
    assert _tokens(site, ar) == {account_token(site.hub.processor.secret, MRN_KEY)}
    assert _open(site) == [] and trial_balance_view(site.hub.store)["balanced"]
    assert site.hub.store.work_item(item.id).status == "resolved"  # type: ignore[union-attr]
    # a later charge for the same patient posts at once, and a resend changes nothing
    assert site.call("POST", "/fhir/ChargeItem", _charge("ci2", 10.0)).status_code == 201
    assert site.call("POST", "/fhir/ChargeItem", _charge()).status_code == 200
    site.hub.worker().drain()
    assert _balance(site.call("GET", "/fhir/Account/acct1")) == {"USD": Decimal("135.50")}
    assert _open(site) == []


def test_a_payment_before_its_patient_waits_in_cash_posting(site: Site) -> None:
    """ClaimResponse R3500 pays 100.47 for Patient/1 with no billing account for its
    claim: the cash waits for the Patient instead of landing on an orphan token."""
    raw = (CORPUS / "examples" / "ClaimResponse-R3500.json").read_bytes()
    assert site.call("POST", "/fhir/ClaimResponse", raw=raw).status_code == 201
    site.hub.worker().drain()
    assert list(site.hub.store.journal_lines()) == []
    assert _open(site) == [("awaiting_patient", "cash-posting", "fhir/ClaimResponse/R3500")]
    patient = {
        "resourceType": "Patient",
        "id": "1",
        "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-1"}],
    }
    assert site.call("POST", "/fhir/Patient", patient).status_code == 201
    site.hub.worker().drain()
    # Patient/1 arrived, but nothing was charged to it: unapplied cash (issue 15, rule 6)
    assert list(site.hub.store.journal_lines()) == []
    [unapplied] = site.hub.store.work_items("open")
    assert (unapplied.kind, unapplied.queue) == ("unapplied_cash", "cash-posting")
    charge = {
        **_charge("ci-1", 300.00),
        "subject": {"reference": "Patient/1"},
        "performingOrganization": {"reference": "Organization/1"},
    }
    charge.pop("account")
    assert site.call("POST", "/fhir/ChargeItem", charge).status_code == 201
    site.hub.worker().drain()
    workitems.resubmit(site.hub.store, site.hub.bus, unapplied.id, "", 0.0)
    site.hub.worker().drain()
    cash = sum(
        (ln.debit - ln.credit for ln in site.hub.store.journal_lines() if ln.account == "1010"),
        Decimal(0),
    )
    assert cash == Decimal("100.47") and _open(site) == []
    token = account_token(site.hub.processor.secret, "urn:oid:1.2.3|MRN-1")
    assert _tokens(site, "1210") == {token}  # the copay, on the patient's own account


def _versioned_charge() -> dict[str, Any]:
    return {**_charge(), "meta": {"versionId": "1"}}


def _business_keys(s: Site) -> list[str]:
    out = []
    for m in s.hub.store.messages(status="accepted"):
        if m.message_type == "ChargeItem" and m.events:
            out += [e.business_key for e in decode(m.events, type=list[Envelope])]
    return out


def test_the_same_resource_version_is_one_fact_on_every_path(site: Site) -> None:
    for path, body in (("/fhir/Patient", _patient()), ("/fhir/Account", _account())):
        assert site.call("POST", path, body).status_code == 201
    assert site.call("POST", "/fhir/ChargeItem", _versioned_charge()).status_code == 201
    assert site.call("PUT", "/fhir/ChargeItem/ci1", _versioned_charge()).status_code == 200
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": _versioned_charge(), "request": {"method": "PUT", "url": "ChargeItem/ci1"}}
        ],
    }
    r = site.call("POST", "/fhir", raw=json.dumps(bundle, indent=1).encode())
    assert r.status_code == 200, r.text
    # a file (`isthmus ingest`, the drop folder): the same intake's take_file
    intake = FhirIntake(
        site.hub.store, site.hub.bus, site.hub.settings.tenant, clock=site.hub.clock
    )
    assert (
        intake.take_file(json.dumps(_versioned_charge(), indent=3).encode(), "drop").status == 200
    )
    site.hub.worker().drain()
    assert _balance(site.call("GET", "/fhir/Account/acct1")) == {"USD": Decimal("125.50")}
    assert set(_business_keys(site)) == {"fhir|ChargeItem/ci1|1"}
    assert _open(site) == []
