"""What every family of the OpenAPI document is built of (api/openapi.py assembles it).

The media types, the error bodies (RFC 9457 problem details outside /fhir, a FHIR
OperationOutcome under it), the page parameters and answer of a list route (api/pages.py),
the `X-Request-Id` header, and the two records a family's table is written in: `Answer`
(one documented response) and `Operation` (one route). Each resource family keeps its own
schemas and operations beside it (api/openapi_*.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

JSON: Final = "application/json"
PROBLEM_JSON: Final = "application/problem+json"
FHIR: Final = "application/fhir+json"

Schema = dict[str, Any]

OBJECT: Final[Schema] = {"type": "object"}
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
# every time in an answer: ISO 8601 / RFC 3339 (observe/instant.py)
TIME: Final[Schema] = {"type": "string", "format": "date-time"}
PAGE_PARAMS: Final[tuple[Schema, ...]] = (
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


def json_answer(description: str, schema: Schema = OBJECT) -> Answer:
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


def fhir_answer(description: str, schema: Schema = OUTCOME) -> Answer:
    """A FHIR answer (`application/fhir+json`); an OperationOutcome unless told."""
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


def path_param(name: str, description: str) -> Schema:
    """A required path parameter: a non-empty string."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
    }
