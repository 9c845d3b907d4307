"""GET /api/v1/recon/deposits: the same report as `isthmus recon deposits`, a 400 naming
the field for a bad day (before `init`, loopback reads need no token)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from isthmus.api.http import build_app
from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.flows.relay import relay_unpublished
from isthmus.flows.settlement_intake import csv_intake
from tests.flows.settlement.files import bank_csv


def _get(hub: Hub, path: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(hub), client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
            return await c.get(path)

    return asyncio.run(go())


def test_deposit_report_over_http(tmp_path: Path) -> None:
    hub = Hub.open(load_settings(None, data_dir=tmp_path, env={}))
    try:
        raw = bank_csv([("2026-10-01", "12.00", "MYSTERY", "ACH")])
        hub.store.accept(
            [csv_intake(raw, kind="bank", peer="t", now=0.0, tenant="default").inbound]
        )
        relay_unpublished(hub.store, hub.bus)
        hub.worker().drain()
        r = _get(hub, "/api/v1/recon/deposits?as_of=2026-11-20")
        assert r.status_code == 200
        body = r.json()
        [item] = body["unmatched"]["bank"]["items"]
        assert (item["reference"], item["age_days"], item["bucket"]) == ("MYSTERY", 50, "31-60")
        assert body["over_limit"] == 1 and body["matched"] == []
        bad = _get(hub, "/api/v1/recon/deposits?as_of=tomorrow")
        assert bad.status_code == 400 and bad.json()["field"] == "as_of"
    finally:
        hub.close()
