"""The OpenAPI document covers every route of the app, and nothing else; it is served to
authenticated callers only and is a valid OpenAPI 3.1 document."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from starlette.routing import Route

from isthmus.api import openapi
from isthmus.api.http import build_app
from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.governance import identity, rbac

NOW = 1_700_000_000.0


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, str]]:
    h = Hub.open(load_settings(None, data_dir=tmp_path_factory.mktemp("openapi")))
    try:
        admin = identity.principal("root", "user", (rbac.ADMIN,), NOW)
        issued = identity.issue(admin, (rbac.ADMIN,), NOW)
        assert h.governance.initialize(admin, issued.token)
        yield h, issued.clear
    finally:
        h.close()


def _routes(h: Hub) -> list[tuple[str, str]]:
    return [
        (m, r.path)
        for r in build_app(h).routes
        if isinstance(r, Route)
        for m in sorted(r.methods or ())
    ]


def test_every_route_is_described_and_every_description_is_routed(hub: tuple[Hub, str]) -> None:
    missing, stale = openapi.coverage(_routes(hub[0]))
    assert not missing, f"routes without an api/openapi.py Operation: {missing}"
    assert not stale, f"api/openapi.py Operations without a route: {stale}"


def test_coverage_finds_an_undescribed_route_and_skips_the_console() -> None:
    missing, stale = openapi.coverage(
        [
            ("GET", "/health"),
            ("POST", "/api/v1/new"),
            ("GET", "/console/queues"),
            ("HEAD", "/health"),
        ],
        [openapi.OPERATIONS[0], openapi.OPERATIONS[1]],
    )
    assert missing == ["POST /api/v1/new"]
    assert stale == ["GET /openapi.json"]


def test_every_described_operation_has_a_permission_entry() -> None:
    for op in openapi.OPERATIONS:
        action = rbac.http_action(op.method, op.path)
        assert (action in rbac.PUBLIC) == op.public, action
        assert op.public or action in rbac.PERMISSIONS, action


def test_the_document_is_served_to_authenticated_callers_only(hub: tuple[Hub, str]) -> None:
    async def go(token: str | None) -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(hub[0]), client=("203.0.113.5", 9))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return await c.get("/openapi.json", headers=headers)

    assert asyncio.run(go(None)).status_code == 401
    r = asyncio.run(go(hub[1]))
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    assert doc == openapi.document()
    assert "/api/v1/messages/{ref}" in doc["paths"]
    assert doc["paths"]["/health"]["get"]["security"] == []
    assert "401" in doc["paths"]["/api/v1/workitems"]["get"]["responses"]
    assert not any(p.startswith("/console") for p in doc["paths"])


def test_the_document_is_valid_openapi_3_1() -> None:
    schema = schemathesis.openapi.from_dict(openapi.document())
    ops = [r.ok() for r in schema.get_all_operations()]
    assert {f"{o.method.upper()} {o.path}" for o in ops} == {
        f"{op.method} {openapi.openapi_path(op.path)}" for op in openapi.OPERATIONS
    }
