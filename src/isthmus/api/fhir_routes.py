"""The /fhir routes of the HTTP app (FHIR R4 RESTful API): which interaction each method
and path runs, with what every route shares: the body read within `[limits]
max_body_bytes` (413 above it), writes refused with 503 while the channel "fhir" is paused
(issue 18), the caller's roles for what reads show (`governance.phi_access`), the base URL
the client reached, `Prefer: handling=strict`, and anything unexpected answered as a 500
OperationOutcome, never a traceback. The interactions are api/fhir.py (create, update,
read, metadata), api/fhir_search.py and api/fhir_bundle.py.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from isthmus.api import fhir_bundle, fhir_search, problems
from isthmus.api.fhir import FhirApi, fhir_response, outcome
from isthmus.api.json_body import BodyRefused, read_body
from isthmus.app import Hub
from isthmus.flows import channels
from isthmus.formats.fhir import FhirError, operation_outcome
from isthmus.formats.fhir.events import CHANNEL
from isthmus.governance import phi_access

log = logging.getLogger("isthmus.api.fhir")  # where FHIR failures have always been logged


def _base(req: Request) -> str:
    """The server's FHIR base URL as the client reached it (scheme: api/clients.py)."""
    return f"{str(req.base_url).rstrip('/')}/fhir"


def _strict(req: Request) -> bool:
    """`Prefer: handling=strict` (FHIR R4 3.1.1.5.4; RFC 7240 preference syntax)."""
    prefs = {
        p.strip().lower().replace(" ", "")
        for h in req.headers.getlist("prefer")
        for p in h.split(",")
    }
    return "handling=strict" in prefs


def _peer(req: Request) -> str:
    return f"{req.client.host}:{req.client.port}" if req.client else ""


def _roles(req: Request) -> tuple[str, ...]:
    """The caller's roles, as api/auth.py found them (the loopback caller before `init`
    is `local`: it reads as the local CLI does)."""
    state = req.scope.get("state") or {}
    if state.get("principal") == phi_access.LOCAL:
        return (phi_access.LOCAL,)
    return tuple(state.get("roles") or ())


def _guarded(
    fn: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Anything unexpected is a 500 OperationOutcome, never a traceback."""

    async def run(req: Request) -> Response:
        try:
            return await fn(req)
        except Exception as exc:  # the client gets an outcome, the log the rest
            log.exception("FHIR %s %s failed", req.method, req.url.path)
            return outcome(
                500,
                [
                    FhirError(
                        "exception",
                        f"the request could not be processed "
                        f"({type(exc).__name__}); it was not stored",
                    )
                ],
            )

    return run


async def _body(req: Request, api: FhirApi) -> bytes | Response:
    """The request body within `[limits] max_body_bytes`, else a 413 OperationOutcome."""
    try:
        return await read_body(req, api.limits)
    except BodyRefused as exc:
        return outcome(exc.status, [FhirError("too-long", exc.reason)])


def routes(hub: Hub) -> list[Route]:
    """The /fhir routes (FHIR R4 RESTful API): metadata (CapabilityStatement), transaction or
    batch on the base, and create, search, read and update by type; writes answer 503 while
    the channel "fhir" is paused."""
    api = FhirApi(hub)
    states = channels.StateCache(hub.store)

    def paused() -> Response | None:
        """While the channel "fhir" is paused (issue 18), writes answer 503 with
        Retry-After and an OperationOutcome (code transient): nothing is taken."""
        st = states.paused(CHANNEL)
        if st is None:
            return None
        return fhir_response(
            operation_outcome(
                [
                    FhirError(
                        "transient", "the FHIR channel is paused by an operator; send again later"
                    )
                ]
            ),
            503,
            headers={"Retry-After": "30"},
        )

    async def metadata(_: Request) -> Response:
        return fhir_response(api.capability())

    async def create(req: Request) -> Response:
        if (closed := paused()) is not None:
            return closed
        body = await _body(req, api)
        if isinstance(body, Response):
            return body
        return api.write(req.path_params["type"], None, body, _peer(req), base=_base(req))

    async def update(req: Request) -> Response:
        if (closed := paused()) is not None:
            return closed
        body = await _body(req, api)
        if isinstance(body, Response):
            return body
        return api.write(
            req.path_params["type"],
            req.path_params["id"],
            body,
            _peer(req),
            base=_base(req),
            if_match=req.headers.get("if-match"),
        )

    async def read(req: Request) -> Response:
        return api.read(req.path_params["type"], req.path_params["id"], _roles(req))

    async def search(req: Request) -> Response:
        return fhir_search.search(
            api,
            req.path_params["type"],
            list(req.query_params.multi_items()),
            _roles(req),
            base=_base(req),
            strict=_strict(req),
        )

    async def transaction(req: Request) -> Response:
        if (closed := paused()) is not None:
            return closed
        body = await _body(req, api)
        if isinstance(body, Response):
            return body
        return fhir_bundle.answer_bundle(api, body, _peer(req), _base(req))

    return [
        Route("/fhir/metadata", _guarded(metadata), methods=["GET"]),
        Route("/fhir", _guarded(transaction), methods=["POST"]),
        Route("/fhir/{type}", _guarded(create), methods=["POST"]),
        Route("/fhir/{type}", _guarded(search), methods=["GET"]),
        Route("/fhir/{type}/{id}", _guarded(read), methods=["GET"]),
        Route("/fhir/{type}/{id}", _guarded(update), methods=["PUT"]),
    ]


async def http_error(req: Request, exc: Exception) -> Response:
    """The router's 404/405: an OperationOutcome under /fhir, problem+json elsewhere
    (api/problems.py)."""
    assert isinstance(exc, HTTPException)
    return problems.answer(
        req.url.path,
        exc.status_code,
        f"{req.method} {req.url.path[:200]}: {exc.detail}",
        headers=exc.headers,
    )


__all__ = ["http_error", "routes"]
