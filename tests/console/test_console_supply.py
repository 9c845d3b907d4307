"""The Supply page (issue 8) in headless Chromium, against a real `isthmus serve`.

The site is the console tests' seed (tests/console/site.py: a token per role) plus the
demo's supply day (demo/supply_day.py) under its `[supply]` table with a smaller budget
for cost center CC-4500: PO-1001 received, the OR's usage takes 7 stents and 30 sutures
(both fall below par), the stent requisition (2700.00) breaks the 1000.00 budget and waits
for approval while the suture one (156.25) is pending, and the suture invoice at 6.90
fails the price match (unmatched, dated 2026-11-04). Served with the same config file.

1. finance sees below-par items and the unmatched invoice with its age bucket, approves
   the held requisition with its button, sees it pending, and the approval is audited;
2. revenue cycle and read-only get 403 for the page, revenue cycle and the auditor (who
   may read the page) 403 for the approval, and nothing is approved;
3. a post with a stale CSRF token is refused (403) and audited, and nothing is approved.
With ISTHMUS_CONSOLE_SHOTS=<dir> the page is also saved as supply.png (1280x800).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.demo import supply_day
from isthmus.flows.relay import relay_unpublished
from isthmus.flows.supply_intake import usage_intake
from isthmus.governance import rbac
from tests.console.site import CHART, USERS, Site, dress
from tests.e2e.helpers import TOKEN_SECRET, Serve

pytestmark = pytest.mark.slow

BUDGET = "1000.00"  # CC-4500: the stent requisition (6 x 450.00) breaks it, sutures do not
AS_OF = "2026-12-20"  # the invoices of 2026-11-04 are 46 days old: 31-60, over the 30 limit
HELD = "STENT-01"
PENDING = "SUTURE-3"
UNMATCHED = "SI-77/2"  # sutures invoiced at 6.90 against 6.25 ordered
MATCHED = "SI-77/1"


@dataclasses.dataclass
class SupplySite:
    site: Site
    config: Path
    held: str  # the id of the requisition waiting for a budget approval


def _toml(table: dict[str, Any], name: str) -> list[str]:
    """A nested table of strings and whole numbers as TOML (JSON strings are TOML's)."""
    out = [f"[{name}]"] + [
        f"{json.dumps(k)} = {json.dumps(v)}" for k, v in table.items() if not isinstance(v, dict)
    ]
    for k, v in table.items():
        if isinstance(v, dict):
            out += _toml(v, f"{name}.{json.dumps(k)}")
    return out


@contextmanager
def opened(s: SupplySite) -> Iterator[Hub]:
    hub = Hub.open(
        dataclasses.replace(
            load_settings(s.config, data_dir=s.site.data_dir), token_secret=TOKEN_SECRET
        )
    )
    try:
        yield hub
    finally:
        hub.close()


def _supply_day(hub: Hub) -> None:
    """The demo's supply day (cli/demo_supply.py `supply_day_in_hub`), applied in process."""
    flow = hub.processor.supply
    assert flow is not None
    with hub.store.transaction() as tx:
        flow.sync(
            tx, orders=list(supply_day.ORDERS), receipts=list(supply_day.RECEIPTS), invoices=[]
        )
    intake = usage_intake(
        supply_day.usage_csv(),
        peer="file:or-usage.csv",
        now=time.time(),
        tenant=hub.settings.tenant,
    )
    hub.store.accept([intake.inbound])
    relay_unpublished(hub.store, hub.bus)
    hub.worker().drain()
    with hub.store.transaction() as tx:
        flow.sync(tx, orders=[], receipts=[], invoices=list(supply_day.INVOICES))


@pytest.fixture(scope="module")
def supply_site(tmp_path_factory: pytest.TempPathFactory) -> SupplySite:
    root = tmp_path_factory.mktemp("console-supply")
    config = root / "isthmus.toml"
    policy = {**supply_day.POLICY, "budgets": {"CC-4500": BUDGET}}
    config.write_text(CHART + "\n".join(_toml(policy, "supply")) + "\n", encoding="utf-8")
    s = SupplySite(dress(root / "data", config), config, "")
    with opened(s) as hub:
        _supply_day(hub)
        assert hub.processor.supply is not None
        reqs = {r.item: r for r in hub.processor.supply.snapshot().requisitions}
    assert reqs[HELD].status == "approval" and reqs[PENDING].status == "pending", reqs
    return dataclasses.replace(s, held=reqs[HELD].req_id)


@pytest.fixture(scope="module")
def site(supply_site: SupplySite) -> Site:
    return supply_site.site


@pytest.fixture(scope="module")
def hub_url(supply_site: SupplySite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    mode = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("ISTHMUS_STORE", "ISTHMUS_BUS", "ISTHMUS_PG_", "ISTHMUS_NATS_"))
    }
    serve = Serve(
        data_dir=supply_site.site.data_dir,
        config=supply_site.config,
        log_dir=tmp_path_factory.mktemp("serve-logs"),
        env=mode,
    )
    serve.start()
    try:
        yield f"http://127.0.0.1:{serve.http_port}"
    finally:
        serve.stop()


def _csrf(page: Any) -> str:
    """The session's CSRF token, from the sign-out form every page carries."""
    return str(page.locator("header input[name=csrf]").get_attribute("value"))


def _audit_since(s: SupplySite, seq: int) -> list[tuple[str, str, str, str]]:
    """The console's audit rows after `seq` (not the browser's anonymous favicon fetch)."""
    with opened(s) as hub:
        return [
            (r.event.actor, r.event.action, r.event.target, r.event.outcome)
            for r in hub.governance.audit_rows(after=seq)
            if r.event.action.startswith("console.")
        ]


def _audit_seq(s: SupplySite) -> int:
    with opened(s) as hub:
        head = hub.governance.audit_head()
    return head[0] if head else 0


def _status(page: Any, hub_url: str, req_id: str) -> str:
    page.goto(f"{hub_url}/console/supply?as_of={AS_OF}")
    return str(page.locator(f"[id='req-{req_id}'] .status").inner_text())


def test_supply_is_refused_without_the_role(
    signed_in: Callable[[str], Any], hub_url: str, supply_site: SupplySite
) -> None:
    rita = signed_in(rbac.REVENUE)
    assert "Supply" not in rita.inner_text("header nav")
    resp = rita.goto(f"{hub_url}/console/supply")
    assert resp.status == 403 and "may not GET /console/supply" in rita.inner_text("main")
    assert supply_site.held not in rita.content()
    before = _audit_seq(supply_site)
    resp = rita.request.post(
        f"{hub_url}/console/supply/approve",
        form={"csrf": _csrf(rita), "requisition": supply_site.held},
    )
    assert resp.status == 403 and "may not POST /console/supply/approve" in resp.text()
    assert _audit_since(supply_site, before) == [
        (USERS[rbac.REVENUE], "console.denied", "/console/supply/approve", "denied")
    ]

    rod = signed_in(rbac.READ_ONLY)
    assert rod.goto(f"{hub_url}/console/supply").status == 403

    otto = signed_in(rbac.AUDITOR)  # reads the page, may not release a budget breach
    otto.click("header nav >> text=Supply")
    otto.wait_for_url("**/console/supply")  # loaded: count() does not wait
    row = otto.locator(f"[id='req-{supply_site.held}']")
    assert "waits for budget approval" in row.inner_text()
    assert otto.locator("button:has-text('Approve')").count() == 0
    resp = otto.request.post(
        f"{hub_url}/console/supply/approve",
        form={"csrf": _csrf(otto), "requisition": supply_site.held},
    )
    assert resp.status == 403
    assert _status(otto, hub_url, supply_site.held) == "waits for budget approval"


def test_approve_needs_the_session_csrf_token(
    signed_in: Callable[[str], Any], hub_url: str, supply_site: SupplySite
) -> None:
    fiona = signed_in(rbac.FINANCE)
    before = _audit_seq(supply_site)
    resp = fiona.request.post(
        f"{hub_url}/console/supply/approve", form={"csrf": "stale", "requisition": supply_site.held}
    )
    assert resp.status == 403 and "Form expired" in resp.text()
    assert _audit_since(supply_site, before) == [
        (USERS[rbac.FINANCE], "console.csrf", "/console/supply/approve", "denied")
    ]
    assert _status(fiona, hub_url, supply_site.held) == "waits for budget approval"


def test_journey_5_supply_report_and_budget_approval(
    signed_in: Callable[[str], Any], hub_url: str, supply_site: SupplySite, shots: Path | None
) -> None:
    fiona = signed_in(rbac.FINANCE)
    fiona.click("header nav >> text=Supply")
    fiona.fill("input[name=as_of]", AS_OF)
    fiona.click("button:has-text('Show')")
    fiona.wait_for_url(f"**/console/supply?as_of={AS_OF}")  # loaded: count() does not wait

    below = fiona.locator("#below-par tbody tr")
    assert below.count() == 2
    stent = fiona.locator("#below-par tbody tr", has_text=HELD).inner_text().split("\t")
    assert stent[:6] == [HELD, "SURG", "3", "10", "4", "6"]  # on order: the held requisition
    assert "10" in fiona.locator("#below-par tbody tr", has_text=PENDING).inner_text()

    bad = fiona.locator("#unmatched tbody tr", has_text=UNMATCHED)
    assert bad.count() == 1 and fiona.locator("#unmatched", has_text=MATCHED).count() == 0
    assert bad.locator(".age").inner_text() == "46"
    assert bad.locator(".bucket").inner_text() == "31-60"
    assert "276.00" in bad.inner_text()  # 40 x 6.90
    assert "1 over the limit" in fiona.inner_text("#summary")
    assert "Surgery" in fiona.inner_text("#margin") and "3337.50" in fiona.inner_text("#margin")

    held = fiona.locator(f"[id='req-{supply_site.held}']")
    assert "waits for budget approval" in held.locator(".status").inner_text()
    assert "pending" in fiona.locator("#requisitions tbody tr", has_text=PENDING).inner_text()
    shot(fiona, shots, "supply")

    before = _audit_seq(supply_site)
    held.locator("button:has-text('Approve over budget')").click()
    assert f"requisition {supply_site.held} approved by {USERS[rbac.FINANCE]}" in fiona.inner_text(
        ".flash.ok"
    )
    assert fiona.url.split("?")[0].endswith("/console/supply") and AS_OF in fiona.url
    held = fiona.locator(f"[id='req-{supply_site.held}']")
    assert held.locator(".status").inner_text() == "pending"
    assert held.locator("button").count() == 0
    assert _audit_since(supply_site, before) == [
        (USERS[rbac.FINANCE], "console.supply.approve", f"requisition/{supply_site.held}", "ok")
    ]
    with opened(supply_site) as hub:  # the budget_approval work item is closed with it
        assert not [
            w
            for w in hub.store.work_items("open")
            if w.kind == "budget_approval" and w.event_id == supply_site.held
        ]

    # approving it again (a second tab, a double submit) approves nothing: 404, audited
    before = _audit_seq(supply_site)
    resp = fiona.request.post(
        f"{hub_url}/console/supply/approve",
        form={"csrf": _csrf(fiona), "requisition": supply_site.held},
    )
    assert resp.status == 404 and "waits for a budget approval" in resp.text()
    assert _audit_since(supply_site, before) == [
        (USERS[rbac.FINANCE], "console.supply.approve", f"requisition/{supply_site.held}", "failed")
    ]

    # second thoughts before the ERP has it: rejected, with a reason, never sent
    resp = fiona.request.post(
        f"{hub_url}/console/supply/reject",
        form={"csrf": _csrf(fiona), "requisition": supply_site.held},
    )
    assert resp.status == 400 and "say why" in resp.text()
    fiona.reload()
    fiona.request.post(
        f"{hub_url}/console/supply/reject",
        form={
            "csrf": _csrf(fiona),
            "requisition": supply_site.held,
            "reason": "covered by a standing order",
        },
    )
    fiona.reload()
    held = fiona.locator(f"[id='req-{supply_site.held}']")
    assert held.locator(".status").inner_text() == "rejected"
    with opened(supply_site) as hub:
        flow = hub.processor.supply
        assert flow is not None
        assert supply_site.held not in [r.req_id for r in flow.pending_requisitions()]


def shot(page: Any, where: Path | None, name: str) -> None:
    if where is not None:
        where.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(where / f"{name}.png"))
