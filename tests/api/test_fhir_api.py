"""The FHIR R4 API under /fhir, through `build_app(hub)` and the real inbox and worker.

Runs through `Hub.open`, so on the embedded adapters and, in the second CI pass, on
PostgreSQL + NATS. Writes need an initialized hub and a token of a writing role.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhirclient.models.account import Account as FcAccount
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.chargeitem import ChargeItem as FcChargeItem
from fhirclient.models.codeableconcept import CodeableConcept
from fhirclient.models.identifier import Identifier
from fhirclient.models.operationoutcome import OperationOutcome
from fhirclient.models.patient import Patient as FcPatient

from isthmus.api.fhir import BALANCE_URL
from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.formats.fhir import FINANCE_TYPES
from isthmus.governance import identity, rbac
from isthmus.observe.views import trial_balance_view
from tests.api.fhir_call import call
from tests.chart import DEMO_CHART, demo_config
from tests.synthea_chart import mapping_tables

CORPUS = (Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora" / "fhir-r4").resolve()
EXAMPLES = sorted(
    p for p in (CORPUS / "examples").glob("*.json") if p.name.split("-")[0] in FINANCE_TYPES
)
SYNTHEA = sorted((CORPUS / "synthea").glob("*.json"))
NOW = 1_700_000_000.0
MEDIA = "application/fhir+json"


@dataclass
class Site:
    hub: Hub
    token: str
    reader: str

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = "admin",
        raw: bytes | None = None,
    ) -> httpx.Response:
        tok = {"admin": self.token, "reader": self.reader}.get(token or "", token)
        return call(self.hub, method, path, body, token=tok, raw=raw, media=MEDIA)


def _site(path: Path, config: Path | None = None) -> Iterator[Site]:
    """A hub on `path` with `config`, by default the demo chart (its charges must post)."""
    hub = Hub.open(load_settings(config or demo_config(path.parent), data_dir=path))
    try:
        gov = hub.governance
        admin = identity.principal("root", "user", (rbac.ADMIN,), NOW)
        issued = identity.issue(admin, (rbac.ADMIN,), NOW)
        assert gov.initialize(admin, issued.token)
        reader = identity.principal("dash", "service", (rbac.READ_ONLY,), NOW)
        gov.save_principal(reader)
        r = identity.issue(reader, (rbac.READ_ONLY,), NOW)
        gov.add_token(r.token)
        yield Site(hub, issued.clear, r.clear)
    finally:
        hub.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from _site(tmp_path)


def _issues(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.headers["content-type"].startswith(MEDIA)
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    OperationOutcome(body)  # a valid R4 OperationOutcome for a real FHIR client
    return list(body["issue"])


def _patient() -> dict[str, Any]:
    p = FcPatient()
    p.id = "p1"
    p.identifier = [_ident("MR", "urn:oid:1.2.36.146.595.217.0.1", "MRN-77")]
    p.gender = "female"
    return dict(p.as_json())


def _ident(code: str, system: str, value: str) -> Any:
    i = Identifier()
    i.system, i.value = system, value
    i.type = CodeableConcept(
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": code}]}
    )
    return i


def _account() -> dict[str, Any]:
    a = FcAccount(
        {
            "resourceType": "Account",
            "id": "acct1",
            "status": "active",
            "identifier": [{"value": "ACC-1001"}],
            "subject": [{"reference": "Patient/p1"}],
            "owner": {"reference": "Organization/NORTH"},
        }
    )
    return dict(a.as_json())


def _charge(cid: str = "ci1", amount: float = 125.50) -> dict[str, Any]:
    c = FcChargeItem(
        {
            "resourceType": "ChargeItem",
            "id": cid,
            "status": "billable",
            "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "80053"}]},
            "subject": {"reference": "Patient/p1"},
            "occurrenceDateTime": "2025-03-04T10:00:00Z",
            "quantity": {"value": 1},
            "priceOverride": {"value": amount, "currency": "USD"},
            "performingOrganization": {"reference": "Organization/NORTH"},
            "costCenter": {"reference": "Organization/LAB"},
            "account": [{"reference": "Account/acct1"}],
        }
    )
    return dict(c.as_json())


def _balance(r: httpx.Response) -> dict[str, Decimal]:
    acct = FcAccount(r.json())
    return {
        e.valueMoney.currency: Decimal(str(e.valueMoney.value))
        for e in acct.extension or []
        if e.url == BALANCE_URL
    }


def test_metadata_is_an_r4_capability_statement(site: Site) -> None:
    r = site.call("GET", "/fhir/metadata", token="reader")
    assert r.status_code == 200 and r.headers["content-type"].startswith(MEDIA)
    cs = CapabilityStatement(r.json())
    assert cs.fhirVersion == "4.0.1"
    types = {res.type for res in cs.rest[0].resource}
    assert types == set(FINANCE_TYPES) | {"SupplyDelivery", "SupplyRequest"}
    assert len(types) == 13
    assert {i.code for i in cs.rest[0].interaction} == {"transaction", "batch"}


def test_fhirclient_resources_post_read_and_account_balance(site: Site) -> None:
    for path, body in (
        ("/fhir/Patient", _patient()),
        ("/fhir/Account", _account()),
        ("/fhir/ChargeItem", _charge()),
    ):
        r = site.call("POST", path, body)
        assert r.status_code == 201, r.text
        assert r.headers["content-type"].startswith(MEDIA)
    site.hub.worker().drain()
    r = site.call("GET", "/fhir/Patient/p1")
    assert r.status_code == 200
    assert FcPatient(r.json()).identifier[0].value == "MRN-77"
    # read-only reads the Patient without its identifiers (governance.phi_access)
    r = site.call("GET", "/fhir/Patient/p1", token="reader")
    assert r.status_code == 200 and FcPatient(r.json()).identifier is None
    r = site.call("GET", "/fhir/Account/acct1", token="reader")
    assert r.status_code == 200
    assert _balance(r) == {"USD": Decimal("125.50")}
    assert trial_balance_view(site.hub.store)["balanced"]
    # a credit lowers it
    credit = _charge("ci2", -25.50)
    assert site.call("POST", "/fhir/ChargeItem", credit).status_code == 201
    site.hub.worker().drain()
    assert _balance(site.call("GET", "/fhir/Account/acct1")) == {"USD": Decimal("100.00")}


def test_resend_has_no_second_effect_and_other_content_conflicts(site: Site) -> None:
    for path, body in (
        ("/fhir/Patient", _patient()),
        ("/fhir/Account", _account()),
        ("/fhir/ChargeItem", _charge()),
    ):
        assert site.call("POST", path, body).status_code == 201
    site.hub.worker().drain()
    before = site.hub.store.counts()
    r = site.call("POST", "/fhir/ChargeItem", _charge())
    assert r.status_code == 200
    site.hub.worker().drain()
    assert site.hub.store.counts() == before
    assert _balance(site.call("GET", "/fhir/Account/acct1")) == {"USD": Decimal("125.50")}
    r = site.call("POST", "/fhir/ChargeItem", _charge(amount=999.0))
    assert r.status_code == 409
    assert _issues(r)[0]["code"] == "duplicate"
    # PUT of the same content: no change; PUT of a new Patient version: accepted, kept
    assert site.call("PUT", "/fhir/Patient/p1", _patient()).status_code == 200
    changed = {**_patient(), "gender": "male"}
    assert site.call("PUT", "/fhir/Patient/p1", changed).status_code == 200
    assert site.call("PUT", "/fhir/Patient/p2", {**_patient(), "id": "p2"}).status_code == 201


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_official_finance_examples_are_accepted(tmp_path: Path, path: Path) -> None:
    for s in _site(tmp_path):
        rtype = path.name.split("-")[0]
        r = s.call("POST", f"/fhir/{rtype}", raw=path.read_bytes())
        assert r.status_code == 201, r.text
        rid = json.loads(path.read_bytes())["id"]
        assert s.call("GET", f"/fhir/{rtype}/{rid}").status_code == 200
        s.hub.worker().drain()
        assert trial_balance_view(s.hub.store)["balanced"]


def _synthea_site(tmp_path: Path) -> Iterator[Site]:
    """A site whose facility table maps every Synthea Organization (the Claims' provider)
    to company C100, as a hospital maps its own facilities, and which takes its charges
    from the Claims (it has no ChargeItem feed: tests/synthea_chart.py)."""
    config = tmp_path / "site.toml"
    config.write_text(DEMO_CHART + mapping_tables(SYNTHEA))
    yield from _site(tmp_path / "data", config)


@pytest.fixture
def synthea(tmp_path: Path) -> Iterator[Site]:
    yield from _synthea_site(tmp_path)


def _eob_payments() -> tuple[Decimal, Decimal, int]:
    """Read independently of the hub: the sum of ExplanationOfBenefit.payment.amount over
    the corpus, each rounded half up to the cent (what an EFT can carry), the raw sum, and
    the EOB count."""
    rounded, raw, n = Decimal(0), Decimal(0), 0
    for p in SYNTHEA:
        for e in json.loads(p.read_bytes(), parse_float=Decimal, parse_int=Decimal)["entry"]:
            r = e["resource"]
            if r["resourceType"] == "ExplanationOfBenefit":
                amount = r["payment"]["amount"]
                assert amount["currency"] == "USD"
                raw += amount["value"]
                rounded += amount["value"].quantize(Decimal("0.01"), ROUND_HALF_UP)
                n += 1
    return rounded, raw, n


def _phi(paths: list[Path]) -> set[str]:
    """Names, birth dates, MRNs, addresses and phones of the corpus' Patients."""
    out: set[str] = set()
    for p in paths:
        for e in json.loads(p.read_bytes())["entry"]:
            r = e["resource"]
            if r["resourceType"] != "Patient":
                continue
            out |= {n["family"] for n in r.get("name", []) if "family" in n}
            out |= {g for n in r.get("name", []) for g in n.get("given", [])}
            out |= {r["birthDate"]} if "birthDate" in r else set()
            out |= {i["value"] for i in r.get("identifier", []) if "value" in i}
            out |= {ln for a in r.get("address", []) for ln in a.get("line", [])}
            out |= {t["value"] for t in r.get("telecom", []) if "value" in t}
    return {x for x in out if len(x) >= 4}


def test_synthea_eob_payments_are_the_cash_posted(synthea: Site) -> None:
    """Issue 4: every Synthea bundle through /fhir as a transaction; the ledger balances
    and the EOB payments equal the cash posted (DR cash clearing), nothing unapplied."""
    site = synthea
    for path in SYNTHEA:
        r = site.call("POST", "/fhir", raw=path.read_bytes())
        assert r.status_code == 200, (path.name, r.text[:2000])
    site.hub.worker().drain()
    assert trial_balance_view(site.hub.store)["balanced"]
    expected, raw, n = _eob_payments()
    assert n == 398 and abs(expected - raw) <= Decimal("0.005") * n
    entries = [e for e in site.hub.store.entries() if e.channel == "fhir"]
    cash = [ln for e in entries for ln in e.lines if ln.account == "1010"]
    assert sum((ln.debit - ln.credit for ln in cash), Decimal(0)) == expected
    # one entry per paid EOB, each matched by its patient reference
    paid = [e for e in entries if any(ln.account == "1010" for ln in e.lines)]
    assert len(paid) == n - _zero_payments() and all(
        "matched by FHIR patient reference" in e.memo for e in paid
    )
    # explicitly: no unapplied cash, no other hold
    assert site.hub.store.work_items(status="open") == []
    # patient responsibility (coinsurance, deductible) moved to the patient's side of A/R
    assert any(ln.account == "1210" for e in entries for ln in e.lines)
    # no PHI in the journal: memos, keys, dimensions
    text = "\n".join(
        f"{e.entry_key} {e.memo} {e.correlation_id} "
        + " ".join(
            f"{ln.dims.company} {ln.dims.cost_center} {ln.dims.service_line} "
            f"{ln.dims.account_token}"
            for ln in e.lines
        )
        for e in entries
    )
    leaks = {x for x in _phi(SYNTHEA) if x in text}
    assert not leaks, sorted(leaks)[:5]
    # the same bundles again: nothing posts twice
    before = len(site.hub.store.entries())
    for path in SYNTHEA[:2]:
        assert site.call("POST", "/fhir", raw=path.read_bytes()).status_code == 200
    site.hub.worker().drain()
    assert len(site.hub.store.entries()) == before


def _zero_payments() -> int:
    """EOBs that pay nothing and adjust nothing (Synthea's encounter-only claims)."""
    n = 0
    for p in SYNTHEA:
        for e in json.loads(p.read_bytes(), parse_float=Decimal, parse_int=Decimal)["entry"]:
            r = e["resource"]
            if r["resourceType"] != "ExplanationOfBenefit":
                continue
            pay = r["payment"]["amount"]["value"].quantize(Decimal("0.01"), ROUND_HALF_UP)
            adjusted = any(
                a["amount"]["value"]
                for i in r.get("item", [])
                for a in i.get("adjudication", [])
                if "amount" in a
            )
            n += pay == 0 and not adjusted
    return n


def test_synthea_bundles_go_through_as_transactions(synthea: Site) -> None:
    site = synthea
    assert len(SYNTHEA) >= 10
    for path in SYNTHEA:
        data = path.read_bytes()
        r = site.call("POST", "/fhir", raw=data)
        assert r.status_code == 200, (path.name, r.text[:2000])
        body = r.json()
        assert body["resourceType"] == "Bundle" and body["type"] == "transaction-response"
        assert len(body["entry"]) == len(json.loads(data)["entry"])
        statuses = {e["response"]["status"] for e in body["entry"]}
        # Organizations and Practitioners recur across bundles: 200 (same or newer)
        assert statuses <= {"201 Created", "200 OK"}, statuses
        if path == SYNTHEA[0]:
            assert statuses == {"201 Created"}
    site.hub.worker().drain()
    tb = trial_balance_view(site.hub.store)
    assert tb["balanced"]
    counts = site.hub.store.counts()
    assert counts["patients"] == len(SYNTHEA) and counts["rejected"] == 0
    assert counts["unpublished"] == 0 and counts["open_work_items"] == 0
    # the same bundle again: every entry is a duplicate, nothing new is stored
    r = site.call("POST", "/fhir", raw=SYNTHEA[0].read_bytes())
    assert r.status_code == 200
    assert {e["response"]["status"] for e in r.json()["entry"]} == {"200 OK"}
    site.hub.worker().drain()
    assert site.hub.store.counts() == counts
    # a Patient of the bundle reads back, its references rewritten to Type/id
    first = json.loads(SYNTHEA[0].read_bytes())["entry"]
    enc = next(e["resource"] for e in first if e["resource"]["resourceType"] == "Encounter")
    r = site.call("GET", f"/fhir/Encounter/{enc['id']}", token="reader")
    assert r.status_code == 200
    assert r.json()["subject"]["reference"].startswith("Patient/")


def test_broken_inputs_answer_operation_outcomes_naming_the_field(site: Site) -> None:
    r = site.call("POST", "/fhir/Claim", raw=b"{not json")
    assert r.status_code == 400 and _issues(r)[0]["code"] == "structure"
    claim = json.loads((CORPUS / "examples" / "Claim-100150.json").read_bytes())
    claim["total"] = {"value": "lots", "currency": "USD"}
    r = site.call("POST", "/fhir/Claim", claim)
    assert r.status_code == 400
    assert _issues(r)[0]["expression"] == ["Claim.total.value"]
    charge = _charge()
    del charge["subject"]
    r = site.call("POST", "/fhir/ChargeItem", charge)
    assert r.status_code == 422
    assert any("ChargeItem.subject" in e for i in _issues(r) for e in i.get("expression", []))
    r = site.call("POST", "/fhir/Observation", {"resourceType": "Observation"})
    assert r.status_code == 404 and _issues(r)[0]["code"] == "not-supported"
    r = site.call("POST", "/fhir/Claim", _patient())
    assert r.status_code == 400 and _issues(r)[0]["expression"] == ["resourceType"]
    r = site.call("GET", "/fhir/Claim/nope", token="reader")
    assert r.status_code == 404 and _issues(r)[0]["code"] == "not-found"
    r = site.call("DELETE", "/fhir/Claim/nope")
    assert r.status_code == 405 and _issues(r)[0]["code"] == "not-supported"
    bad = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001",
                "resource": charge,
                "request": {"method": "POST", "url": "ChargeItem"},
            }
        ],
    }
    r = site.call("POST", "/fhir", bad)
    assert r.status_code == 422
    assert any(e.startswith("Bundle.entry[0]") for i in _issues(r) for e in i.get("expression", []))
    assert site.hub.store.counts()["unpublished"] == 0


def test_batch_answers_per_entry(site: Site) -> None:
    charge = _charge()
    del charge["subject"]
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": _patient(), "request": {"method": "PUT", "url": "Patient/p1"}},
            {"resource": charge, "request": {"method": "POST", "url": "ChargeItem"}},
            {"request": {"method": "GET", "url": "Patient/p1"}},
        ],
    }
    r = site.call("POST", "/fhir", batch)
    assert r.status_code == 200
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses[0].startswith("201") and statuses[1].startswith("422")
    assert statuses[2].startswith("200")


def test_writes_need_a_writing_role(site: Site) -> None:
    assert site.call("POST", "/fhir/Patient", _patient(), token=None).status_code == 401
    assert site.call("POST", "/fhir/Patient", _patient(), token="reader").status_code == 403


def test_an_unexpected_failure_is_a_500_outcome(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("store down")

    monkeypatch.setattr(site.hub.store, "accept", boom)
    r = site.call("POST", "/fhir/Patient", _patient())
    assert r.status_code == 500 and _issues(r)[0]["code"] == "exception"
    assert "store down" not in r.text


def test_official_payer_examples_post_as_remittances(tmp_path: Path) -> None:
    """The R4 payer-side examples through /fhir with provider Organization/1 mapped to a
    company: a ClaimResponse pays (cash + copay as patient responsibility), one with a
    payment adjustment pays its benefit and holds the adjustment like a PLB with no payee
    company, an error outcome is a denial, a PaymentReconciliation is an EFT waiting for
    its bank deposit, and what moves no money posts nothing. Patient/1 was charged first
    (a ChargeItem): a payment is applied only to an account with charges (issue 15)."""
    config = tmp_path / "site.toml"
    config.write_text(DEMO_CHART + '[mappings.facility_company]\n"1" = "C100"\n')
    for s in _site(tmp_path / "data", config):
        charge = {
            **_charge("ci-1", 500.00),
            "subject": {"reference": "Patient/1"},
            "performingOrganization": {"reference": "Organization/1"},
        }
        charge.pop("account")
        assert s.call("POST", "/fhir/ChargeItem", charge).status_code == 201
        s.hub.worker().drain()  # the charge waits for Patient/1 first
        names = [
            "ClaimResponse-R3500.json",
            "ClaimResponse-R3501.json",
            "ClaimResponse-R3502.json",
            "ClaimResponse-UR3503.json",
            "ExplanationOfBenefit-EB3500.json",
            "ExplanationOfBenefit-EB3501.json",
            "PaymentNotice-77654.json",
            "PaymentReconciliation-ER2500.json",
        ]
        for name in names:
            r = s.call(
                "POST", f"/fhir/{name.split('-')[0]}", raw=(CORPUS / "examples" / name).read_bytes()
            )
            assert r.status_code == 201, (name, r.text)
        s.hub.worker().drain()
        # the claim payments wait for Patient/1 (no billing account for their claims)
        assert {
            w.correlation_id
            for w in s.hub.store.work_items(status="open")
            if w.kind == "awaiting_patient"
        } == {"fhir/ClaimResponse/R3500", "fhir/ClaimResponse/R3502", "fhir/ChargeItem/ci-1"}
        patient = {
            "resourceType": "Patient",
            "id": "1",
            "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-1"}],
        }
        assert s.call("POST", "/fhir/Patient", patient).status_code == 201
        s.hub.worker().drain()
        assert trial_balance_view(s.hub.store)["balanced"]
        entries = [e for e in s.hub.store.entries() if e.channel == "fhir"]
        by_source = {e.correlation_id: e for e in entries}
        assert set(by_source) == {
            "fhir/ClaimResponse/R3500",
            "fhir/ClaimResponse/R3502",
            "fhir/ChargeItem/ci-1",
        }

        net = {
            (corr, ln.account): ln.debit - ln.credit
            for corr, e in by_source.items()
            for ln in e.lines
            if ln.account in ("1010", "1210")
        }
        assert net["fhir/ClaimResponse/R3500", "1010"] == Decimal("100.47")
        assert net["fhir/ClaimResponse/R3500", "1210"] == Decimal("10.00")  # copay, PR-3
        assert net["fhir/ClaimResponse/R3502", "1010"] == Decimal("182.00")
        held = {(w.kind, w.correlation_id) for w in s.hub.store.work_items(status="open")}
        assert held == {
            ("denial", "fhir/ClaimResponse/R3501"),  # the payee's one item:
            ("unmapped_payee", "mapping:payee_company/1"),
        }
        [eft] = s.hub.store.deposit_records()
        assert (eft.side, eft.reference, eft.amount) == ("eft", "10-12345", Decimal("7000.00"))


def test_search_accounts_and_eobs_by_identifier_and_patient(site: Site) -> None:
    for path, body in (
        ("/fhir/Patient", _patient()),
        ("/fhir/Account", _account()),
        ("/fhir/ChargeItem", _charge()),
    ):
        assert site.call("POST", path, body).status_code == 201
    bundle = json.loads(SYNTHEA[0].read_bytes())
    assert site.call("POST", "/fhir", bundle).status_code == 200
    site.hub.worker().drain()
    r = site.call("GET", "/fhir/Account?identifier=ACC-1001", token="reader")
    assert r.status_code == 200 and r.headers["content-type"].startswith(MEDIA)
    body = r.json()
    assert (body["type"], body["total"]) == ("searchset", 1)
    [entry] = body["entry"]
    assert entry["fullUrl"] == "http://hub/fhir/Account/acct1"  # absolute (FHIR R4 2.36.0.3)
    assert _balance_of(entry["resource"]) == {"USD": Decimal("125.50")}
    assert site.call("GET", "/fhir/Account?patient=Patient/p1").json()["total"] == 1
    assert site.call("GET", "/fhir/Account?patient=p1").json()["total"] == 1
    assert site.call("GET", "/fhir/Account?identifier=other|ACC-1001").json()["total"] == 0
    # Synthea: the patient's EOBs, and one by its claim id (system|value)
    pid = next(
        e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    eobs = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "ExplanationOfBenefit"
    ]
    r = site.call("GET", f"/fhir/ExplanationOfBenefit?patient=Patient/{pid}&_count=1000")
    assert r.json()["total"] == len(eobs) > 1
    ident = eobs[0]["identifier"][0]
    r = site.call(
        "GET", f"/fhir/ExplanationOfBenefit?identifier={ident['system']}|{ident['value']}"
    )
    assert [e["resource"]["id"] for e in r.json()["entry"]] == [eobs[0]["id"]]
    r = site.call("GET", f"/fhir/ExplanationOfBenefit?patient={pid}&_count=2")
    assert len(r.json()["entry"]) == 2 and r.json()["total"] == len(eobs)
    # an unknown parameter is ignored (handling=lenient), a bad _count refused naming it
    every = site.call("GET", "/fhir/Account").json()["total"]
    r = site.call("GET", "/fhir/Account?name=Smith")
    assert r.status_code == 200 and r.json()["total"] == every >= 1
    r = site.call("GET", "/fhir/Account?_count=-1")  # above 500 is a page of 500 (paging)
    assert r.status_code == 400 and _issues(r)[0]["expression"] == ["_count"]
    r = site.call("GET", "/fhir/Claim?identifier=1")
    assert r.status_code == 404 and _issues(r)[0]["code"] == "not-supported"
    assert site.call("GET", "/fhir/Account?identifier=x", token=None).status_code == 401


def _balance_of(doc: dict[str, Any]) -> dict[str, Decimal]:
    return {
        e["valueMoney"]["currency"]: Decimal(str(e["valueMoney"]["value"]))
        for e in doc.get("extension", [])
        if e["url"] == BALANCE_URL
    }
