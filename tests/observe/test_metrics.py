"""/metrics: Prometheus text that the reference parser reads, with the values of a known
ingest (MLLP through the inbox, the worker and the ERP export of an in-process hub)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from isthmus.api.http import build_app
from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.connectors.mllp_client import send_messages
from isthmus.observe.metrics import CONTENT_TYPE, Family, render
from isthmus.runtime import start
from tests.chart import demo_config
from tests.flows.helpers import adt, charge, dft, ft1
from tests.support import await_until, settled

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_render_escapes_label_values_and_names_counters_as_prometheus_client() -> None:
    fams = [
        Family("things", "counter", "Things\nseen").add(3, "_total", kind='a"b\\c\nd'),
        Family("level", "gauge", "A level").add(0.25).add(math.nan, queue="q"),
    ]
    text = render(fams)
    assert "# TYPE isthmus_things_total counter" in text
    assert 'isthmus_things_total{kind="a\\"b\\\\c\\nd"} 3' in text
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    assert parsed["isthmus_things"].type == "counter"
    assert parsed["isthmus_things"].samples[0].labels == {"kind": 'a"b\\c\nd'}
    assert parsed["isthmus_level"].samples[0].value == 0.25
    assert math.isnan(parsed["isthmus_level"].samples[1].value)


async def _idle(hub: Hub) -> None:
    await await_until(lambda: settled(hub), what="the hub to apply what it took")


MESSAGES = [
    adt("M1", "700001", family="ZEBRAFISH", given="QUILLON"),
    dft("M2", "700001", ft1(1, "T1", amount="100.00"), ft1(2, "T2", amount="200.00")),
    charge("M3", "700001", amount="50.00", code="99999"),  # unmapped: a work item
    b"this is not HL7",
]


async def _scrape(hub: Hub) -> tuple[httpx.Response, httpx.Response, int]:
    run = await start(hub, mllp_port=0, export_every_s=3600)
    try:
        assert run.mllp is not None
        report = await send_messages("127.0.0.1", run.mllp.port, MESSAGES)
        assert all(report.acks)
        await _idle(hub)
        await asyncio.to_thread(hub.export)
        transport = httpx.ASGITransport(app=build_app(hub, {"run": run}))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
            metrics = await c.get("/metrics")
            status = await c.get("/api/v1/status")
        return metrics, status, run.mllp.stats.bytes_received
    finally:
        await run.stop()


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any], int]:
    hub = Hub.open(
        load_settings(
            demo_config(tmp_path_factory.mktemp("chart")), data_dir=tmp_path_factory.mktemp("hub")
        )
    )
    try:
        metrics, status, received = asyncio.run(_scrape(hub))
    finally:
        hub.close()
    assert metrics.status_code == 200 and status.status_code == 200
    assert metrics.headers["content-type"] == CONTENT_TYPE
    return metrics.text, status.json(), received


def test_metrics_parse_and_count_the_known_ingest(scraped: tuple[str, dict[str, Any], int]) -> None:
    text, _status, received_bytes = scraped
    s = parse(text)
    assert (
        value(
            s, "isthmus_messages_received_total", channel="mllp", status="accepted", ack_code="AA"
        )
        == 3
    )
    rejected = sum(
        v
        for (n, labels), v in s.items()
        if n == "isthmus_messages_received_total" and ("status", "rejected") in labels
    )
    assert rejected == 1
    assert value(s, "isthmus_mllp_frames_total") == 4
    assert value(s, "isthmus_mllp_received_bytes_total") == received_bytes > 0
    assert value(s, "isthmus_mllp_sent_bytes_total") > 0
    assert value(s, "isthmus_worker_events_total", outcome="applied") >= 3
    assert value(s, "isthmus_worker_events_total", outcome="dead") == 0
    outcomes = sum(v for (n, _), v in s.items() if n == "isthmus_worker_outcomes_total")
    assert outcomes == value(s, "isthmus_worker_events_total", outcome="applied")
    assert value(s, "isthmus_bus_pending") == 0
    assert value(s, "isthmus_bus_dead_letters") == 0
    assert value(s, "isthmus_erp_circuit_open") == 0
    assert value(s, "isthmus_outbox_items", status="pending") == 0


def test_business_metrics_and_kpis_of_the_known_ingest(
    scraped: tuple[str, dict[str, Any], int],
) -> None:
    s = parse(scraped[0])
    assert value(s, "isthmus_charges_posted") == 2
    assert value(s, "isthmus_charges_posted_amount", currency="USD") == 300.0
    assert value(s, "isthmus_unposted_charges") == 1
    assert value(s, "isthmus_unposted_charges_amount", currency="USD") == 50.0
    assert value(s, "isthmus_work_items_open", queue="revenue-integrity") == 1
    assert 0 <= value(s, "isthmus_work_item_oldest_age_seconds", queue="revenue-integrity") < 120
    assert value(s, "isthmus_journal_entries") == 2
    assert value(s, "isthmus_charge_lag_seconds_count") == 2
    assert value(s, "isthmus_charge_lag_seconds", quantile="0.5") > 0
    assert value(s, "isthmus_unapplied_cash_items", bucket="90+") == 0


def test_no_phi_in_metrics_and_status_json_moved(scraped: tuple[str, dict[str, Any], int]) -> None:
    text, status, _ = scraped
    for phi in ("ZEBRAFISH", "QUILLON", "700001"):
        assert phi not in text
    assert status["store"]["charges"] == 2 and status["bus_pending"] == 0
    assert status["acks"]["AA"] == 3
