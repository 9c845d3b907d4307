"""The OpenAPI 3.1 description of the HTTP API, from one table of operations.

Every route of the Starlette app (api/http.py, api/fhir_routes.py) has one `Operation` here,
keyed by method and the route's own path template (the key of governance.rbac), and
`coverage` names the routes without one and the entries without a route:
tests/api/test_openapi.py fails on either, so the spec cannot drift from the app. The
HTML console (/console/*) is not part of the API and is left out.

The building blocks (`Answer`, `Operation`, the error bodies) are in api/openapi_parts.py;
each resource family's schemas and operations in its own module (api/openapi_ops.py,
openapi_reads.py, openapi_intake.py, openapi_fhir.py, openapi_refunds.py,
openapi_channels.py, openapi_destinations.py, openapi_analytics.py); this module puts
them in one table and turns it into the document.

The document is served at GET /openapi.json (any authenticated role: the route list is
not public, see api/auth.py) and is what schemathesis tests the app against
(tests/api/test_schemathesis.py). Error bodies (api/problems.py): RFC 9457
`application/problem+json` outside /fhir (`type`, `title`, `status`, `detail`, `instance`,
`errors`, and the v1 members `error`, `reason`, `field`), the bearer-token refusals (RFC
6750) included; an OperationOutcome under /fhir (FHIR R4 3.1.0.4.1), 401 and 403
included. Every answer carries `X-Request-Id`; list routes page with `limit`, `cursor`,
`next`/`next_url` and a `Link` header (api/pages.py), FHIR searchsets with `_count` and a
Bundle `next` link (api/fhir_search.py); every time is an ISO 8601 `date-time`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from isthmus.api.openapi_analytics import ANALYTICS_OPERATIONS
from isthmus.api.openapi_channels import CHANNEL_OPERATIONS
from isthmus.api.openapi_destinations import DESTINATION_OPERATIONS
from isthmus.api.openapi_fhir import FHIR_OPERATIONS
from isthmus.api.openapi_intake import INTAKE_OPERATIONS
from isthmus.api.openapi_ops import OPS_OPERATIONS
from isthmus.api.openapi_parts import (
    ERROR,
    REQUEST_ID,
    Operation,
    Schema,
    fhir_answer,
    json_answer,
)
from isthmus.api.openapi_reads import READ_OPERATIONS
from isthmus.api.openapi_refunds import REFUND_OPERATIONS

EXCLUDED_PREFIXES: Final = ("/console",)
_CONVERTER: Final = re.compile(r"\{(\w+):\w+\}")

# the document's order: the paths come out in it
OPERATIONS: Final[tuple[Operation, ...]] = (
    *OPS_OPERATIONS,
    *READ_OPERATIONS,
    *INTAKE_OPERATIONS,
    *FHIR_OPERATIONS,
    *REFUND_OPERATIONS,
    *CHANNEL_OPERATIONS,
    *DESTINATION_OPERATIONS,
    *ANALYTICS_OPERATIONS,
)

_AUTH_ERRORS: Final = {
    401: json_answer(
        "missing, unknown, expired or revoked token (WWW-Authenticate: Bearer)", ERROR
    ),
    403: json_answer("the token's roles may not use this route", ERROR),
    429: json_answer("too many failed authentications from this client; see Retry-After", ERROR),
    503: json_answer("the governance store cannot be read", ERROR),
}
_FHIR_AUTH_ERRORS: Final = {  # the same refusals under /fhir, as OperationOutcome
    401: fhir_answer(
        "missing, unknown, expired or revoked token (WWW-Authenticate: Bearer; code login)"
    ),
    403: fhir_answer("the token's roles may not use this route (code forbidden)"),
    429: fhir_answer(
        "too many failed authentications from this client; see Retry-After (code throttled)"
    ),
    503: fhir_answer("the governance store cannot be read (code transient)"),
}


def openapi_path(template: str) -> str:
    """`/api/v1/messages/{ref:path}` -> `/api/v1/messages/{ref}`."""
    return _CONVERTER.sub(r"{\1}", template)


def _operation(op: Operation) -> Schema:
    auth = _FHIR_AUTH_ERRORS if op.path.startswith("/fhir") else _AUTH_ERRORS
    responses = dict(op.responses) if op.public else {**auth, **op.responses}
    out: Schema = {
        "summary": op.summary,
        "tags": [op.tag],
        "operationId": f"{op.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', op.path.lower())}".rstrip(
            "_"
        ),
        "responses": {
            str(code): {
                "description": a.description,
                "headers": {**a.headers, "X-Request-Id": REQUEST_ID},
                "content": {m: {"schema": s} for m, s in a.content.items()},
            }
            for code, a in sorted(responses.items())
        },
    }
    if op.parameters:
        out["parameters"] = list(op.parameters)
    if op.body is not None:
        media, schema = op.body
        out["requestBody"] = {"required": True, "content": {media: {"schema": schema}}}
    if op.public:
        out["security"] = []
    return out


def document(operations: Iterable[Operation] = OPERATIONS) -> Schema:
    """The OpenAPI 3.1 document of `operations`: bearer-token security on all but the public
    ones."""
    paths: dict[str, dict[str, Schema]] = {}
    for op in operations:
        paths.setdefault(openapi_path(op.path), {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Isthmus hub API",
            "version": "1",
            "description": "HTTP API v1, FHIR R4 under /fhir. Every operation but "
            "/health needs Authorization: Bearer <token>.",
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }


def coverage(
    routes: Iterable[tuple[str, str]], operations: Iterable[Operation] = OPERATIONS
) -> tuple[list[str], list[str]]:
    """(routes without an operation, operations without a route); HEAD and /console/*
    are not part of the spec."""
    served = {f"{m} {p}" for m, p in routes if m != "HEAD" and not p.startswith(EXCLUDED_PREFIXES)}
    described = {f"{op.method} {op.path}" for op in operations}
    return sorted(served - described), sorted(described - served)


__all__ = ["OPERATIONS", "coverage", "document", "openapi_path"]
