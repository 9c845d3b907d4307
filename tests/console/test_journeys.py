"""The console's user journeys in headless Chromium, against a real `isthmus serve`.

1. Find a charge by its control id and follow it to the ERP batch.
2. Resolve an unmapped-code work item and see the charge post.
3. Replay a dead letter.
4. Approve a refund as a second user.
With ISTHMUS_CONSOLE_SHOTS=<dir> each page is also saved as a PNG (1280x800).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from isthmus.governance import rbac
from tests.console.site import CREDIT_ACCOUNT, DEAD, POSTED, UNMAPPED, USERS
from tests.support import wait_until

pytestmark = pytest.mark.slow


def shot(page: Any, where: Path | None, name: str) -> None:
    if where is not None:
        where.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(where / f"{name}.png"))


def eventually(page: Any, check: Callable[[], bool], what: str) -> None:
    """Reload the page until `check` holds: the served hub's worker applies in the
    background, so a page shows the outcome some time after the action."""

    def reloaded() -> bool:
        if check():
            return True
        page.reload()
        return False

    wait_until(reloaded, what=f"{what} on {page.url}", every_s=0.5)


def test_login_page_and_bad_token(browser: Any, hub_url: str, shots: Path | None) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = ctx.new_page()
        page.goto(f"{hub_url}/console/queues")
        assert "/console/login" in page.url
        shot(page, shots, "login")
        page.fill("#token", "isth_000000000000_" + "x" * 43)
        page.click("button:has-text('Sign in')")
        assert "invalid token" in page.inner_text("main")
        assert not [c for c in ctx.cookies() if c["name"] == "isthmus_console"]
    finally:
        ctx.close()


def test_dashboard(signed_in: Callable[[str], Any], shots: Path | None) -> None:
    page = signed_in(rbac.READ_ONLY)
    body = page.inner_text("main")
    assert "ERP circuit" in body and "closed" in page.inner_text("#breaker")
    assert "dead letters" in page.inner_text("#backlog")
    assert page.locator("svg.chart").count() >= 2
    # read-only sees no message browser and no dead letters in its menu
    nav = page.inner_text("header nav")
    assert "Messages" not in nav and "Dead letters" not in nav and "KPIs" in nav
    shot(page, shots, "dashboard")


def test_journey_1_control_id_to_erp_batch(
    signed_in: Callable[[str], Any], shots: Path | None
) -> None:
    page = signed_in(rbac.AUDITOR)
    page.click("header nav >> text=Messages")
    page.fill("input[name=control_id]", POSTED)
    page.click("button:has-text('Search')")
    rows = page.locator("#results tbody tr", has_text=POSTED)
    rows.first.wait_for()  # the search's page has loaded (count() does not wait)
    assert page.locator("#results tbody tr").count() == 1
    shot(page, shots, "messages")
    page.click(f"#results >> text={POSTED}")
    # the message's identity names its sender: mllp/<MSH-3>^<MSH-4>:<MSH-10>
    assert "/console/messages/mllp/" in page.url and page.url.endswith(f":{POSTED}")
    hops = page.inner_text(".lineage")
    assert "Charge" in hops and "4200" in hops and "125.00" in hops
    batch = page.inner_text(".batch-id")
    assert batch.startswith("JB-")
    assert "Show raw message" in page.inner_text("main")  # auditors may see PHI
    shot(page, shots, "trace")
    page.click("text=Show raw message")
    assert "MSH|" in page.inner_text("pre.raw")


def test_raw_message_is_not_for_revenue_cycle(
    signed_in: Callable[[str], Any], hub_url: str
) -> None:
    page = signed_in(rbac.REVENUE)
    page.goto(f"{hub_url}/console/messages/mllp/{POSTED}")
    assert "Show raw message" not in page.inner_text("main")
    resp = page.goto(f"{hub_url}/console/raw/mllp/{POSTED}")
    assert resp.status == 403 and "MSH|" not in page.content()


def test_journey_2_resolve_unmapped_code_and_post(
    signed_in: Callable[[str], Any], hub_url: str, shots: Path | None
) -> None:
    page = signed_in(rbac.REVENUE)
    page.goto(f"{hub_url}/console/messages/mllp/{UNMAPPED}")
    assert page.locator(".entry").count() == 0  # held: nothing posted yet
    assert "unmapped_charge_code" in page.inner_text(".lineage")
    page.click("header nav >> text=Work queues")
    page.click(".tabs >> text=revenue-integrity")
    row = page.locator("#items tbody tr", has_text="unmapped_charge_code")
    row.first.wait_for()  # the tab's page has loaded (count() does not wait)
    assert row.count() == 1 and "99999" in row.inner_text()
    row.locator("input[name=assignee]").fill("rita")
    row.locator("button:has-text('Assign')").click()
    assert "assigned to rita" in page.inner_text(".flash.ok")
    row = page.locator("#items tbody tr", has_text="unmapped_charge_code")
    assert "rita" in row.locator(".assignee").inner_text()
    shot(page, shots, "queues")
    row.locator("input[name=set_revenue_account]").fill("4200")
    row.locator("input[name=set_service_line]").fill("Laboratory")
    row.locator("button:has-text('Resolve')").click()
    assert "resolved" in page.inner_text(".flash.ok")
    # resolving the mapping released the charge held behind it: no resubmit (issue 15)
    page.goto(f"{hub_url}/console/queues?queue=revenue-integrity&status=resolved")
    done = page.locator("#items tbody tr", has_text="99999").inner_text()
    assert "released 1 held event(s) (310.00 USD)" in done
    page.goto(f"{hub_url}/console/messages/mllp/{UNMAPPED}")
    eventually(page, lambda: page.locator(".entry").count() == 1, "one journal entry")
    entry = page.inner_text(".entry")
    assert "4200" in entry and "310.00" in entry


def test_journey_3_replay_dead_letter(
    signed_in: Callable[[str], Any], hub_url: str, shots: Path | None
) -> None:
    page = signed_in(rbac.ENGINEER)
    page.goto(f"{hub_url}/console/messages/mllp/{DEAD}")
    assert page.locator(".entry").count() == 0  # its events are dead letters
    page.click("header nav >> text=Dead letters")
    rows = page.locator("#dead tbody tr", has_text=DEAD)
    rows.first.wait_for()  # the page has loaded (count() does not wait)
    assert rows.count() >= 1 and "timed out" in rows.first.inner_text()
    shot(page, shots, "dlq")
    for i in range(rows.count()):
        rows.nth(i).locator("input[type=checkbox]").check()
    page.click("button:has-text('Replay selected')")
    assert "replayed" in page.inner_text(".flash.ok")
    assert DEAD not in page.inner_text("#dead")
    page.goto(f"{hub_url}/console/messages/mllp/{DEAD}")
    eventually(page, lambda: page.locator(".entry").count() == 1, "one journal entry")
    assert "88.50" in page.inner_text(".entry")


def test_recon_and_kpis_pages(signed_in: Callable[[str], Any], shots: Path | None) -> None:
    page = signed_in(rbac.FINANCE)
    page.click("header nav >> text=Reconciliation")
    batches = page.locator("#batches tbody tr")
    batches.first.wait_for()  # the page has loaded (count() does not wait)
    assert batches.count() >= 1
    assert "1200" in page.inner_text("#balances")
    shot(page, shots, "recon")
    page.click("header nav >> text=KPIs")
    assert "unposted charges" in page.inner_text("#unposted")
    assert "denial rate" in page.inner_text("main")
    shot(page, shots, "kpis")


def test_journey_4_refund_approved_by_a_second_user(
    signed_in: Callable[[str], Any], hub_url: str, shots: Path | None
) -> None:
    rita = signed_in(rbac.REVENUE)
    rita.click("header nav >> text=Refunds")
    form = rita.locator("#request")
    form.locator("input[name=account]").fill(CREDIT_ACCOUNT)
    form.locator("input[name=amount]").fill("600.00")
    form.locator("input[name=reason]").fill("overpayment returned to guarantor")
    form.locator("button:has-text('Request refund')").click()
    assert "waits for a second person's approval" in rita.inner_text(".flash.ok")
    row = rita.locator("#refunds tbody tr", has_text="600.00")
    assert "pending" in row.locator(".status").inner_text()
    assert row.locator("button:has-text('Approve')").count() == 0  # rita may not decide
    rid = (row.get_attribute("id") or "").removeprefix("refund-")
    assert rid.startswith("RF-")

    fiona = signed_in(rbac.FINANCE)
    fiona.click("header nav >> text=Refunds")
    row = fiona.locator(f"#refund-{rid}")
    shot(fiona, shots, "refunds")
    row.locator("input[name=note]").fill("checked against the remittance")
    row.locator("button:has-text('Approve')").click()
    assert f"refund {rid} posted by {USERS[rbac.FINANCE]}" in fiona.inner_text(".flash.ok")
    assert "posted" in fiona.locator(f"#refund-{rid} .status").inner_text()
    rita.goto(f"{hub_url}/console/messages/refunds/{rid}")  # the lineage of the refund
    entry = rita.inner_text(".entry")
    assert "600.00" in entry and "1200" in entry
