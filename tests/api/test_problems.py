"""Every HTTP error of the API in one of two shapes (api/problems.py, issue 17 item 2):
RFC 9457 `application/problem+json` outside /fhir, 401 and 403 included, and a FHIR
OperationOutcome under /fhir, 401 and 403 included."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from isthmus.app import Hub
from isthmus.errors import PROBLEM_BASE
from isthmus.governance import identity, rbac
from isthmus.store.ports import Inbound
from tests.api.admin_hub import admin_hub
from tests.api.fhir_call import call

PROBLEM = "application/problem+json"
RFC9457 = {"type", "title", "status", "detail"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, dict[str, str]]]:
    with admin_hub(tmp_path_factory.mktemp("problems")) as (hub, admin):
        tokens = {"admin": admin}
        now = time.time()
        p = identity.principal("reader", "user", (rbac.READ_ONLY,), now)
        hub.governance.save_principal(p)
        issued = identity.issue(p, (rbac.READ_ONLY,), now)
        hub.governance.add_token(issued.token)
        tokens["reader"] = issued.clear
        yield hub, tokens


def _problem(r: httpx.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    doc: dict[str, object] = r.json()
    assert set(doc) >= RFC9457 and doc["status"] == status
    assert str(doc["type"]).startswith(PROBLEM_BASE) and doc["title"]
    assert doc["reason"] == doc["detail"]  # the v1 member beside the RFC 9457 one
    errors = doc["errors"]
    assert isinstance(errors, list) and errors[0]["detail"] == doc["detail"]
    return doc


def _outcome(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/fhir+json"), r.headers
    doc = r.json()
    assert doc["resourceType"] == "OperationOutcome"
    [issue] = doc["issue"]
    assert (issue["severity"], issue["code"]) == ("error", code)
    return str(issue["diagnostics"])


def test_400_names_the_field(site: tuple[Hub, dict[str, str]]) -> None:
    hub, tokens = site
    doc = _problem(call(hub, "GET", "/api/v1/workitems?status=lost", token=tokens["admin"]), 400)
    assert doc["field"] == "status" and doc["errors"] == [
        {"detail": doc["detail"], "field": "status"}
    ]
    assert doc["instance"] == "/api/v1/workitems"
    bad = _problem(call(hub, "GET", "/api/v1/messages?limit=lots", token=tokens["admin"]), 400)
    assert (bad["field"], bad["type"]) == ("limit", PROBLEM_BASE + "invalid-input")


def test_401_is_a_problem_that_echoes_nothing(site: tuple[Hub, dict[str, str]]) -> None:
    hub, _ = site
    r = call(hub, "GET", "/api/v1/status?secret=s3cr3t", token=None)
    doc = _problem(r, 401)
    assert "missing bearer token" in str(doc["detail"])
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "instance" not in doc and "s3cr3t" not in r.text


def test_403_is_a_refusal_naming_the_role(site: tuple[Hub, dict[str, str]]) -> None:
    hub, tokens = site
    doc = _problem(
        call(hub, "POST", "/api/v1/channels/mllp/pause", {"reason": "x"}, token=tokens["reader"]),
        403,
    )
    assert doc["type"] == PROBLEM_BASE + "refused" and doc["error"] == "forbidden"
    assert "read-only" in str(doc["detail"])


def test_404_for_an_unknown_id_and_an_unknown_route(site: tuple[Hub, dict[str, str]]) -> None:
    hub, tokens = site
    doc = _problem(call(hub, "GET", "/api/v1/messages/mllp/NOPE", token=tokens["admin"]), 404)
    assert (doc["field"], doc["error"]) == ("ref", "not found")
    route = _problem(call(hub, "GET", "/api/v1/nowhere", token=tokens["admin"]), 404)
    assert route["error"] == "not found" and "/api/v1/nowhere" in str(route["detail"])


def test_409_from_the_error_tree(site: tuple[Hub, dict[str, str]]) -> None:
    hub, tokens = site
    # x12 is a channel of the site (it has messages) with no listener of its own
    hub.store.accept(
        [
            Inbound(
                "x12",
                "problems-1",
                b"ISA*00~",
                time.time(),
                "file:a.x12",
                "835",
                "rejected",
                "AR",
                "kept for the test",
                b"",
                "0" * 64,
            )
        ]
    )
    doc = _problem(
        call(hub, "POST", "/api/v1/channels/x12/pause", {"reason": "x"}, token=tokens["admin"]), 409
    )
    assert doc["type"] == PROBLEM_BASE + "conflict" and doc["field"] == "name"
    assert doc["error"] == "no listener" and "no listener of its own" in str(doc["detail"])


def test_422_keeps_the_findings_beside(site: tuple[Hub, dict[str, str]]) -> None:
    hub, tokens = site
    csv = (
        b"usage_id,item,location,quantity,used_on,department,lot,patient_name\n"
        b"U1,STENT-01,OR,-1,2026-03-02,OR,L1,x\n"
    )
    doc = _problem(
        call(hub, "POST", "/api/v1/supply/usage", raw=csv, media="text/csv", token=tokens["admin"]),
        422,
    )
    assert (doc["field"], doc["row"]) == ("quantity", 2)
    assert isinstance(doc["findings"], list) and isinstance(doc["message_id"], int)


def test_under_fhir_401_403_404_are_operation_outcomes(site: tuple[Hub, dict[str, str]]) -> None:
    hub, tokens = site
    r = call(hub, "GET", "/fhir/Account/a1", token=None)
    assert "missing bearer token" in _outcome(r, 401, "login")
    assert r.headers["www-authenticate"].startswith("Bearer")
    forbidden = call(
        hub, "POST", "/fhir/Account", {"resourceType": "Account"}, token=tokens["reader"]
    )
    assert "read-only" in _outcome(forbidden, 403, "forbidden")
    assert "is not known" in _outcome(
        call(hub, "GET", "/fhir/Account/nope", token=tokens["admin"]), 404, "not-found"
    )
    assert _outcome(
        call(hub, "GET", "/fhir/nowhere/at/all", token=tokens["admin"]), 404, "not-found"
    )
