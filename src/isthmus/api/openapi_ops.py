"""The OpenAPI operations of the hub's own routes (tag `ops`): health, liveness, readiness,
metrics, the status counters and this document itself (api/health.py, api/http.py).

/health, /health/ready and /health/live are public (no token): a load balancer asks them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from isthmus.api.openapi_parts import (
    Answer,
    Operation,
    json_answer,
)

_READY: Final[Mapping[int, Answer]] = {
    200: json_answer(
        "ready",
        {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
    ),
    503: json_answer(
        "the store, the bus or the schema is not ready (which one: failed or timeout)",
        {"type": "object", "required": ["status"]},
    ),
}
OPS_OPERATIONS: Final[tuple[Operation, ...]] = (
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
        {
            200: json_answer(
                "OpenAPI 3.1 document", {"type": "object", "required": ["openapi", "paths"]}
            )
        },
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
            200: json_answer(
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
        {200: json_answer("counters", {"type": "object", "required": ["store", "bus_pending"]})},
    ),
)
