"""ASGI middleware around every HTTP answer: request id, W3C trace context, access log.

Outermost but for the proxy-address rewrite (api/clients.py), so the bearer-token refusals
(401/403/429) are answered and logged like the rest:
- `X-Request-Id` on every answer: the caller's when sane, else a new one
  (observe/access.py), bound for every log record written meanwhile (observe/logs.py);
- a W3C `traceparent` from the caller (https://www.w3.org/TR/trace-context/) makes the
  request's server span a child of the caller's span when tracing is on
  (observe/tracing.py), and its trace id is bound for the logs either way;
- one access record per request (method, path without query values, status, duration,
  request id, trace id, client);
- an exception nothing below handled is answered here, a 500 with the request id (an
  OperationOutcome under /fhir, RFC 9457 problem+json elsewhere) that never echoes the
  exception's text, and logged with its traceback under the request id. Starlette's own
  outermost error handler would answer it without the header, outside this middleware.
"""

from __future__ import annotations

import json
import logging
import time

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from isthmus.api import problems
from isthmus.formats.fhir import FhirError, operation_outcome
from isthmus.observe import access, logs, tracing

log = logging.getLogger(__name__)


class RequestContext:
    """ASGI middleware that gives every answer an X-Request-Id, runs the request under the
    caller's W3C traceparent (a span when tracing is on), writes its access record, and turns
    an unhandled exception into a 500 that names the request id only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        rid = access.request_id(headers.get("x-request-id"))
        parent = tracing.remote_parent(headers.get("traceparent"))
        trace_id = f"{parent.trace_id:032x}" if parent is not None else ""
        path = access.loggable_path(str(scope.get("path", "")), scope.get("query_string", b""))
        client = scope.get("client")
        status = 500  # what the caller gets if the app fails before it answers
        answered = done = False  # the answer's headers, and its last body part, are sent
        started = time.perf_counter()

        async def answer(message: Message) -> None:
            nonlocal status, answered, done
            if message["type"] == "http.response.start":
                answered = True
                status = int(message["status"])
                MutableHeaders(scope=message)[access.HEADER] = rid
            elif message["type"] == "http.response.body":
                done = not message.get("more_body", False)
            await send(message)

        with (
            logs.bound(request=rid, trace=trace_id),
            tracing.http_span(
                f"{scope['method']} {path.partition('?')[0]}",
                parent,
                **{
                    "http.request.method": scope["method"],
                    "url.path": path,
                    "isthmus.request_id": rid,
                },
            ) as span,
        ):
            try:
                await self.app(scope, receive, answer)
            except Exception as exc:
                if answered and not done:  # cut short: the server drops the connection
                    raise
                log.exception("%s %s failed", scope["method"], path)
                if span is not None:
                    span.record_exception(exc)
                if not answered:  # else a mounted app's own handler answered (the console)
                    await _failure(answer, str(scope.get("path", "")))
            finally:
                if span is not None:
                    span.set_attribute("http.response.status_code", status)
                access.record(
                    method=str(scope["method"]),
                    path=path,
                    status=status,
                    seconds=time.perf_counter() - started,
                    request=rid,
                    client=str(client[0]) if client else "",
                    trace=trace_id,
                )


async def _failure(send: Send, path: str) -> None:
    """The 500 of an unhandled exception: what failed is in the log, not in the answer."""
    why = (
        "the request could not be processed; the log has the details under this "
        f"answer's {access.HEADER}"
    )
    if problems.is_fhir(path):
        doc: object = operation_outcome([FhirError("exception", why)])
        media = problems.FHIR
    else:
        doc, media = problems.body(500, why, instance=path), problems.PROBLEM
    data = json.dumps(doc).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", media.encode()),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


__all__ = ["RequestContext"]
