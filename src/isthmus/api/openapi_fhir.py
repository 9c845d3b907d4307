"""The OpenAPI operations of the FHIR R4 endpoint under /fhir (api/fhir_routes.py): the
CapabilityStatement, transaction and batch Bundles, create, search, read and update.

Every answer is `application/fhir+json`; a refusal is an OperationOutcome. A write answers
with the version (ETag, Location); an update may name the version it replaces (If-Match).
"""

from __future__ import annotations

from typing import Final

from isthmus.api.openapi_parts import (
    FHIR,
    OUTCOME,
    RESOURCE,
    Answer,
    Operation,
    fhir_answer,
    path_param,
)

_TYPE = path_param(
    "type", "FHIR resource type (one of the finance and supply types of /fhir/metadata)"
)
_ID = path_param("id", "logical id ([A-Za-z0-9-.]{1,64})")
_VERSIONED: Final = {
    "ETag": {"description": 'the version: W/"<meta.versionId>"', "schema": {"type": "string"}},
    "Location": {
        "description": "absolute: <base>/fhir/<type>/<id>/_history/<versionId>",
        "schema": {"type": "string"},
    },
}
_FHIR_WRITE = {
    400: fhir_answer("not a valid resource, or type/id mismatch"),
    404: fhir_answer("resource type not supported"),
    403: Answer(
        "the token's roles may not write (JSON), or the data domain is "
        "owned by another system (OperationOutcome, code forbidden)",
        {FHIR: OUTCOME},
    ),
    409: fhir_answer("the id is taken by other content (create)"),
    422: fhir_answer(
        "the resource fails the finance or supply checks (expression "
        "names the element); kept as rejected"
    ),
    500: fhir_answer("unexpected failure; nothing stored"),
    503: Answer(
        "the channel fhir is paused (issue 18); send again after Retry-After seconds",
        {FHIR: OUTCOME},
        {"Retry-After": {"schema": {"type": "string"}}},
    ),
}
FHIR_OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation(
        "GET",
        "/fhir/metadata",
        "CapabilityStatement (FHIR R4 3.1.0.1)",
        "fhir",
        {
            200: fhir_answer(
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
        {
            200: fhir_answer("transaction-response or batch-response Bundle", RESOURCE),
            **_FHIR_WRITE,
        },
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
            200: fhir_answer(
                "searchset Bundle: absolute fullUrl, total (unless _total=none), "
                "a self link with the parameters applied and, while matches "
                "remain, a next link (absolute, with _cursor)",
                RESOURCE,
            ),
            400: fhir_answer(
                "a repeated search parameter, a bad _count, _total or _cursor, "
                "or (with Prefer: handling=strict) an unknown one; unknown ones "
                "are otherwise ignored"
            ),
            404: fhir_answer("search not supported on this type"),
            500: fhir_answer("unexpected failure"),
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
            404: fhir_answer("unknown type or id"),
            500: fhir_answer("unexpected failure"),
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
            412: fhir_answer(
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
)
