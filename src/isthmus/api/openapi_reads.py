"""The OpenAPI operations that read the hub's records back: the ledger's trial balance,
inbound messages and their lineage, exception work items, deposit reconciliation
(api/http.py; the rows are what console/reads.py and observe/lineage.py read).
"""

from __future__ import annotations

from typing import Final

from isthmus.api.openapi_parts import (
    ERROR,
    OBJECT,
    PAGE_PARAMS,
    TIME,
    Operation,
    Schema,
    json_answer,
    page_of,
    path_param,
)

_MONEY_ROW: Final[Schema] = {
    "type": "object",
    "properties": {
        k: {"type": "string"} for k in ("account", "currency", "debit", "credit", "balance")
    },
}
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
READ_OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation(
        "GET",
        "/api/v1/ledger/trial-balance",
        "Trial balance per account and currency",
        "ledger",
        {
            200: json_answer(
                "trial balance",
                {
                    "type": "object",
                    "required": ["balanced", "rows", "totals"],
                    "properties": {
                        "balanced": {"type": "boolean"},
                        "rows": {"type": "array", "items": _MONEY_ROW},
                        "totals": {"type": "array", "items": OBJECT},
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
            400: json_answer("a malformed filter, limit or cursor (field names it)", ERROR),
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
            200: json_answer(
                "message, events, journal entries, ERP batch lines, work items",
                {"type": "object", "required": ["message"]},
            ),
            404: json_answer("no such message (field ref)", ERROR),
        },
        parameters=(path_param("ref", "inbox id, or <channel>/<control id> (e.g. mllp/MSG00001)"),),
    ),
    Operation(
        "GET",
        "/api/v1/workitems",
        "Exception work items, oldest first, cursor-paged",
        "workitems",
        {
            200: page_of("workitems", WORK_ITEM),
            400: json_answer("bad status, limit or cursor (field names it)", ERROR),
        },
        parameters=(
            {
                "name": "status",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "enum": ["open", "resolved", "resubmitted"]},
            },
            *PAGE_PARAMS,
        ),
    ),
    Operation(
        "GET",
        "/api/v1/recon/deposits",
        "835 payments and processor deposits "
        "against bank deposits: matched, and what is unmatched aged in buckets",
        "recon",
        {
            200: json_answer(
                "deposit matching report (recon/deposits.py)",
                {
                    "type": "object",
                    "required": ["as_of", "matched", "unmatched", "over_limit"],
                    "properties": {
                        "as_of": {"type": "string"},
                        "matched": {"type": "array", "items": OBJECT},
                        "unmatched": OBJECT,
                        "over_limit": {"type": "integer"},
                    },
                },
            ),
            400: json_answer("bad as_of (field as_of)", ERROR),
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
)
