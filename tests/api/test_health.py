"""GET /health checks the store and the bus, within a bound, and says which part failed
(503) without a token and without leaking anything about why."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from isthmus.api.health import Health
from isthmus.api.http import build_app
from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.store.postgres import PostgresStore

SECRET = "postgresql://isthmus:hunter2@db.internal/isthmus"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = Hub.open(load_settings(None, data_dir=tmp_path, env=dict(os.environ)))
    try:
        yield h
    finally:
        h.close()


def _get(hub: Hub, path: str = "/health") -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(hub))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
            return await c.get(path)  # no Authorization header: public

    return asyncio.run(go())


def _boom(*_: object) -> None:
    raise ConnectionError(f"could not reach {SECRET}")


def test_health_is_ok_when_store_and_bus_answer(hub: Hub) -> None:
    r = _get(hub)
    assert (r.status_code, r.json()) == (
        200,
        {"status": "ok", "store": "ok", "bus": "ok", "migrations": "ok"},
    )


@pytest.mark.parametrize("part", ["store", "bus"])
def test_a_failed_part_is_503_named_without_detail(
    hub: Hub, part: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        hub.store if part == "store" else hub.bus,
        "message" if part == "store" else "pending",
        _boom,
    )
    r = _get(hub)
    other = "bus" if part == "store" else "store"
    assert r.status_code == 503
    assert r.json() == {"status": "unavailable", part: "failed", other: "ok", "migrations": "ok"}
    assert "hunter2" not in r.text and "db.internal" not in r.text


def test_a_hanging_part_answers_within_the_bound_and_is_not_piled_up(hub: Hub) -> None:
    release = threading.Event()
    calls = []

    def hang() -> int:
        calls.append(1)
        release.wait(10)
        return 0

    hub.bus.pending = hang  # type: ignore[method-assign]

    async def go() -> list[tuple[int, dict[str, str]]]:
        health = Health(hub, timeout_s=0.2)
        out = []
        for _ in range(3):
            out.append(await health.check())
        release.set()
        await asyncio.sleep(0.1)
        out.append(await health.check())
        return out

    started = time.monotonic()
    answers = asyncio.run(go())
    assert time.monotonic() - started < 3
    assert [a[0] for a in answers] == [503, 503, 503, 200]
    assert answers[0][1] == {
        "status": "unavailable",
        "store": "ok",
        "bus": "timeout",
        "migrations": "ok",
    }
    assert len(calls) == 2  # one stuck probe at a time, then a fresh one once it returned


def test_a_schema_not_at_this_release_is_not_ready(hub: Hub) -> None:
    # a newer release migrated the store under this process, in either mode
    newer = "UPDATE alembic_version SET version_num = '9999'"
    if isinstance(hub.store, PostgresStore):
        hub.store._run(lambda c: c.execute(newer))
    else:
        hub.store._conn().execute(newer)  # type: ignore[attr-defined]
    r = _get(hub)
    assert r.status_code == 503
    assert r.json()["migrations"] == "failed" and r.json()["store"] == "ok"


def test_ready_is_health_and_live_needs_no_dependency(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _get(hub, "/health/ready").json() == _get(hub).json()
    monkeypatch.setattr(hub.store, "message", _boom)
    assert _get(hub, "/health/ready").status_code == 503
    # a store that is down makes the process not ready, never dead: a restart would not help
    live = _get(hub, "/health/live")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})


def test_an_open_erp_breaker_is_shown_and_the_hub_stays_ready(hub: Hub) -> None:
    from types import SimpleNamespace  # noqa: PLC0415 - this test's stand-in for `Running`

    run = SimpleNamespace(dispatcher=SimpleNamespace(breaker=SimpleNamespace(state="open")))

    async def go() -> httpx.Response:
        app = build_app(hub, {"run": run})
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://hub"
        ) as c:
            return await c.get("/health/ready")

    r = asyncio.run(go())
    assert (r.status_code, r.json()["erp"], r.json()["status"]) == (200, "open", "ok")
