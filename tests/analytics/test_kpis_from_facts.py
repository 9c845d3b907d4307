"""The KPIs from the analytics facts (issue 21 item 4) against the inbox scan they replace
(tests/observe/kpis_reference.py), on the demo day and on a generated month: from the
warehouse up to its watermark and the store after it, and from the store alone, the same
figures. Receipt times are the warehouse's (to the microsecond), so latencies may differ
from the scan's float seconds by under a microsecond a message: compared to 1 ms."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from isthmus.analytics import feed as feed_module
from isthmus.analytics.feed import FactFeed, site_feed
from isthmus.analytics.warehouse import WAREHOUSE, Missing
from isthmus.app import Hub
from isthmus.cli.main import run
from isthmus.config import load_settings
from isthmus.observe.kpis import Kpis, Latency, compute_kpis
from isthmus.store.memory import MemoryStore
from isthmus.store.ports import Store
from isthmus.store.sqlite import SqliteStore
from tests.analytics.helpers import duckdb, export, query
from tests.analytics.kpi_month import add_day, month_days
from tests.chart import demo_config
from tests.observe.builders import NOW
from tests.observe.kpis_reference import scan_kpis
from tests.observe.test_kpis import known_store
from tests.services import POSTGRES, require


def figures(k: Kpis) -> tuple[Kpis, tuple[Latency, Latency]]:
    """The figures but the two latencies, and the latencies apart (compared to 1 ms)."""
    return (
        dataclasses.replace(
            k,
            facts_mark=0,
            facts_warehouse_mark=0,
            facts_refreshed=None,
            facts_source="",
            charge_lag=Latency(),
            payment_visibility=Latency(),
        ),
        (k.charge_lag, k.payment_visibility),
    )


def assert_same(got: Kpis, want: Kpis) -> None:
    g, (g_lag, g_vis) = figures(got)
    w, (w_lag, w_vis) = figures(want)
    assert g == w
    for a, b in ((g_lag, w_lag), (g_vis, w_vis)):
        assert a.count == b.count
        for x, y in ((a.p50_s, b.p50_s), (a.p95_s, b.p95_s), (a.sum_s, b.sum_s)):
            assert x == pytest.approx(y, abs=1e-3)


def inbox_mark(data: Path) -> int:
    (mark,) = query(data / WAREHOUSE, "SELECT position FROM watermark WHERE source = 'inbox'")[0]
    return int(mark)


@pytest.fixture(scope="module")
def demo_day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("kpi-demo")
    data, conf = root / "data", demo_config(root)
    assert run(["demo", "--data-dir", str(data), "--messages", "400", "--json"]) == 0
    assert (
        run(["analytics", "export", "--data-dir", str(data), "--config", str(conf), "--json"]) == 0
    )
    return data, conf


def test_the_demo_day_kpis_from_the_warehouse_equal_the_scan(demo_day: tuple[Path, Path]) -> None:
    data, conf = demo_day
    hub = Hub.open(load_settings(conf, data_dir=data))
    try:
        now = datetime.now(UTC)
        want = scan_kpis(hub.store, now)
        assert want.posted_charges > 0 and want.remitted_claims > 0  # something to compare
        assert want.unposted_charges > 0 and want.denied_claims > 0
        from_wh = compute_kpis(hub.store, now, feed=site_feed(hub.store, data))
        assert from_wh.facts_source == "warehouse+store"
        assert from_wh.facts_warehouse_mark == inbox_mark(data) == from_wh.facts_mark > 0
        assert_same(from_wh, want)
        from_store = compute_kpis(hub.store, now)
        assert from_store.facts_source == "store"
        assert_same(from_store, want)
    finally:
        hub.close()


@pytest.mark.parametrize("why", ["an export holds it", "no analytics extra"])
def test_without_a_readable_warehouse_the_store_gives_the_same_kpis(
    demo_day: tuple[Path, Path], why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, conf = demo_day
    mark, writer = inbox_mark(data), None
    if why == "an export holds it":
        writer = duckdb.connect(str(data / WAREHOUSE))
    else:

        def missing() -> None:
            raise Missing("analytics needs pyarrow and duckdb (duckdb is missing)")

        monkeypatch.setattr(feed_module, "modules", missing)
    hub = Hub.open(load_settings(conf, data_dir=data))
    try:
        now = datetime.now(UTC)
        got = compute_kpis(hub.store, now, feed=site_feed(hub.store, data))
        assert (got.facts_source, got.facts_warehouse_mark) == ("store", 0)
        assert got.facts_mark == mark  # all of it from the store
        assert_same(got, scan_kpis(hub.store, now))
    finally:
        hub.close()
        if writer is not None:
            writer.close()


DAYS = month_days(date(2026, 10, 20), 8)


def test_a_generated_month_kpis_equal_the_scan_as_the_facts_advance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, conf = tmp_path / "data", demo_config(tmp_path)
    for day in DAYS[:4]:
        add_day(data, conf, day)
    export(capsys, data, conf)  # the warehouse holds the first half
    hub = Hub.open(load_settings(conf, data_dir=data))
    try:
        feed = site_feed(hub.store, data, max_age_s=0.0)
        first = compute_kpis(hub.store, datetime.now(UTC), feed=feed)
        assert first.facts_warehouse_mark == first.facts_mark == inbox_mark(data)
    finally:
        hub.close()
    for day in DAYS[4:]:  # the second half only in the store
        add_day(data, conf, day)
    hub = Hub.open(load_settings(conf, data_dir=data))
    try:
        now = datetime.now(UTC)
        want = scan_kpis(hub.store, now)
        assert want.remitted_claims > first.remitted_claims > 0
        assert want.denied_claims > first.denied_claims > 0
        assert want.posted_charges > first.posted_charges > 0
        assert want.unposted_charges > 0 and want.payment_visibility.count > 0
        fresh = compute_kpis(hub.store, now, feed=site_feed(hub.store, data))
        assert fresh.facts_warehouse_mark == inbox_mark(data) < fresh.facts_mark
        assert_same(fresh, want)
        assert_same(compute_kpis(hub.store, now), want)  # the store alone
        assert_same(compute_kpis(hub.store, now, feed=FactFeed(hub.store)), want)
    finally:
        hub.close()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "sqlite":
        s: Store = SqliteStore(tmp_path / "store.db", synchronous="NORMAL")
        yield s
        s.close()
        return
    require("PostgreSQL", *POSTGRES)
    import psycopg  # noqa: PLC0415

    from isthmus.store.postgres import PostgresStore  # noqa: PLC0415

    host, port = POSTGRES
    dsn = f"postgresql://postgres@{host}:{port}/test"
    schema = f"t_{uuid.uuid4().hex}"
    s = PostgresStore(dsn, schema=schema)
    try:
        yield s
    finally:
        s.close()
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_the_feed_reads_every_store_adapter_like_the_scan(store: Store) -> None:
    known_store(store)
    feed = FactFeed(store, max_age_s=0.0)
    got = compute_kpis(store, NOW, feed=feed)
    assert got.facts_mark == max(m.id for m in store.messages())
    assert_same(got, scan_kpis(store, NOW))
    assert (got.posted_charges, got.remitted_claims, got.payment_visibility.count) == (2, 7, 1)
    assert_same(compute_kpis(store, NOW, feed=feed), got)  # again, from its watermark
