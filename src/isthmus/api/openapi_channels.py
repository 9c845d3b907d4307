"""The OpenAPI operations of the inbound channels (api/channels.py, issue 18): their
state and counters, pause and resume.
"""

from __future__ import annotations

from typing import Final

from isthmus.api.openapi_parts import (
    ERROR,
    JSON,
    Operation,
    Schema,
    json_answer,
    path_param,
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
_CHANNEL_NAME = path_param("name", "channel name ([channels.<name>], or mllp, fhir, drop)")
_CHANNEL_REFUSED = {
    404: json_answer("no such channel (reason names those that can be paused)", ERROR),
    409: json_answer("the channel has no listener of its own", ERROR),
    403: json_answer("the token's roles may not pause or resume", ERROR),
}
CHANNEL_OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation(
        "GET",
        "/api/v1/channels",
        "Inbound channels: state and counters",
        "channels",
        {
            200: json_answer(
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
            200: json_answer("paused", CHANNEL),
            **_CHANNEL_REFUSED,
            400: json_answer('the body is not {"reason": text}', ERROR),
            413: json_answer("the body is too large", ERROR),
        },
        parameters=(_CHANNEL_NAME,),
        body=(JSON, {"type": "object", "properties": {"reason": {"type": "string"}}}),
    ),
    Operation(
        "POST",
        "/api/v1/channels/{name}/resume",
        "Resume a paused channel",
        "channels",
        {200: json_answer("running", CHANNEL), **_CHANNEL_REFUSED},
        parameters=(_CHANNEL_NAME,),
    ),
)
