"""ASGI middleware around every HTTP answer: request id, W3C trace context, access log.

Outermost but for the proxy-address rewrite (api/clients.py), so the bearer-token refusals
(401/403/429) are answered and logged like the rest:
- `X-Request-Id` on every answer: the caller's when sane, else a new one
  (observe/access.py), bound for every log record written meanwhile (observe/logs.py);
- a W3C `traceparent` from the caller (https://www.w3.org/TR/trace-context/) makes the
  request's server span a child of the caller's span when tracing is on
  (observe/tracing.py), and its trace id is bound for the logs either way;
- one access record per request (method, path without query values, status, duration,
  request id, trace id, client).
"""

from __future__ import annotations

import time

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from isthmus.observe import access, logs, tracing


class RequestContext:
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
        started = time.perf_counter()

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)[access.HEADER] = rid
            await send(message)

        with logs.bound(request=rid, trace=trace_id), tracing.http_span(
                f"{scope['method']} {path.partition('?')[0]}", parent,
                **{"http.request.method": scope["method"], "url.path": path,
                   "isthmus.request_id": rid}) as span:
            try:
                await self.app(scope, receive, answer)
            finally:
                if span is not None:
                    span.set_attribute("http.response.status_code", status)
                access.record(method=str(scope["method"]), path=path, status=status,
                              seconds=time.perf_counter() - started, request=rid,
                              client=str(client[0]) if client else "", trace=trace_id)


__all__ = ["RequestContext"]
