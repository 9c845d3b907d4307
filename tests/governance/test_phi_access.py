"""Patient data by role (issue 16, item 1): every PHI-bearing route against every role.

`governance.phi_access` is the one table. Readers (admin, integration-engineer, auditor)
get the Patient and Encounter as stored; `read-only`, `finance-approver` and
`revenue-cycle` get them without identifiers, names, birth date, addresses (or a 403 from
the permission table), and the finance types without a patient's name in reference
displays. Runs through `Hub.open`, so on PostgreSQL + NATS too in the second CI pass.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest

from isthmus.api.http import build_app
from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.console.app import PHI_ROLES
from isthmus.governance import identity, phi_access, rbac

NOW = 1_700_000_000.0
SECRETS = ("Smithson", "Jane", "1942-08-17", "MRN-77", "555-0100", "Elm Street", "V-12345")

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "gender": "female",
    "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "MRN-77"}],
    "name": [{"family": "Smithson", "given": ["Jane"]}],
    "birthDate": "1942-08-17",
    "telecom": [{"system": "phone", "value": "555-0100"}],
    "address": [{"line": ["1 Elm Street"], "city": "Springfield"}],
}
ENCOUNTER = {
    "resourceType": "Encounter",
    "id": "e1",
    "status": "finished",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
    "identifier": [{"value": "V-12345"}],
    "subject": {"reference": "Patient/p1", "display": "Jane Smithson"},
    "period": {"start": "2025-03-04T10:00:00Z"},
}
ACCOUNT = {
    "resourceType": "Account",
    "id": "acct1",
    "status": "active",
    "name": "Jane Smithson",
    "identifier": [{"value": "ACC-1001"}],
    "subject": [{"reference": "Patient/p1", "display": "Jane Smithson"}],
}
# (route, the resource type it answers): every route that can answer patient data
PHI_ROUTES = [
    ("/fhir/Patient/p1", "Patient"),
    ("/fhir/Encounter/e1", "Encounter"),
    ("/fhir/Account/acct1", "Account"),
    ("/fhir/Account?patient=Patient/p1", "Account"),
    ("/api/v1/messages/fhir/Patient/p1", ""),
    ("/api/v1/messages/fhir/Encounter/e1", ""),
    ("/api/v1/workitems", ""),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, dict[str, str]]]:
    hub = Hub.open(load_settings(None, data_dir=tmp_path_factory.mktemp("phi")))
    try:
        gov = hub.governance
        tokens: dict[str, str] = {}
        for i, role in enumerate(rbac.ROLES):
            p = identity.principal(f"p-{role}", "service", (role,), NOW)
            issued = identity.issue(p, (role,), NOW)
            if i == 0:
                assert gov.initialize(p, issued.token)
            else:
                gov.save_principal(p)
                gov.add_token(issued.token)
            tokens[role] = issued.clear
        for doc in (PATIENT, ENCOUNTER, ACCOUNT):
            r = _call(
                hub,
                "PUT",
                f"/fhir/{doc['resourceType']}/{doc['id']}",
                tokens[rbac.ADMIN],
                json.dumps(doc).encode(),
            )
            assert r.status_code in (200, 201), r.text
        yield hub, tokens
    finally:
        hub.close()


def _call(hub: Hub, method: str, path: str, token: str, body: bytes = b"") -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(hub), client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
            return await c.request(
                method,
                path,
                content=body or None,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/fhir+json",
                },
            )

    return asyncio.run(go())


@pytest.mark.parametrize("role", rbac.ROLES)
@pytest.mark.parametrize(("path", "rtype"), PHI_ROUTES)
def test_every_phi_route_answers_each_role_what_the_table_says(
    site: tuple[Hub, dict[str, str]], role: str, path: str, rtype: str
) -> None:
    hub, tokens = site
    r = _call(hub, "GET", path, tokens[role])
    assert r.status_code in (200, 403), (path, role, r.status_code, r.text)
    if r.status_code == 403:
        assert role not in phi_access.READERS
        return
    if role in phi_access.READERS:
        if rtype in ("Patient", "Encounter"):
            assert "Smithson" in r.text or "V-12345" in r.text  # as stored
        return
    leaked = [s for s in SECRETS if s in r.text]
    assert not leaked, (path, role, leaked)
    if rtype:
        doc = r.json()
        docs = (
            [e["resource"] for e in doc.get("entry", [])]
            if doc.get("resourceType") == "Bundle"
            else [doc]
        )
        for d in docs:
            assert d["resourceType"] == rtype and d["id"]
            assert phi_access.REDACTED in d["meta"]["security"]


def test_read_only_patient_keeps_what_finance_needs() -> None:
    seen = phi_access.fhir_view(dict(PATIENT), (rbac.READ_ONLY,))
    assert seen["id"] == "p1" and seen["gender"] == "female"
    assert {"name", "identifier", "birthDate", "telecom", "address"}.isdisjoint(seen)
    acct = phi_access.fhir_view(dict(ACCOUNT), (rbac.FINANCE,))
    assert acct["identifier"] == [{"value": "ACC-1001"}]  # the billing account number
    assert acct["subject"] == [{"reference": "Patient/p1"}] and "name" not in acct
    assert phi_access.fhir_view(dict(PATIENT), (rbac.AUDITOR,)) == PATIENT


def test_the_raw_message_follows_the_table_in_the_console_and_the_permissions() -> None:
    raw_readers = phi_access.rule("message:raw").readers
    assert PHI_ROLES == raw_readers == phi_access.READERS
    assert rbac.PERMISSIONS["GET /console/raw/{ref:path}"] == raw_readers
    for role in rbac.ROLES:
        assert phi_access.may_read("message:raw", (role,)) == (role in raw_readers)
        assert phi_access.may_read("fhir:Patient", (role,)) == (role in raw_readers)


def test_a_resource_without_a_rule_is_an_error_not_a_silent_pass() -> None:
    with pytest.raises(KeyError):
        phi_access.rule("workitem:detail")
