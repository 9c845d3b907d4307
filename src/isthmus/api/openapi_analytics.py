"""The OpenAPI operation of the executive view (api/analytics.py, issue 21): the
analytics warehouse's margin, denials, A/R, forecast, trends and close checklist.
"""

from __future__ import annotations

from typing import Final

from isthmus.api.openapi_parts import (
    ERROR,
    OBJECT,
    PROBLEM_JSON,
    Answer,
    Operation,
    Schema,
    json_answer,
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
        "forecast": {"type": "array", "items": OBJECT},
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
            200: json_answer(
                "what the console's /console/executive.json shows; with period, "
                "the per-period series cut to that period",
                EXECUTIVE,
            ),
            400: json_answer("period is not YYYY-MM (field period)", ERROR),
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
