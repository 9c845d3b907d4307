"""Structured logs: one JSON object a line, carrying the ids of the message being handled.

The inbox and the worker bind the correlation id (`<channel>/<control id>`), the message
control id (MSH-10, ISA13/ST02, FHIR type/id) and the event id in context variables
(`bound`) while they work on a message, so any record logged meanwhile, by any module,
carries them without passing them down. `JsonFormatter` writes
`{"ts", "level", "logger", "message", "correlation_id", "control_id", "event_id", "exc"}`
(ids only when bound); `TextFormatter` is the classic line with the correlation id added.
An HTTP request binds its `request_id` (X-Request-Id) and the W3C `trace_id` the same way
(api/request_context.py), and its access record adds its own fields (observe/access.py).

PHI guard: logs carry ids and sizes, never message content, by construction. As a guard
against a slip (an exception text quoting a segment), `scrub` cuts anything that looks
like an HL7 v2 segment of a patient-bearing type (PID, PD1, NK1, GT1, IN1, IN2, DG1, MRG,
PV1, PV2, OBX, NTE) or an X12 segment naming or locating a person (NM1, N3, N4, DMG, PER,
REF) out of the message and the traceback.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import IO

from isthmus.config.observe import LogSettings

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "isthmus_correlation_id", default=""
)
control_id: contextvars.ContextVar[str] = contextvars.ContextVar("isthmus_control_id", default="")
event_id: contextvars.ContextVar[str] = contextvars.ContextVar("isthmus_event_id", default="")
# the HTTP request being answered (api/request_context.py): X-Request-Id and W3C trace id
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("isthmus_request_id", default="")
trace_id: contextvars.ContextVar[str] = contextvars.ContextVar("isthmus_trace_id", default="")

_HL7_SEGMENT = re.compile(r"\b(PID|PD1|NK1|GT1|IN1|IN2|DG1|MRG|PV1|PV2|OBX|NTE)\|[^\r\n'\"]*")
_X12_SEGMENT = re.compile(r"\b(NM1|N3|N4|DMG|PER|REF)\*[^~\r\n'\"]*")


def scrub(text: str) -> str:
    """`text` with HL7 v2 / X12 segments that can hold PHI reduced to their names."""
    if "|" in text:
        text = _HL7_SEGMENT.sub(lambda m: f"{m.group(1)}|<redacted>", text)
    if "*" in text:
        text = _X12_SEGMENT.sub(lambda m: f"{m.group(1)}*<redacted>", text)
    return text


class bound:
    """Bind the ids of the message (or HTTP request) at hand for the records logged inside
    the block. A class rather than a generator: the worker enters one per event."""

    __slots__ = ("_tokens", "_values")

    def __init__(
        self,
        *,
        correlation: str = "",
        control: str = "",
        event: str = "",
        request: str = "",
        trace: str = "",
    ) -> None:
        self._values = (correlation, control, event, request, trace)
        self._tokens: list[tuple[contextvars.ContextVar[str], contextvars.Token[str]]] = []

    def __enter__(self) -> None:
        self._tokens = [
            (var, var.set(value)) for var, value in zip(_BOUND, self._values, strict=True) if value
        ]

    def __exit__(self, *exc: object) -> None:
        for var, token in reversed(self._tokens):
            var.reset(token)


_BOUND = (correlation_id, control_id, event_id, request_id, trace_id)


def current_ids() -> dict[str, str]:
    """The ids bound to the current context (correlation, control, event, request, trace),
    the empty ones left out."""
    return {
        k: v
        for k, v in (
            ("correlation_id", correlation_id.get()),
            ("control_id", control_id.get()),
            ("event_id", event_id.get()),
            ("request_id", request_id.get()),
            ("trace_id", trace_id.get()),
        )
        if v
    }


class JsonFormatter(logging.Formatter):
    """One JSON object a line; UTC timestamps in ISO 8601 with milliseconds."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, str | int | float] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        out.update(current_ids())
        fields = getattr(record, "fields", None)  # an access record's (observe/access.py)
        if isinstance(fields, dict):
            out.update({k: v for k, v in fields.items() if k not in out})
        if record.exc_info:
            out["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`<time> <LEVEL> <logger> [<correlation id>]: <message>`, scrubbed (`[req <request
    id>]` for a record logged while an HTTP request is answered)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(ids)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ids = current_ids()
        record.ids = (
            f" [{ids['correlation_id']}]"
            if "correlation_id" in ids
            else f" [req {ids['request_id']}]"
            if "request_id" in ids
            else ""
        )
        return scrub(super().format(record))


def formatter(settings: LogSettings) -> logging.Formatter:
    """The log formatter the settings ask for: JSON lines or plain text."""
    return JsonFormatter() if settings.format == "json" else TextFormatter()


def configure(settings: LogSettings, stream: IO[str] | None = None) -> list[logging.Handler]:
    """Format the root logger's plain stream handlers (the CLI's `basicConfig` one) in the
    configured format; add one on `stream` (stderr) only when the root logger has no
    handler at all, as `basicConfig` does. Other handlers (a test's capture, a file) are
    left alone. [logging] level, when set, applies to the isthmus loggers."""
    root = logging.getLogger()
    plain: list[logging.Handler] = [h for h in root.handlers if type(h) is logging.StreamHandler]
    if not root.handlers:
        plain = [logging.StreamHandler(stream or sys.stderr)]
        root.addHandler(plain[0])
    for h in plain:
        h.setFormatter(formatter(settings))
    if settings.level:
        logging.getLogger("isthmus").setLevel(settings.level.upper())
    return plain
