"""Traces of the data path through a real in-process hub: one trace per source message
(ingest in the listener, apply in the worker), and a span per ERP delivery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from isthmus.app import Hub
from isthmus.config import ConfigError, TracingSettings, load_settings
from isthmus.connectors.mllp_client import send_messages
from isthmus.observe import tracing
from isthmus.runtime import start
from tests.chart import demo_config
from tests.flows.helpers import adt, dft, ft1, ident
from tests.support import await_until, settled


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.install(None)


async def _run(hub: Hub) -> None:
    run = await start(hub, mllp_port=0, export_every_s=3600)
    try:
        assert run.mllp is not None
        await send_messages(
            "127.0.0.1",
            run.mllp.port,
            [
                adt("TR1", "800001"),
                dft("TR2", "800001", ft1(1, "T1", amount="10.00"), ft1(2, "T2", amount="5.00")),
            ],
        )
        await await_until(lambda: settled(hub), what="the hub to apply both messages")
        await asyncio.to_thread(hub.export)
    finally:
        await run.stop()


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def test_ingest_apply_export_spans(tmp_path: Path, spans: InMemorySpanExporter) -> None:
    hub = Hub.open(load_settings(demo_config(tmp_path), data_dir=tmp_path / "hub"))
    try:
        asyncio.run(_run(hub))
    finally:
        hub.close()
    got = spans.get_finished_spans()
    ingest = {s.attributes["isthmus.status"]: s for s in by_name(got, "isthmus.ingest")}
    assert set(ingest) == {"accepted"} and len(by_name(got, "isthmus.ingest")) == 2
    applied = by_name(got, "isthmus.apply")
    assert len(applied) >= 3  # registration + two charges (and any account events)
    for corr in (f"mllp/{ident('TR1')}", f"mllp/{ident('TR2')}"):
        tid = tracing.trace_id_of(corr)
        mine = [s for s in got if s.context is not None and s.context.trace_id == tid]
        names = sorted({s.name for s in mine})
        assert names == ["isthmus.apply", "isthmus.ingest"], (corr, names)
        ing = next(s for s in mine if s.name == "isthmus.ingest")
        assert ing.attributes is not None and ing.attributes["isthmus.ack_code"] == "AA"
        assert ing.parent is not None and ing.parent.span_id == tracing.parent_of(corr).span_id
    charges = [
        s for s in applied if s.attributes and s.attributes["isthmus.event_type"] == "Charge"
    ]
    assert [s.attributes["isthmus.outcome"] for s in charges if s.attributes] == [
        "posted",
        "posted",
    ]
    exports = by_name(got, "isthmus.export")
    assert exports and all(s.attributes and s.attributes["isthmus.batch_id"] for s in exports)


def test_traceparent_is_w3c_and_stable() -> None:
    tp = tracing.traceparent("mllp/MSG1")
    version, trace_id, parent_id, flags = tp.split("-")
    assert (version, flags, len(trace_id), len(parent_id)) == ("00", "01", 32, 16)
    assert int(trace_id, 16) == tracing.trace_id_of("mllp/MSG1")
    assert tp == tracing.traceparent("mllp/MSG1") != tracing.traceparent("mllp/MSG2")


def test_spans_cost_nothing_when_tracing_is_off() -> None:
    tracing.install(None)
    with tracing.span("isthmus.apply", correlation="mllp/X") as sp:
        assert sp is None
    assert tracing.start("isthmus.ingest") is None and not tracing.enabled()


def test_exporters_from_settings() -> None:
    try:
        import opentelemetry.exporter.otlp  # type: ignore[import-not-found]  # noqa: F401, PLC0415
    except ImportError:
        with pytest.raises(ConfigError, match="opentelemetry-exporter-otlp"):
            tracing.configure(TracingSettings(exporter="otlp"))
    assert tracing.configure(TracingSettings(exporter="none")) is None
    provider = tracing.configure(TracingSettings(exporter="console"))
    try:
        assert provider is not None and tracing.enabled()
    finally:
        tracing.install(None)


def test_a_file_ingest_and_its_apply_share_the_interchange_trace(
    tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    from isthmus.flows.file_intake import take_file  # noqa: PLC0415
    from isthmus.flows.relay import relay_unpublished  # noqa: PLC0415
    from tests.flows.remit.helpers import Clp, Remit  # noqa: PLC0415

    hub = Hub.open(load_settings(None, data_dir=tmp_path / "hub", env={}))
    try:
        [row] = take_file(
            hub.store, hub.settings, Remit([Clp("A1", "80.00")]).build(), "r.835", time.time()
        )
        relay_unpublished(hub.store, hub.bus)
        hub.worker().drain()
    finally:
        hub.close()
    corr = f"x12/{row['control_id']}"
    mine = [
        s
        for s in spans.get_finished_spans()
        if s.context is not None and s.context.trace_id == tracing.trace_id_of(corr)
    ]
    assert {s.name for s in mine} == {"isthmus.apply", "isthmus.ingest"}
    (ing,) = [s for s in mine if s.name == "isthmus.ingest"]
    assert ing.attributes is not None and ing.attributes["isthmus.channel"] == "x12"
