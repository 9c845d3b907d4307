"""The `fhir` destination against a FHIR-ish HTTP server started on loopback by the test.

The server (starlette on uvicorn, in a thread) stores resources and answers as FHIR R4's
RESTful API says (http.html): update-as-create on PUT (201, then 200 with a new version),
conditional create on POST with If-None-Exist (201, then 200 with the match), Location and
ETag headers, OperationOutcome on errors, a bearer token required. Every body is parsed
with fhirclient's R4 models in strict mode (types, required elements), so the bodies the
routes produce are checked as valid R4; an invalid one gets 422 with an OperationOutcome
whose diagnostics echo the data (which the adapter must not copy).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from fhirclient.models import account, claimresponse, paymentreconciliation
from fhirclient.models.fhirabstractbase import FHIRValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests.connectors.contract_destination import (
    DestinationContract,
    Peer,
    UvicornPeer,
    assert_no_phi,
    closed_port,
    outgoing,
)

from isthmus.config import DestinationSettings
from isthmus.connectors import dest_fhir
from isthmus.connectors.dest_fhir import FhirDestination, interaction
from isthmus.ports.destination import (
    Destination,
    DestinationRejected,
    DestinationUnavailable,
    Outgoing,
)

MODELS: dict[str, Any] = {
    "Account": account.Account,
    "PaymentReconciliation": paymentreconciliation.PaymentReconciliation,
    "ClaimResponse": claimresponse.ClaimResponse,
}
TOKEN = "s3cret-token"
FHIR = "application/fhir+json"


def outcome(status: int, code: str, diagnostics: str, detail: str = "") -> JSONResponse:
    issue: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": diagnostics}
    if detail:
        issue["details"] = {
            "coding": [{"system": "http://hl7.org/fhir/operation-outcome", "code": detail}],
            "text": diagnostics,
        }
    return JSONResponse(
        {"resourceType": "OperationOutcome", "issue": [issue]}, status_code=status, media_type=FHIR
    )


@dataclass
class FhirStore:
    resources: dict[tuple[str, str], tuple[int, dict[str, Any]]] = field(default_factory=dict)
    request_ids: list[str] = field(default_factory=list)
    outage: int = 0  # answer this status to everything while set (503, 429)

    def _check(self, request: Request, rtype: str, body: bytes) -> dict[str, Any] | Response:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return outcome(401, "login", "bearer token required")
        if self.outage:
            return outcome(self.outage, "transient", "try later")
        if rtype not in MODELS:
            return outcome(404, "not-supported", f"no {rtype} here")
        try:
            resource = json.loads(body)
            MODELS[rtype](resource, strict=True)  # fhirclient: valid R4 or raises
        except (ValueError, FHIRValidationError) as exc:
            return outcome(422, "invalid", f"{exc} in {body[:200]!r}", "MSG_CANT_PARSE_CONTENT")
        if resource.get("resourceType") != rtype:
            return outcome(400, "invalid", "resourceType does not match the URL")
        self.request_ids.append(request.headers.get("x-request-id", ""))
        return dict(resource)

    def _stored(
        self, rtype: str, rid: str, resource: dict[str, Any], base: str, created: bool
    ) -> Response:
        version = self.resources.get((rtype, rid), (0, {}))[0] + (1 if created else 0)
        resource = {**resource, "id": rid, "meta": {"versionId": str(version)}}
        self.resources[(rtype, rid)] = (version, resource)
        return JSONResponse(
            resource,
            status_code=201 if version == 1 and created else 200,
            media_type=FHIR,
            headers={
                "Location": f"{base}{rtype}/{rid}/_history/{version}",
                "ETag": f'W/"{version}"',
            },
        )

    async def update(self, request: Request) -> Response:
        rtype, rid = request.path_params["type"], request.path_params["id"]
        checked = self._check(request, rtype, await request.body())
        if isinstance(checked, Response):
            return checked
        if checked.get("id") != rid:
            return outcome(400, "invalid", "id in the body does not match the URL")
        return self._stored(rtype, rid, checked, str(request.base_url) + "fhir/", True)

    async def create(self, request: Request) -> Response:
        rtype = request.path_params["type"]
        checked = self._check(request, rtype, await request.body())
        if isinstance(checked, Response):
            return checked
        base = str(request.base_url) + "fhir/"
        cond = request.headers.get("if-none-exist", "")
        if cond.startswith("identifier="):
            system, _, value = unquote(cond.removeprefix("identifier=")).rpartition("|")
            for (t, rid), (_, res) in self.resources.items():
                if t == rtype and any(
                    i.get("value") == value and i.get("system", "") == system
                    for i in res.get("identifier", [])
                ):
                    return self._stored(rtype, rid, res, base, False)
        return self._stored(rtype, uuid.uuid4().hex, checked, base, True)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/fhir/{type}/{id}", self.update, methods=["PUT"]),
                Route("/fhir/{type}", self.create, methods=["POST"]),
            ]
        )


class FhirServer(UvicornPeer):
    """The store behind uvicorn on a fixed loopback port; restartable."""

    def __init__(self, store: FhirStore | None = None) -> None:
        self.store = store or FhirStore()
        super().__init__(self.store.app())
        self.base = f"{self.url}/fhir"

    def seen(self) -> list[str]:
        return list(self.store.request_ids)


def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "fhir.token"
    path.write_text(TOKEN + "\n")
    return path


def reconciliation(n: int) -> dict[str, Any]:
    return {
        "resourceType": "PaymentReconciliation",
        "identifier": [{"system": "urn:isthmus:payment", "value": f"PAY-{n}"}],
        "status": "active",
        "created": "2026-01-01T12:00:00Z",
        "paymentDate": "2026-01-01",
        "paymentAmount": {"value": 125.00, "currency": "USD"},
        "disposition": "Payment posted for DOE^JANE MRN0042",  # PHI that must not come back
        "detail": [
            {
                "type": {"coding": [{"code": "payment"}]},
                "amount": {"value": 125.00, "currency": "USD"},
            }
        ],
    }


def item(n: int, resource: dict[str, Any] | None = None) -> Outgoing:
    return outgoing(
        n,
        json.dumps(resource or reconciliation(n)).encode(),
        destination="ehr",
        prefix="H",
        content_type=FHIR,
    )


class TestFhirDestination(DestinationContract):
    accepted_codes = ("200", "201")

    @pytest.fixture
    def peer(self, tmp_path: Path) -> Iterator[Peer]:
        srv = FhirServer()
        srv.start()
        yield srv
        srv.stop()

    def open(self, peer: Peer, tmp_path: Path) -> Destination:
        assert isinstance(peer, FhirServer)
        return dest_fhir.open_destination(
            DestinationSettings(
                name="ehr", kind="fhir", url=peer.base, token_file=token_file(tmp_path), timeout_s=5
            ),
            "",
        )

    def open_down(self, tmp_path: Path) -> Destination:
        return FhirDestination(
            "ehr",
            f"http://127.0.0.1:{closed_port()}/fhir",
            token_file=token_file(tmp_path),
            timeout_s=2,
        )

    def item(self, n: int) -> Outgoing:
        return item(n)

    def refused(self, peer: Peer, tmp_path: Path) -> tuple[Destination, Outgoing]:
        bad = {"resourceType": "Account", "id": "acct-9", "status": 12, "name": "Jane Doe"}
        return self.open(peer, tmp_path), item(9, bad)


# -- interactions ---------------------------------------------------------------------------


def test_interaction_picks_update_conditional_create_or_create() -> None:
    assert interaction({"resourceType": "Account", "id": "a/1"}) == ("PUT", "Account/a%2F1", {})
    method, path, headers = interaction(reconciliation(1))
    assert (method, path) == ("POST", "PaymentReconciliation")
    assert headers == {"If-None-Exist": "identifier=urn:isthmus:payment|PAY-1"}
    assert interaction({"resourceType": "ClaimResponse"}) == ("POST", "ClaimResponse", {})
    with pytest.raises(DestinationRejected):
        interaction({"id": "x"})


@pytest.fixture
def fhir() -> Iterator[FhirServer]:
    srv = FhirServer()
    srv.start()
    yield srv
    srv.stop()


def test_the_three_finance_resources_land_once_as_valid_r4(
    fhir: FhirServer, tmp_path: Path
) -> None:
    d = FhirDestination("ehr", fhir.base, token_file=token_file(tmp_path))
    acct = {
        "resourceType": "Account",
        "id": "acct-7",
        "status": "active",
        "identifier": [{"system": "urn:isthmus:account", "value": "tok-7"}],
        "name": "Jane Doe",
        "subject": [{"reference": "Patient/MRN0042"}],
    }
    claim = {
        "resourceType": "ClaimResponse",
        "id": "cr-1",
        "status": "active",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "professional",
                }
            ]
        },
        "use": "claim",
        "patient": {"reference": "Patient/MRN0042"},
        "created": "2026-01-02",
        "insurer": {"display": "Payer"},
        "outcome": "error",
        "error": [{"code": {"coding": [{"code": "a001"}]}}],
    }
    try:
        first = d.send([item(1, acct)])
        assert first.code == "201" and "/fhir/Account/acct-7/_history/1" in first.detail
        assert d.send([item(1, acct)]).code == "200"  # the retry: same resource, updated
        created = d.send([item(2)])
        assert created.code == "201" and created.detail.startswith("POST ")
        again = d.send([item(2)])  # conditional create: the match, not a second one
        assert again.code == "200"
        assert again.detail.split()[1] == created.detail.split()[1]
        assert d.send([item(3, claim)]).code == "201"
        assert_no_phi(first.detail, created.detail)
    finally:
        d.close()
    stored = fhir.store.resources
    assert sorted(stored) == [
        ("Account", "acct-7"),
        ("ClaimResponse", "cr-1"),
        ("PaymentReconciliation", created.detail.split()[1].split("/")[-3]),
    ]
    assert stored[("Account", "acct-7")][0] == 2
    for (rtype, _), (_, resource) in stored.items():  # each parses as R4, strictly
        MODELS[rtype](resource, strict=True)
    assert fhir.seen() == ["H000001", "H000001", "H000002", "H000002", "H000003"]


def test_no_token_is_a_refusal_with_the_outcome_codes(fhir: FhirServer) -> None:
    d = FhirDestination("ehr", fhir.base)
    try:
        with pytest.raises(DestinationRejected) as caught:
            d.send([item(1)])
        assert caught.value.answer.code == "401"
        assert "error/login" in caught.value.answer.detail
    finally:
        d.close()


def test_outcome_detail_keeps_codes_not_diagnostics(fhir: FhirServer, tmp_path: Path) -> None:
    d = FhirDestination("ehr", fhir.base, token_file=token_file(tmp_path))
    bad = {"resourceType": "Account", "id": "acct-9", "status": 12, "name": "Jane Doe"}
    try:
        with pytest.raises(DestinationRejected) as caught:
            d.send([item(9, bad)])
    finally:
        d.close()
    answer = caught.value.answer
    assert answer.code == "422"
    assert "error/invalid [MSG_CANT_PARSE_CONTENT]" in answer.detail
    assert_no_phi(str(caught.value), answer.detail)


@pytest.mark.parametrize("status", [503, 429, 408])
def test_busy_or_failing_server_is_unavailable(
    fhir: FhirServer, tmp_path: Path, status: int
) -> None:
    fhir.store.outage = status
    d = FhirDestination("ehr", fhir.base, token_file=token_file(tmp_path))
    try:
        with pytest.raises(DestinationUnavailable, match=f"HTTP {status}"):
            d.send([item(1)])
        fhir.store.outage = 0
        assert d.send([item(1)]).code == "201"
    finally:
        d.close()


def test_a_body_that_is_not_a_resource_is_rejected_before_sending(tmp_path: Path) -> None:
    d = FhirDestination("ehr", f"http://127.0.0.1:{closed_port()}/fhir")
    try:
        for body in (b"not json", b"[1, 2]", b'{"id": "x"}'):
            with pytest.raises(DestinationRejected):
                d.send([outgoing(1, body)])
    finally:
        d.close()
