"""The OpenAPI operations of the outbound destinations (api/destinations.py): outbox
counters, breaker state and last answer, and the resend of one delivery.
"""

from __future__ import annotations

from typing import Final

from isthmus.api.openapi_parts import (
    ERROR,
    OBJECT,
    Operation,
    Schema,
    json_answer,
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
            200: json_answer(
                "every destination",
                {
                    "type": "object",
                    "required": ["destinations", "recent"],
                    "properties": {
                        "destinations": {"type": "array", "items": DESTINATION},
                        "recent": {"type": "array", "items": OBJECT},
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
            200: json_answer(
                "put back in its outbox",
                {
                    "type": "object",
                    "required": ["resent"],
                    "properties": {"resent": {"type": "array", "items": _DELIVERY_ID}},
                },
            ),
            409: json_answer("pending already (it will be sent)", ERROR),
            404: json_answer("no such delivery", ERROR),
            403: json_answer("the token's roles may not resend", ERROR),
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
