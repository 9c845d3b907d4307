"""The OpenAPI operations that take data in over HTTP besides FHIR: workforce events from
an HCM or scheduling webhook (api/workforce.py) and supply usage CSV from a departmental
inventory application (api/supply.py). Both answer 202 once the body is in the inbox.
"""

from __future__ import annotations

from typing import Final

from isthmus.api.openapi_parts import (
    ERROR,
    JSON,
    USAGE_REFUSED,
    Operation,
    json_answer,
)

INTAKE_OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation(
        "POST",
        "/api/v1/workforce/events",
        "Workforce events from an HCM or "
        "scheduling webhook (shifts, overtime, credentials, transfers, payroll)",
        "workforce",
        {
            202: json_answer(
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
            200: json_answer("the same body came before: nothing changes"),
            400: json_answer("not a workforce event (field names it); kept as rejected", ERROR),
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
            202: json_answer(
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
            200: json_answer("the same body came before: nothing changes"),
            400: json_answer(
                "not a usage file: unreadable, empty or a required column missing "
                "(field and row name it, findings list all); kept as rejected",
                USAGE_REFUSED,
            ),
            415: json_answer("the body is not text/csv (field Content-Type); not read", ERROR),
            422: json_answer(
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
)
