"""The OpenAPI 3.1 description of the HTTP API, from one table of operations.

Every route of the Starlette app (api/http.py, api/fhir.py) has one `Operation` here,
keyed by method and the route's own path template (the key of governance.rbac), and
`coverage` names the routes without one and the entries without a route:
tests/api/test_openapi.py fails on either, so the spec cannot drift from the app. The
HTML console (/console/*) is not part of the API and is left out.

The document is served at GET /openapi.json (any authenticated role: the route list is
not public, see api/auth.py) and is what schemathesis tests the app against
(tests/api/test_schemathesis.py). Error bodies (api/problems.py): RFC 9457
`application/problem+json` outside /fhir (`type`, `title`, `status`, `detail`, `instance`,
`errors`, and the v1 members `error`, `reason`, `field`), the bearer-token refusals (RFC
6750) included; an OperationOutcome under /fhir (FHIR R4 3.1.0.4.1), 401 and 403
included. Every answer carries `X-Request-Id`; list routes page with `limit`, `cursor`,
`next`/`next_url` and a `Link` header (api/pages.py), FHIR searchsets with `_count` and a
Bundle `next` link (api/fhir.py); every time is an ISO 8601 `date-time`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

JSON: Final = "application/json"
PROBLEM_JSON: Final = "application/problem+json"
FHIR: Final = "application/fhir+json"
EXCLUDED_PREFIXES: Final = ("/console",)
_CONVERTER: Final = re.compile(r"\{(\w+):\w+\}")

Schema = dict[str, Any]

_OBJ: Final[Schema] = {"type": "object"}
# RFC 9457 problem details (api/problems.py), served as application/problem+json
ERROR: Final[Schema] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "error"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["detail"],
                "properties": {
                    "detail": {"type": "string"},
                    "field": {"type": "string"},
                    "pointer": {"type": "string"},
                },
            },
        },
        # v1 members, kept beside the RFC 9457 ones
        "error": {"type": "string"},
        "reason": {"type": "string"},
        "field": {"type": "string"},
        "value": {},
    },
}
OUTCOME: Final[Schema] = {
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {
                    "severity": {"type": "string"},
                    "code": {"type": "string"},
                    "diagnostics": {"type": "string"},
                    "expression": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
RESOURCE: Final[Schema] = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {"resourceType": {"type": "string"}, "id": {"type": "string"}},
}
_MONEY_ROW: Final[Schema] = {
    "type": "object",
    "properties": {
        k: {"type": "string"} for k in ("account", "currency", "debit", "credit", "balance")
    },
}
# every time in an answer: ISO 8601 / RFC 3339 (observe/instant.py)
TIME: Final[Schema] = {"type": "string", "format": "date-time"}
WORK_ITEM: Final[Schema] = {
    "type": "object",
    "required": ["id", "kind", "queue", "status", "created_at"],
    "properties": {
        "id": {"type": ["integer", "string"]},
        "kind": {"type": "string"},
        "queue": {"type": "string"},
        "status": {"type": "string"},
        "event_id": {"type": ["string", "null"]},
        "detail": {},
        "created_at": TIME,
        "updated_at": TIME,
    },
}
MESSAGE_ROW: Final[Schema] = {
    "type": "object",
    "required": ["id", "channel", "control_id", "status", "received_at"],
    "properties": {
        "id": {"type": "integer"},
        "channel": {"type": "string"},
        "control_id": {"type": "string"},
        "type": {"type": "string"},
        "status": {"type": "string"},
        "ack": {"type": "string"},
        "received_at": TIME,
        "error": {"type": "string"},
    },
}
_PAGE_PARAMS: Final[tuple[Schema, ...]] = (
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "rows a page",
        "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
    },
    {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": "the `next` of the previous page",
        "schema": {"type": "string"},
    },
)
_NEXT_LINK: Final[Schema] = {
    "description": 'RFC 8288 link to the next page (`<url>; rel="next"`), on every page '
    "but the last",
    "schema": {"type": "string"},
}


REQUEST_ID: Final[Schema] = {
    "description": "the request's id: the caller's X-Request-Id when sane, else a new one; "
    "in the hub's logs too (api/request_context.py)",
    "schema": {"type": "string"},
}
USAGE_REFUSED: Final[Schema] = {
    "type": "object",
    "required": [*ERROR["required"], "field", "row", "findings"],
    "properties": {
        **ERROR["properties"],
        "row": {"type": "integer"},
        "message_id": {"type": "integer"},
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["row", "column", "problem"],
                "properties": {
                    "row": {"type": "integer"},
                    "column": {"type": "string"},
                    "problem": {"type": "string"},
                    "value": {"type": "string"},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Answer:
    """One documented response: its description, body schema per media type, headers."""

    description: str
    content: Mapping[str, Schema] = field(default_factory=dict)
    headers: Mapping[str, Schema] = field(default_factory=dict)


def _json(description: str, schema: Schema = _OBJ) -> Answer:
    """A JSON answer; an error schema (problem details) is `application/problem+json`."""
    problem = any(schema is s for s in (ERROR, USAGE_REFUSED))
    return Answer(description, {PROBLEM_JSON if problem else JSON: schema})


def page_of(name: str, rows: Schema) -> Answer:
    """A list route's page (api/pages.py): the rows, `next` cursor, `next_url`, Link."""
    return Answer(
        f"one page of {name}; `next` is the cursor of the next page and "
        "`next_url` the same request for it, both null on the last page",
        {
            JSON: {
                "type": "object",
                "required": [name, "next", "next_url"],
                "properties": {
                    name: {"type": "array", "items": rows},
                    "next": {"type": ["string", "null"]},
                    "next_url": {"type": ["string", "null"]},
                },
            }
        },
        {"Link": _NEXT_LINK},
    )


def _fhir(description: str, schema: Schema = OUTCOME) -> Answer:
    return Answer(description, {FHIR: schema})


@dataclass(frozen=True)
class Operation:
    """One HTTP operation as the OpenAPI document shows it: method, route template, summary,
    tag, answers by status, parameters and request body; `public` ones need no token."""

    method: str
    path: str  # the Starlette route template, as in governance.rbac
    summary: str
    tag: str
    responses: Mapping[int, Answer]
    parameters: tuple[Schema, ...] = ()
    body: tuple[str, Schema] | None = None  # media type, schema
    public: bool = False


def _path_param(name: str, description: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
    }


_TYPE = _path_param(
    "type", "FHIR resource type (one of the finance and supply types of /fhir/metadata)"
)
_ID = _path_param("id", "logical id ([A-Za-z0-9-.]{1,64})")
_VERSIONED: Final = {
    "ETag": {"description": 'the version: W/"<meta.versionId>"', "schema": {"type": "string"}},
    "Location": {
        "description": "absolute: <base>/fhir/<type>/<id>/_history/<versionId>",
        "schema": {"type": "string"},
    },
}
_FHIR_WRITE = {
    400: _fhir("not a valid resource, or type/id mismatch"),
    404: _fhir("resource type not supported"),
    403: Answer(
        "the token's roles may not write (JSON), or the data domain is "
        "owned by another system (OperationOutcome, code forbidden)",
        {FHIR: OUTCOME},
    ),
    409: _fhir("the id is taken by other content (create)"),
    422: _fhir(
        "the resource fails the finance or supply checks (expression "
        "names the element); kept as rejected"
    ),
    500: _fhir("unexpected failure; nothing stored"),
    503: Answer(
        "the channel fhir is paused (issue 18); send again after Retry-After seconds",
        {FHIR: OUTCOME},
        {"Retry-After": {"schema": {"type": "string"}}},
    ),
}

REFUND: Final[Schema] = {
    "type": "object",
    "required": ["id", "status", "amount", "currency", "requested_by"],
    "properties": {
        **{
            k: {"type": "string"}
            for k in (
                "id",
                "status",
                "account_number",
                "account_token",
                "company",
                "amount",
                "currency",
                "reason",
                "requested_by",
                "decided_by",
                "decided_at",
                "note",
                "entry_key",
                "idempotency_key",
                "correlation_id",
            )
        },
        "requested_at": TIME,
        "replayed": {"type": "boolean"},
    },
}
REFUND_REQUEST: Final[Schema] = {
    "type": "object",
    "required": ["account", "amount", "currency", "reason"],
    "properties": {
        "account": {
            "type": "string",
            "description": "billing account number (PID-18) or account token",
        },
        "amount": {"type": "string", "description": "decimal, e.g. 125.00"},
        "currency": {"type": "string"},
        "reason": {"type": "string"},
        "idempotency_key": {"type": "string", "description": "or the Idempotency-Key header"},
    },
}
_REFUND_ID = _path_param("id", "refund id (RF-...)")
_REFUND_REFUSED = {
    400: _json("a field is missing or malformed (field names it)", ERROR),
    404: _json("no such account or refund", ERROR),
    409: _json(
        "duplicate request, idempotency key reused, not enough credit, "
        "already decided, or the ledger refuses the posting",
        ERROR,
    ),
}
REFUND_OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation(
        "POST",
        "/api/v1/refunds",
        "Request a refund of a credit balance",
        "refunds",
        {
            201: _json(
                "created: posted at once (at or under the approval threshold) or pending approval",
                REFUND,
            ),
            200: _json("the same request again: the first answer", REFUND),
            **_REFUND_REFUSED,
            403: _json("the token's roles may not request refunds", ERROR),
        },
        body=(JSON, REFUND_REQUEST),
    ),
    Operation(
        "GET",
        "/api/v1/refunds",
        "The refund register, oldest first, cursor-paged",
        "refunds",
        {
            200: page_of("refunds", REFUND),
            400: _json("bad status, limit or cursor (field names it)", ERROR),
        },
        parameters=(
            {
                "name": "status",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "enum": ["pending", "posted", "rejected"]},
            },
            *_PAGE_PARAMS,
        ),
    ),
    Operation(
        "GET",
        "/api/v1/refunds/{id}",
        "One refund",
        "refunds",
        {200: _json("the refund", REFUND), 404: _json("no such refund", ERROR)},
        parameters=(_REFUND_ID,),
    ),
    Operation(
        "POST",
        "/api/v1/refunds/{id}/approve",
        "Approve a pending refund; it posts",
        "refunds",
        {
            200: _json("approved and posted (or the same approval again)", REFUND),
            **_REFUND_REFUSED,
            403: _json(
                "segregation of duties (the requester approving) or a role that may not approve",
                ERROR,
            ),
        },
        parameters=(_REFUND_ID,),
        body=(JSON, {"type": "object", "properties": {"note": {"type": "string"}}}),
    ),
    Operation(
        "POST",
        "/api/v1/refunds/{id}/reject",
        "Reject a pending refund with a reason",
        "refunds",
        {
            200: _json("rejected (or the same rejection again)", REFUND),
            **_REFUND_REFUSED,
            403: _json("a role that may not reject", ERROR),
        },
        parameters=(_REFUND_ID,),
        body=(
            JSON,
            {
                "type": "object",
                "required": ["reason"],
                "properties": {"reason": {"type": "string"}},
            },
        ),
    ),
)
CHANNEL: Final[Schema] = {
    "type": "object",
    "required": ["name", "transport", "address", "state"],
    "properties": {
        **{k: {"type": "string"} for k in ("name", "transport", "address", "changed_by", "reason")},
        "state": {"type": "string", "enum": ["running", "paused"]},
        "pausable": {"type": "boolean"},
        **{
            k: {"type": "integer", "minimum": 0}
            for k in ("received", "ignored", "refused", "queued", "delivered", "errored")
        },
        "changed_at": {"type": ["string", "null"], "format": "date-time"},
        "last_message_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
_CHANNEL_NAME = _path_param("name", "channel name ([channels.<name>], or mllp, fhir, drop)")
_CHANNEL_REFUSED = {
    404: _json("no such channel (reason names those that can be paused)", ERROR),
    409: _json("the channel has no listener of its own", ERROR),
    403: _json("the token's roles may not pause or resume", ERROR),
}
CHANNEL_OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation(
        "GET",
        "/api/v1/channels",
        "Inbound channels: state and counters",
        "channels",
        {
            200: _json(
                "every channel",
                {
                    "type": "object",
                    "required": ["channels"],
                    "properties": {"channels": {"type": "array", "items": CHANNEL}},
                },
            )
        },
    ),
    Operation(
        "POST",
        "/api/v1/channels/{name}/pause",
        "Pause a channel: its port refuses "
        "new connections (or its folder is not read) in every process",
        "channels",
        {
            200: _json("paused", CHANNEL),
            **_CHANNEL_REFUSED,
            400: _json('the body is not {"reason": text}', ERROR),
            413: _json("the body is too large", ERROR),
        },
        parameters=(_CHANNEL_NAME,),
        body=(JSON, {"type": "object", "properties": {"reason": {"type": "string"}}}),
    ),
    Operation(
        "POST",
        "/api/v1/channels/{name}/resume",
        "Resume a paused channel",
        "channels",
        {200: _json("running", CHANNEL), **_CHANNEL_REFUSED},
        parameters=(_CHANNEL_NAME,),
    ),
)
DESTINATION: Final[Schema] = {
    "type": "object",
    "required": ["name", "kind", "address", "state"],
    "properties": {
        **{k: {"type": "string"} for k in ("name", "kind", "address", "last_answer")},
        "state": {"type": "string", "enum": ["closed", "retrying", "open"]},
        **{k: {"type": "integer", "minimum": 0} for k in ("pending", "sent", "dead")},
        "oldest_pending_age_s": {"type": ["number", "null"]},
        "last_answer_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
_DELIVERY_ID: Final[Schema] = {
    "oneOf": [  # erp:<id>: an ERP outbox row (flows/destinations.py)
        {"type": "integer", "minimum": 1, "maximum": (1 << 63) - 1},
        {"type": "string", "pattern": "^erp:[1-9][0-9]{0,18}$"},
    ]
}
DESTINATION_OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation(
        "GET",
        "/api/v1/destinations",
        "Outbound destinations: outbox counters, "
        "breaker state, last answer; the newest dead deliveries",
        "destinations",
        {
            200: _json(
                "every destination",
                {
                    "type": "object",
                    "required": ["destinations", "recent"],
                    "properties": {
                        "destinations": {"type": "array", "items": DESTINATION},
                        "recent": {"type": "array", "items": _OBJ},
                    },
                },
            )
        },
    ),
    Operation(
        "POST",
        "/api/v1/deliveries/{id}/resend",
        "Resend one delivery (sent or "
        "dead) with the same idempotency key; erp:<id>, a dead ERP batch file",
        "destinations",
        {
            200: _json(
                "put back in its outbox",
                {
                    "type": "object",
                    "required": ["resent"],
                    "properties": {"resent": {"type": "array", "items": _DELIVERY_ID}},
                },
            ),
            409: _json("pending already (it will be sent)", ERROR),
            404: _json("no such delivery", ERROR),
            403: _json("the token's roles may not resend", ERROR),
        },
        parameters=(
            {
                "name": "id",
                "in": "path",
                "required": True,
                "description": "delivery id, or erp:<outbox id>",
                "schema": _DELIVERY_ID,
            },
        ),
    ),
)
# RFC 9457 problem details (with the v1 error and reason beside): the executive view's
# 404 and 503 (api/analytics.py)
PROBLEM: Final[Schema] = {
    "type": "object",
    "required": [*ERROR["required"], "missing"],
    "properties": {
        **ERROR["properties"],
        "missing": {"type": "string", "enum": ["extra", "warehouse", "busy"]},
    },
}
_PERIOD_SERIES: Final[Schema] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["period"],
        "properties": {"period": {"type": "string"}},
    },
}
EXECUTIVE: Final[Schema] = {
    "type": "object",
    "required": ["as_of", "watermarks", "margin", "denials", "ar", "forecast", "trends", "close"],
    "properties": {
        "as_of": {"type": "string", "format": "date"},
        "period": {"type": "string"},
        "watermarks": {"type": "object", "additionalProperties": {"type": "integer"}},
        "margin": _PERIOD_SERIES,
        "trends": _PERIOD_SERIES,
        "close": _PERIOD_SERIES,
        "denials": {
            "type": "object",
            "required": ["remitted_claims", "denied_claims", "by_month"],
            "properties": {"by_month": _PERIOD_SERIES},
        },
        "ar": {"type": "object", "required": ["by_class", "open"]},
        "forecast": {"type": "array", "items": _OBJ},
    },
}
ANALYTICS_OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation(
        "GET",
        "/api/v1/analytics/executive",
        "The executive view (issue 21) from the "
        "analytics warehouse: margin per service line net of allowances, denials and "
        "write-offs, denial trends, A/R aging by payer class, charge lag, first-pass "
        "yield, cash forecast, close checklist; no PHI",
        "analytics",
        {
            200: _json(
                "what the console's /console/executive.json shows; with period, "
                "the per-period series cut to that period",
                EXECUTIVE,
            ),
            400: _json("period is not YYYY-MM (field period)", ERROR),
            404: Answer(
                "no analytics warehouse yet: run `isthmus analytics export` (missing: warehouse)",
                {PROBLEM_JSON: PROBLEM},
            ),
            503: Answer(
                "not available: the analytics extra is not installed, or an "
                "export holds the warehouse (missing names which; Retry-After "
                "when busy)",
                {PROBLEM_JSON: PROBLEM},
                {"Retry-After": {"schema": {"type": "string"}}},
            ),
        },
        parameters=(
            {
                "name": "period",
                "in": "query",
                "required": False,
                "description": "an accounting period: only its rows in the per-period series",
                "schema": {"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$"},
            },
        ),
    ),
)
_READY: Final[Mapping[int, Answer]] = {
    200: _json(
        "ready",
        {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
    ),
    503: _json(
        "the store, the bus or the schema is not ready (which one: failed or timeout)",
        {"type": "object", "required": ["status"]},
    ),
}
OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation(
        "GET",
        "/health",
        "Readiness: the store, the bus and the schema answer (as /health/ready)",
        "ops",
        _READY,
        public=True,
    ),
    Operation(
        "GET",
        "/openapi.json",
        "This OpenAPI document",
        "ops",
        {200: _json("OpenAPI 3.1 document", {"type": "object", "required": ["openapi", "paths"]})},
    ),
    Operation(
        "GET",
        "/health/ready",
        "Readiness: the store, the bus and the schema answer",
        "ops",
        _READY,
        public=True,
    ),
    Operation(
        "GET",
        "/health/live",
        "Liveness: the process answers",
        "ops",
        {
            200: _json(
                "alive",
                {
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"const": "ok"}},
                },
            )
        },
        public=True,
    ),
    Operation(
        "GET",
        "/metrics",
        "Prometheus text exposition (0.0.4): transport, business and KPI metrics",
        "ops",
        {200: Answer("metrics", {"text/plain": {"type": "string"}})},
    ),
    Operation(
        "GET",
        "/api/v1/status",
        "Counters: store, bus, MLLP, workers, ERP breaker",
        "ops",
        {200: _json("counters", {"type": "object", "required": ["store", "bus_pending"]})},
    ),
    Operation(
        "GET",
        "/api/v1/ledger/trial-balance",
        "Trial balance per account and currency",
        "ledger",
        {
            200: _json(
                "trial balance",
                {
                    "type": "object",
                    "required": ["balanced", "rows", "totals"],
                    "properties": {
                        "balanced": {"type": "boolean"},
                        "rows": {"type": "array", "items": _MONEY_ROW},
                        "totals": {"type": "array", "items": _OBJ},
                    },
                },
            )
        },
    ),
    Operation(
        "GET",
        "/api/v1/messages",
        "Inbound messages, newest first, cursor-paged (no raw message, no patient field)",
        "messages",
        {
            200: page_of("messages", MESSAGE_ROW),
            400: _json("a malformed filter, limit or cursor (field names it)", ERROR),
        },
        parameters=tuple(
            {
                "name": n,
                "in": "query",
                "required": False,
                "description": d,
                "schema": {"type": "string"},
            }
            for n, d in (
                ("status", "accepted, rejected, held, ignored"),
                ("channel", "mllp, x12, fhir, ..."),
                ("type", "message type: ADT (every trigger) or ADT^A01"),
                ("sender", "<MSH-3.1>^<MSH-4.1>"),
                ("control_id", "MSH-10, or the whole identity"),
                ("since", "ISO 8601 time, inclusive"),
                ("until", "ISO 8601 time, exclusive"),
                ("cursor", "the `next` of the previous page"),
                ("limit", "1 to 500, default 50"),
            )
        ),
    ),
    Operation(
        "GET",
        "/api/v1/messages/{ref:path}",
        "Lineage of one inbound message",
        "messages",
        {
            200: _json(
                "message, events, journal entries, ERP batch lines, work items",
                {"type": "object", "required": ["message"]},
            ),
            404: _json("no such message (field ref)", ERROR),
        },
        parameters=(
            _path_param("ref", "inbox id, or <channel>/<control id> (e.g. mllp/MSG00001)"),
        ),
    ),
    Operation(
        "GET",
        "/api/v1/workitems",
        "Exception work items, oldest first, cursor-paged",
        "workitems",
        {
            200: page_of("workitems", WORK_ITEM),
            400: _json("bad status, limit or cursor (field names it)", ERROR),
        },
        parameters=(
            {
                "name": "status",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "enum": ["open", "resolved", "resubmitted"]},
            },
            *_PAGE_PARAMS,
        ),
    ),
    Operation(
        "GET",
        "/api/v1/recon/deposits",
        "835 payments and processor deposits "
        "against bank deposits: matched, and what is unmatched aged in buckets",
        "recon",
        {
            200: _json(
                "deposit matching report (recon/deposits.py)",
                {
                    "type": "object",
                    "required": ["as_of", "matched", "unmatched", "over_limit"],
                    "properties": {
                        "as_of": {"type": "string"},
                        "matched": {"type": "array", "items": _OBJ},
                        "unmatched": _OBJ,
                        "over_limit": {"type": "integer"},
                    },
                },
            ),
            400: _json("bad as_of (field as_of)", ERROR),
        },
        parameters=(
            {
                "name": "as_of",
                "in": "query",
                "required": False,
                "description": "age unmatched items as of this day (today)",
                "schema": {"type": "string", "format": "date"},
            },
        ),
    ),
    Operation(
        "POST",
        "/api/v1/workforce/events",
        "Workforce events from an HCM or "
        "scheduling webhook (shifts, overtime, credentials, transfers, payroll)",
        "workforce",
        {
            202: _json(
                "stored in the inbox; the event ids",
                {
                    "type": "object",
                    "required": ["message_id", "events"],
                    "properties": {
                        "message_id": {"type": "integer"},
                        "duplicate": {"type": "boolean"},
                        "events": {"type": "array", "items": {"type": "string"}},
                    },
                },
            ),
            200: _json("the same body came before: nothing changes"),
            400: _json("not a workforce event (field names it); kept as rejected", ERROR),
        },
        body=(
            JSON,
            {"type": "object", "description": '{"type": "ShiftWorked", ...} or {"events": [...]}'},
        ),
    ),
    Operation(
        "POST",
        "/api/v1/supply/usage",
        "Supply usage from a departmental inventory "
        "application: the usage CSV of the drop folder, over HTTP",
        "supply",
        {
            202: _json(
                "stored in the inbox; the number of usages",
                {
                    "type": "object",
                    "required": ["message_id", "usages"],
                    "properties": {
                        "message_id": {"type": "integer"},
                        "duplicate": {"type": "boolean"},
                        "usages": {"type": "integer"},
                    },
                },
            ),
            200: _json("the same body came before: nothing changes"),
            400: _json(
                "not a usage file: unreadable, empty or a required column missing "
                "(field and row name it, findings list all); kept as rejected",
                USAGE_REFUSED,
            ),
            415: _json("the body is not text/csv (field Content-Type); not read", ERROR),
            422: _json(
                "rows at fault (field and row name the first, findings list "
                "all); kept as rejected, nothing posted",
                USAGE_REFUSED,
            ),
        },
        body=(
            "text/csv",
            {
                "type": "string",
                "description": "usage_id, item, "
                "location, quantity, used_on[, department, facility, lot, "
                "serial, account_number, visit_number, charge_id]",
            },
        ),
    ),
    Operation(
        "GET",
        "/fhir/metadata",
        "CapabilityStatement (FHIR R4 3.1.0.1)",
        "fhir",
        {
            200: _fhir(
                "capability statement",
                {
                    "type": "object",
                    "required": ["resourceType"],
                    "properties": {"resourceType": {"const": "CapabilityStatement"}},
                },
            )
        },
    ),
    Operation(
        "POST",
        "/fhir",
        "Transaction or batch Bundle (FHIR R4 3.1.0.11)",
        "fhir",
        {200: _fhir("transaction-response or batch-response Bundle", RESOURCE), **_FHIR_WRITE},
        body=(FHIR, RESOURCE),
    ),
    Operation(
        "POST",
        "/fhir/{type}",
        "Create a resource",
        "fhir",
        {
            200: Answer("identical resend: the stored resource", {FHIR: RESOURCE}, _VERSIONED),
            201: Answer("created, with meta.versionId", {FHIR: RESOURCE}, _VERSIONED),
            **_FHIR_WRITE,
        },
        parameters=(_TYPE,),
        body=(FHIR, RESOURCE),
    ),
    Operation(
        "GET",
        "/fhir/{type}",
        "Search Account or ExplanationOfBenefit by identifier "
        "or patient (FHIR R4 3.1.0.8): a searchset Bundle",
        "fhir",
        {
            200: _fhir(
                "searchset Bundle: absolute fullUrl, total (unless _total=none), "
                "a self link with the parameters applied and, while matches "
                "remain, a next link (absolute, with _cursor)",
                RESOURCE,
            ),
            400: _fhir(
                "a repeated search parameter, a bad _count, _total or _cursor, "
                "or (with Prefer: handling=strict) an unknown one; unknown ones "
                "are otherwise ignored"
            ),
            404: _fhir("search not supported on this type"),
            500: _fhir("unexpected failure"),
        },
        parameters=(
            _TYPE,
            {
                "name": "identifier",
                "in": "query",
                "required": False,
                "description": "token: system|value, |value or value",
                "schema": {"type": "string"},
            },
            {
                "name": "patient",
                "in": "query",
                "required": False,
                "description": "Patient/id or id",
                "schema": {"type": "string"},
            },
            {
                "name": "_count",
                "in": "query",
                "required": False,
                "description": "matches a page (default 50; above 500 a page "
                "holds 500); 0: the total alone",
                "schema": {"type": "integer", "minimum": 0},
            },
            {
                "name": "_cursor",
                "in": "query",
                "required": False,
                "description": "opaque: the next link's, for the next page",
                "schema": {"type": "string"},
            },
            {
                "name": "_total",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "enum": ["none", "estimate", "accurate"]},
            },
            {
                "name": "Prefer",
                "in": "header",
                "required": False,
                "description": "handling=strict: unknown parameters are a 400",
                "schema": {"type": "string"},
            },
        ),
    ),
    Operation(
        "GET",
        "/fhir/{type}/{id}",
        "Read a resource (an Account with its A/R balance)",
        "fhir",
        {
            200: Answer(
                "the current version, with meta.versionId and lastUpdated",
                {FHIR: RESOURCE},
                {"ETag": _VERSIONED["ETag"]},
            ),
            404: _fhir("unknown type or id"),
            500: _fhir("unexpected failure"),
        },
        parameters=(_TYPE, _ID),
    ),
    Operation(
        "PUT",
        "/fhir/{type}/{id}",
        "Create or update a resource",
        "fhir",
        {
            200: Answer("updated, or an identical resend", {FHIR: RESOURCE}, _VERSIONED),
            201: Answer("created", {FHIR: RESOURCE}, _VERSIONED),
            **_FHIR_WRITE,
            412: _fhir(
                "If-Match names another version than the current one (or the "
                "resource does not exist); nothing stored"
            ),
        },
        parameters=(
            _TYPE,
            _ID,
            {
                "name": "If-Match",
                "in": "header",
                "required": False,
                "description": 'update only this version: W/"<versionId>" (the ETag of a read)',
                "schema": {"type": "string"},
            },
        ),
        body=(FHIR, RESOURCE),
    ),
    *REFUND_OPERATIONS,
    *CHANNEL_OPERATIONS,
    *DESTINATION_OPERATIONS,
    *ANALYTICS_OPERATIONS,
)

_AUTH_ERRORS: Final = {
    401: _json("missing, unknown, expired or revoked token (WWW-Authenticate: Bearer)", ERROR),
    403: _json("the token's roles may not use this route", ERROR),
    429: _json("too many failed authentications from this client; see Retry-After", ERROR),
    503: _json("the governance store cannot be read", ERROR),
}
_FHIR_AUTH_ERRORS: Final = {  # the same refusals under /fhir, as OperationOutcome
    401: _fhir("missing, unknown, expired or revoked token (WWW-Authenticate: Bearer; code login)"),
    403: _fhir("the token's roles may not use this route (code forbidden)"),
    429: _fhir(
        "too many failed authentications from this client; see Retry-After (code throttled)"
    ),
    503: _fhir("the governance store cannot be read (code transient)"),
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


__all__ = ["OPERATIONS", "Answer", "Operation", "coverage", "document", "openapi_path"]
