"""Issue 19 item 7: a request id on every answer, an unhandled exception's 500 included.

Starlette's outermost error handler (ServerErrorMiddleware) answers an exception nothing
handled with a bare 500, outside the request-id middleware, so that answer had no
`X-Request-Id`. api/request_context.py now answers it itself: a 500 with the header, a
JSON error (an OperationOutcome under /fhir) that does not echo the exception's text, the
traceback logged under the same request id, and the access record's status 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from isthmus.api.http import build_app
from isthmus.api.request_context import RequestContext
from isthmus.app import Hub
from isthmus.observe import logs
from tests.api.admin_hub import admin_hub

NOW = 1_700_000_000.0
SECRET = "MRN-4711 Jane Smith"  # what an exception's text can hold: never in an answer


class _Emitted(logging.Handler):
    """Each record as the JSON log line it is when written (the bound ids are read then)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(logs.JsonFormatter().format(record)))


@pytest.fixture
def emitted() -> Iterator[_Emitted]:
    handler = _Emitted()
    root = logging.getLogger("isthmus")
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Hub, str]]:
    with admin_hub(tmp_path / "data") as found:
        yield found


def _get(app: ASGIApp, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        # raise_app_exceptions stays on: an exception that got past the app fails the test
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as c:
            return await c.get(path, headers=headers)

    return asyncio.run(go())


def _console(_hub: Any, _live: dict[str, Any] | None) -> ASGIApp:
    return Starlette(routes=[Route("/", lambda _: PlainTextResponse("console"))])


@pytest.mark.parametrize("with_console", [False, True], ids=["api", "api+console"])
def test_a_route_that_raises_answers_500_with_the_request_id(
    site: tuple[Hub, str], emitted: _Emitted, monkeypatch: pytest.MonkeyPatch, with_console: bool
) -> None:
    hub, token = site

    def broken() -> dict[str, int]:
        raise RuntimeError(f"store exploded near {SECRET}")

    monkeypatch.setattr(hub.store, "counts", broken)  # GET /api/v1/status reads it first
    app = build_app(hub, {}, console=_console if with_console else None)
    r = _get(
        app, "/api/v1/status", {"Authorization": f"Bearer {token}", "X-Request-Id": "req-boom-1"}
    )
    assert r.status_code == 500
    assert r.headers["x-request-id"] == "req-boom-1"
    assert SECRET not in r.text and "RuntimeError" not in r.text and "Traceback" not in r.text
    if not with_console:  # with the console mounted, its inner Starlette answers first
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["error"] == "internal_error" and r.json()["status"] == 500
    # the failure is logged with its traceback under the answer's request id
    [failed] = [x for x in emitted.lines if x["level"] == "ERROR"]
    assert failed["request_id"] == "req-boom-1" and "RuntimeError" in failed["exc"]
    [rec] = [x for x in emitted.lines if x["logger"] == "isthmus.access"]
    assert rec["status"] == 500 and rec["request_id"] == "req-boom-1"
    # the next request is answered normally, under its own new id
    monkeypatch.undo()
    ok = _get(app, "/api/v1/status", {"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and ok.headers["x-request-id"] != "req-boom-1"


async def _boom(_: Request) -> PlainTextResponse:
    raise ValueError(SECRET)


async def _half(_: Request) -> StreamingResponse:
    async def body() -> Any:
        yield b"partial"
        raise ValueError(SECRET)

    return StreamingResponse(body())


def _bare_app() -> ASGIApp:
    app = Starlette(
        routes=[Route("/fhir/Account", _boom), Route("/other", _boom), Route("/half", _half)]
    )
    app.add_middleware(RequestContext)
    return app


def test_under_fhir_the_500_is_an_operation_outcome() -> None:
    r = _get(_bare_app(), "/fhir/Account")
    assert r.status_code == 500 and len(r.headers["x-request-id"]) == 32
    assert r.headers["content-type"].startswith("application/fhir+json")
    [issue] = r.json()["issue"]
    assert issue["code"] == "exception" and SECRET not in r.text
    other = _get(_bare_app(), "/other")
    assert other.json()["error"] == "internal_error" and SECRET not in other.text


def test_an_answer_already_under_way_is_not_answered_twice() -> None:
    """Once the headers are out nothing else can be sent: the exception goes on to the
    server (which closes the connection), as it did before."""
    with pytest.raises(ValueError, match="MRN"):
        _get(_bare_app(), "/half")
