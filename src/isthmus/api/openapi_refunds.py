"""The OpenAPI operations of the refund register (api/refunds.py): request a refund of a
credit balance, list and read refunds, approve or reject a pending one.

Requests are idempotent (a body field or the Idempotency-Key header); the refusals (400,
403, 404, 409) are the refund service's (flows/refunds.py).
"""

from __future__ import annotations

from typing import Final

from isthmus.api.openapi_parts import (
    ERROR,
    JSON,
    PAGE_PARAMS,
    TIME,
    Operation,
    Schema,
    json_answer,
    page_of,
    path_param,
)

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
_REFUND_ID = path_param("id", "refund id (RF-...)")
_REFUND_REFUSED = {
    400: json_answer("a field is missing or malformed (field names it)", ERROR),
    404: json_answer("no such account or refund", ERROR),
    409: json_answer(
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
            201: json_answer(
                "created: posted at once (at or under the approval threshold) or pending approval",
                REFUND,
            ),
            200: json_answer("the same request again: the first answer", REFUND),
            **_REFUND_REFUSED,
            403: json_answer("the token's roles may not request refunds", ERROR),
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
            400: json_answer("bad status, limit or cursor (field names it)", ERROR),
        },
        parameters=(
            {
                "name": "status",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "enum": ["pending", "posted", "rejected"]},
            },
            *PAGE_PARAMS,
        ),
    ),
    Operation(
        "GET",
        "/api/v1/refunds/{id}",
        "One refund",
        "refunds",
        {200: json_answer("the refund", REFUND), 404: json_answer("no such refund", ERROR)},
        parameters=(_REFUND_ID,),
    ),
    Operation(
        "POST",
        "/api/v1/refunds/{id}/approve",
        "Approve a pending refund; it posts",
        "refunds",
        {
            200: json_answer("approved and posted (or the same approval again)", REFUND),
            **_REFUND_REFUSED,
            403: json_answer(
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
            200: json_answer("rejected (or the same rejection again)", REFUND),
            **_REFUND_REFUSED,
            403: json_answer("a role that may not reject", ERROR),
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
