"""OpenTelemetry traces of the data path: ingest (inbox) -> apply (worker) -> export (ERP).

The flows call `span(...)` through opentelemetry-api only. Until `configure` installs an
SDK tracer provider ([tracing] exporter = "console" or "otlp"), `span` does nothing and
costs a None check, so the hot path pays for tracing only where it is wanted.

One trace per source message, with nothing added to the envelope: the trace id is the
first 16 bytes of SHA-256 of the correlation id (`<channel>/<control id>`), and the spans
of the listener and of the workers (other processes, maybe other hosts) hang under one
remote parent derived the same way. `traceparent` gives that parent in W3C Trace Context
form (https://www.w3.org/TR/trace-context/ section 3.2), for logs, webhooks or a caller
that wants to join the trace. An ERP delivery covers many messages: its span is a trace of
its own, named by batch id.

An HTTP request (api/request_context.py) that carries a W3C `traceparent` header has its
server span made a child of the caller's (`remote_parent`, `http_span`), so a caller's
trace continues into the hub; without one the request's span starts a trace of its own.

The tracer is process-wide, like the logging configuration: `configure` (serve) or
`install` (tests) sets it.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from isthmus.config.observe import TracingSettings
from isthmus.config.values import ConfigError
from isthmus.store.ports import Accepted, Inbound

INSTRUMENTATION = "isthmus"


class _Installed:
    tracer: trace.Tracer | None = None
    provider: TracerProvider | None = None


def install(provider: TracerProvider | None) -> None:
    """Use `provider` for the hub's spans (None: tracing off), shutting down the last one."""
    old = _Installed.provider
    _Installed.provider = provider
    _Installed.tracer = None if provider is None else provider.get_tracer(INSTRUMENTATION)
    if old is not None and old is not provider:
        old.shutdown()


def enabled() -> bool:
    """True when a tracer is installed, so spans are recorded."""
    return _Installed.tracer is not None


def _otlp_exporter(endpoint: str) -> SpanExporter:
    try:
        module = importlib.import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    except ImportError as exc:
        raise ConfigError(
            'tracing.exporter = "otlp" needs the OTLP exporter '
            "(opentelemetry-exporter-otlp-proto-http), which is not installed: "
            'pip install \'isthmus[otlp]\', or use "console" or "none"'
        ) from exc
    exporter: SpanExporter = (
        module.OTLPSpanExporter(endpoint=endpoint) if endpoint else module.OTLPSpanExporter()
    )
    return exporter


def configure(settings: TracingSettings) -> TracerProvider | None:
    """Install the SDK with the configured exporter; None when tracing is off."""
    if settings.exporter == "none":
        install(None)
        return None
    exporter = (
        ConsoleSpanExporter()
        if settings.exporter == "console"
        else _otlp_exporter(settings.endpoint)
    )
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    install(provider)
    return provider


def _digest(correlation: str) -> bytes:
    return hashlib.sha256(correlation.encode()).digest()


def trace_id_of(correlation: str) -> int:
    """The trace id of a source message: the first 16 bytes of SHA-256 of its correlation
    id (never 0, which W3C Trace Context forbids)."""
    return int.from_bytes(_digest(correlation)[:16], "big") or 1


def parent_of(correlation: str) -> SpanContext:
    """The remote parent every span of one source message hangs under."""
    d = _digest(correlation)
    return SpanContext(
        trace_id=int.from_bytes(d[:16], "big") or 1,
        span_id=int.from_bytes(d[16:24], "big") or 1,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


def traceparent(correlation: str) -> str:
    """W3C `traceparent` of a source message's trace: version-traceid-parentid-flags."""
    p = parent_of(correlation)
    return f"00-{p.trace_id:032x}-{p.span_id:016x}-01"


_HEX = frozenset("0123456789abcdef")


def _hex(text: str, size: int) -> bool:
    return len(text) == size and set(text) <= _HEX and text.strip("0") != ""


def remote_parent(header: str | None) -> SpanContext | None:
    """The caller's span from a W3C `traceparent` header (Trace Context, section 3.2:
    version-traceid-parentid-flags, lowercase hex, ids not all zeros); None when absent or
    malformed (the request then starts a trace of its own, section 4.3). A version above
    00 is read for its first four fields, as the spec asks; version ff is invalid."""
    parts = (header or "").strip().split("-")
    if len(parts) < 4:
        return None
    version, tid, pid, flags = parts[:4]
    if (
        len(version) != 2
        or not set(version) <= _HEX
        or version == "ff"
        or (version == "00" and len(parts) != 4)
        or not _hex(tid, 32)
        or not _hex(pid, 16)
        or len(flags) != 2
        or not set(flags) <= _HEX
    ):
        return None
    return SpanContext(
        trace_id=int(tid, 16),
        span_id=int(pid, 16),
        is_remote=True,
        trace_flags=TraceFlags(int(flags, 16) & 0x01),
    )


@contextmanager
def http_span(
    name: str, parent: SpanContext | None, **attributes: Any
) -> Iterator[trace.Span | None]:
    """A SERVER span for one HTTP request, a child of the caller's `traceparent` span when
    it sent one; yields None, doing nothing, when tracing is off."""
    tracer = _Installed.tracer
    if tracer is None:
        yield None
        return
    ctx = trace.set_span_in_context(NonRecordingSpan(parent)) if parent is not None else None
    with tracer.start_as_current_span(
        name,
        context=ctx,
        kind=trace.SpanKind.SERVER,
        attributes={k: v for k, v in attributes.items() if v is not None},
    ) as s:
        yield s


@contextmanager
def span(name: str, *, correlation: str = "", **attributes: Any) -> Iterator[trace.Span | None]:
    """A span named `name` (in the message's trace when `correlation` is given); yields
    None, doing nothing, when tracing is off. Attribute names get an `isthmus.` prefix."""
    tracer = _Installed.tracer
    if tracer is None:
        yield None
        return
    ctx = (
        trace.set_span_in_context(NonRecordingSpan(parent_of(correlation))) if correlation else None
    )
    attrs = {f"isthmus.{k}": v for k, v in attributes.items() if v is not None}
    with tracer.start_as_current_span(name, context=ctx, attributes=attrs) as s:
        yield s


def start(name: str, *, correlation: str = "", **attributes: Any) -> trace.Span | None:
    """A span that is not made current: for a coroutine that awaits between its start and
    its end (an eagerly started MLLP handler may finish in another context, so the current
    context must not be touched). The caller ends it; None when tracing is off."""
    tracer = _Installed.tracer
    if tracer is None:
        return None
    ctx = (
        trace.set_span_in_context(NonRecordingSpan(parent_of(correlation))) if correlation else None
    )
    return tracer.start_span(
        name,
        context=ctx,
        attributes={f"isthmus.{k}": v for k, v in attributes.items() if v is not None},
    )


def ingest_started(inbound: Sequence[Inbound]) -> list[trace.Span | None]:
    """`isthmus.ingest` spans for messages about to be stored (files, FHIR); [] when off."""
    if _Installed.tracer is None:
        return []
    return [
        start(
            "isthmus.ingest",
            correlation=f"{m.channel}/{m.control_id}",
            channel=m.channel,
            message_type=m.message_type,
            status=m.status,
            bytes=len(m.raw),
        )
        for m in inbound
    ]


def ingest_done(spans: Sequence[trace.Span | None], results: Sequence[Accepted]) -> None:
    """End the ingest spans from `ingest_started`, each with its message's ACK code and
    whether it was a duplicate."""
    for sp, res in zip(spans, results, strict=False):
        if sp is not None:
            sp.set_attribute("isthmus.ack_code", res.ack_code)
            sp.set_attribute("isthmus.duplicate", res.duplicate)
            sp.end()
