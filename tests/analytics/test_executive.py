"""The executive view (issue 21) over the demo's exported day: the console page, its JSON
twin and RBAC, and the figures against what the console shows today: the Supply page's
service-line margin (recon.supply.service_line_margin) and the KPIs' denials
(observe.kpis.compute_kpis); the contractual allowances against the ledger's 4900."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from isthmus.analytics.warehouse import EXTRA, WAREHOUSE, Missing
from isthmus.api import analytics as api_analytics
from isthmus.app import Hub
from isthmus.cli.main import run
from isthmus.flows.labor_budget import service_line_cost
from isthmus.governance import rbac
from isthmus.observe.kpis import compute_kpis
from isthmus.recon.supply import service_line_margin
from tests.analytics.helpers import duckdb, export
from tests.api.admin_hub import admin_hub
from tests.chart import demo_config
from tests.console.site import Site, dress
from tests.console.test_console_http import Browser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    root = tmp_path_factory.mktemp("executive")
    data = root / "data"
    assert run(["demo", "--data-dir", str(data), "--messages", "400", "--json"]) == 0
    return dress(data, demo_config(root))


@pytest.fixture(scope="module")
def hub(site: Site) -> Iterator[Hub]:
    h = Hub.open(site.settings())
    try:
        yield h
    finally:
        h.close()


def _signed_in(hub: Hub, site: Site, role: str) -> Browser:
    b = Browser(hub)
    assert b.sign_in(site.tokens[role]).status_code == 303
    return b


def test_without_an_export_the_page_says_what_to_run(hub: Hub, site: Site) -> None:
    if (Path(site.data_dir) / "analytics").exists():
        pytest.skip("exported already")
    r = _signed_in(hub, site, rbac.FINANCE).request("GET", "/console/executive")
    assert r.status_code == 404 and "isthmus analytics export" in r.text


def test_executive_figures_match_what_the_console_shows(
    hub: Hub, site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    export(capsys, Path(site.data_dir), site.config)
    finance = _signed_in(hub, site, rbac.FINANCE)
    page = finance.request("GET", "/console/executive")
    assert page.status_code == 200, page.text[:300]
    for part in (
        "Margin per service line",
        "Denials",
        "A/R aging by payer class",
        "Cash forecast",
        "Close checklist",
        "<svg",
    ):
        assert part in page.text
    assert 'href="/console/executive"' in page.text  # the nav link
    r = finance.request("GET", "/console/executive.json")
    assert r.status_code == 200
    d = r.json()

    revenue = {m.revenue_account for m in hub.settings.mappings.charge_codes.values()}
    shown = service_line_margin(
        hub.store.entries(),
        revenue_accounts=revenue,
        supply_expense_account="6200",
        labor_cost=service_line_cost(hub.store, hub.settings.labor),
    )
    want = {
        (m["service_line"], m["period"]): tuple(
            Decimal(m[k]) for k in ("revenue", "supply", "labor", "margin")
        )
        for m in shown
    }
    got = {
        (m["service_line"], m["period"]): tuple(
            Decimal(m[k]) for k in ("revenue", "supply", "labor", "gross_margin")
        )
        for m in d["margin"]
        if m["service_line"] != "(unallocated)"
    }
    assert got == want and any(v[0] > 0 for v in want.values())

    k = compute_kpis(hub.store, datetime.now(UTC))
    den = d["denials"]
    assert (
        (den["remitted_claims"], den["denied_claims"])
        == (k.remitted_claims, k.denied_claims)
        != (0, 0)
    )
    assert [(c["carc"], c["denials"]) for c in den["by_carc"]] == [
        (c.carc, c.denials) for c in k.denials_by_carc
    ]

    (cat,) = den["by_category"]  # the demo's one denial: CO-50 for the whole charge
    assert (cat["group"], cat["carc"], cat["adjustments"]) == ("CO", "50", 1)
    assert sum(Decimal(m["denial"]) for m in d["margin"]) == Decimal(cat["amount"]) > 0
    assert 'id="denials-category"' in page.text
    contractual = sum(Decimal(m["contractual"]) for m in d["margin"])
    ledger = sum(ln.debit - ln.credit for ln in hub.store.journal_lines() if ln.account == "4900")
    assert contractual == ledger > 0
    for m in d["margin"]:
        net = (
            Decimal(m["gross_margin"])
            - Decimal(m["contractual"])
            - Decimal(m["denial"])
            - Decimal(m["write_off"])
        )
        assert Decimal(m["net_margin"]) == net
    per_token: dict[str, Decimal] = {}
    for ln in hub.store.journal_lines():
        if ln.account == "1200" and ln.dims.account_token:
            t = ln.dims.account_token
            per_token[t] = per_token.get(t, Decimal(0)) + ln.debit - ln.credit
    # open A/R: the debit balances (a credit balance is a refund due, not a receivable)
    assert Decimal(d["ar"]["open"]) == sum(v for v in per_token.values() if v > 0)
    assert any(v < 0 for v in per_token.values())
    assert {f["payer_class"] for f in d["forecast"]} == {
        r["payer_class"] for r in d["ar"]["by_class"]
    }
    assert d["close"] and all("ready" in c for c in d["close"])


def test_executive_view_follows_rbac(hub: Hub, site: Site) -> None:
    engineer = _signed_in(hub, site, rbac.ENGINEER)
    assert engineer.request("GET", "/console/executive").status_code == 403
    assert engineer.request("GET", "/console/executive.json").status_code == 403
    assert Browser(hub).request("GET", "/console/executive.json").status_code == 303


# --- GET /api/v1/analytics/executive: the same view for a bearer token ----------------------

API = "/api/v1/analytics/executive"


def _bearer(hub: Hub, token: str, path: str = API) -> Any:
    return Browser(hub).request("GET", path, headers={"Authorization": f"Bearer {token}"})


def test_the_api_route_answers_what_the_console_json_shows(
    hub: Hub, site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    export(capsys, Path(site.data_dir), site.config)  # incremental: nothing new if done
    console = _signed_in(hub, site, rbac.FINANCE).request("GET", "/console/executive.json")
    r = _bearer(hub, site.tokens[rbac.FINANCE])
    assert r.status_code == 200 and console.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == console.json()
    body = r.json()
    assert body["margin"] and body["denials"]["remitted_claims"] > 0
    # no PHI: no account token, billing account or patient name in the answer
    text = r.text
    assert "PA-" not in text and "CK-" not in text
    for name in ("EVERYMAN", "DOE"):
        assert name not in text.upper()


def test_the_api_route_cuts_the_series_to_one_period(
    hub: Hub, site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    export(capsys, Path(site.data_dir), site.config)
    token = site.tokens[rbac.REVENUE]
    whole = _bearer(hub, token).json()
    period = whole["margin"][0]["period"]
    one = _bearer(hub, token, f"{API}?period={period}")
    assert one.status_code == 200
    got = one.json()
    assert got["period"] == period
    for series in (got["margin"], got["trends"], got["close"], got["denials"]["by_month"]):
        assert all(r["period"] == period for r in series)
    assert got["margin"] == [m for m in whole["margin"] if m["period"] == period] != []
    assert got["ar"] == whole["ar"] and got["forecast"] == whole["forecast"]
    assert _bearer(hub, token, f"{API}?period=1999-01").json()["margin"] == []
    for bad in ("2026-13", "2026-1", "2026-01-01", "２０２６-01", "2026-01\n"):
        r = _bearer(hub, token, f"{API}?period={quote(bad)}")
        assert r.status_code == 400 and r.json()["field"] == "period", bad


def test_the_api_route_follows_rbac(
    hub: Hub, site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    export(capsys, Path(site.data_dir), site.config)
    allowed = {rbac.ADMIN, rbac.FINANCE, rbac.REVENUE, rbac.AUDITOR, rbac.READ_ONLY}
    assert rbac.PERMISSIONS[f"GET {API}"] == rbac.PERMISSIONS["GET /console/executive.json"]
    for role in rbac.ROLES:
        code = _bearer(hub, site.tokens[role]).status_code
        assert code == (200 if role in allowed else 403), (role, code)
    assert Browser(hub).request("GET", API).status_code == 401


def test_the_api_route_answers_503_while_an_export_holds_the_warehouse(
    hub: Hub, site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    export(capsys, Path(site.data_dir), site.config)
    writer = duckdb.connect(str(Path(site.data_dir) / WAREHOUSE))  # as an export holds it
    try:
        r = _bearer(hub, site.tokens[rbac.FINANCE])
    finally:
        writer.close()
    assert r.status_code == 503 and r.headers["retry-after"].isdigit()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["missing"] == "busy"
    assert _bearer(hub, site.tokens[rbac.FINANCE]).status_code == 200


def test_the_api_route_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with admin_hub(tmp_path / "data") as (fresh, token):
        r = _bearer(fresh, token)
        assert r.status_code == 404  # as the console page: nothing exported yet
        assert r.headers["content-type"].startswith("application/problem+json")
        p = r.json()
        assert (p["status"], p["missing"]) == (404, "warehouse")
        assert "isthmus analytics export" in p["detail"]

        def missing() -> None:
            raise Missing(f"analytics needs pyarrow and duckdb (duckdb is missing): {EXTRA}")

        monkeypatch.setattr(api_analytics, "modules", missing)
        r = _bearer(fresh, token)
        assert r.status_code == 503 and r.json()["missing"] == "extra"
        assert r.headers["content-type"].startswith("application/problem+json")
        assert EXTRA in r.json()["detail"]


def test_the_kpis_page_says_how_far_its_facts_reach(
    hub: Hub, site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    export(capsys, Path(site.data_dir), site.config)  # incremental: nothing twice
    con = duckdb.connect(str(Path(site.data_dir) / WAREHOUSE), read_only=True)
    try:
        (mark,) = con.execute("SELECT position FROM watermark WHERE source = 'inbox'").fetchone()
    finally:
        con.close()
    last = hub.store.inbox_after(0, 1 << 30)[-1][0]
    page = _signed_in(hub, site, rbac.READ_ONLY).request("GET", "/console/kpis")
    assert page.status_code == 200
    assert (
        f"the analytics facts up to inbox message {last} (the warehouse up to {mark}, "
        f"the rest from the store)"
    ) in page.text
