"""The console's Mappings page over ASGI (issue 15, item 4): what waits for a mapping, with
its count, amount and age; the mappings in force; and the resolve form, which stores the
mapping and releases every held event at once, behind the session's CSRF token and the
role that may resolve work items, audited with the actor.

The site is the console tests' seed (tests/console/site.py) plus two more charges of the
unmapped code 99999, so its one item holds three events (310.00 + 2 x 20.00 USD).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from isthmus.app import Hub
from isthmus.flows import mapping_holds
from isthmus.flows.file_intake import take_file
from isthmus.flows.relay import relay_unpublished
from isthmus.governance import rbac
from tests.console.site import USERS, Site
from tests.console.test_console_http import Browser
from tests.flows.helpers import charge

REF = mapping_holds.ref_of("charge_codes", "99999")


@pytest.fixture(scope="module")
def hub(site: Site) -> Iterator[Hub]:
    h = Hub.open(site.settings())
    try:
        for n in (1, 2):  # two more charges of the seed's unmapped code
            take_file(
                h.store,
                h.settings,
                charge(f"MAP{n}", "5003", "20.00", code="99999"),
                f"map{n}.hl7",
                time.time(),
            )
        relay_unpublished(h.store, h.bus)
        h.worker().drain()
        yield h
    finally:
        h.close()


def _item_id(hub: Hub) -> int:
    [w] = [w for w in hub.store.work_items("open") if w.event_id == REF]
    return w.id


def test_the_page_lists_what_waits_and_what_is_mapped(hub: Hub, site: Site) -> None:
    b = Browser(hub)
    b.sign_in(site.tokens[rbac.AUDITOR])  # who may read it, not resolve it
    r = b.request("GET", "/console/mappings")
    assert r.status_code == 200
    row = re.search(rf'id="mapping-{_item_id(hub)}">(.*?)</tr>', r.text, re.S)
    assert row is not None
    assert 'class="code">99999<' in row.group(1)
    assert 'class="n count">3<' in row.group(1)
    assert "350.00 USD" in row.group(1)
    assert "Map and release" not in r.text  # no form for a role that may not resolve
    assert "config (demo chart)" in r.text  # the chart in force, named by its source
    only = b.request("GET", "/console/mappings?table=facility_company").text
    assert "department_cost_center</td>" not in only and "facility_company</td>" in only
    assert "MRN" not in r.text and "DOE" not in r.text  # codes of the chart, no patient


def test_resolving_needs_the_role_and_the_session_csrf_token(hub: Hub, site: Site) -> None:
    item = _item_id(hub)
    auditor = Browser(hub)
    auditor.sign_in(site.tokens[rbac.AUDITOR])
    r = auditor.request(
        "POST",
        f"/console/mappings/{item}/resolve",
        data={"csrf": auditor.csrf(), "set_revenue_account": "4999"},
    )
    assert r.status_code == 403
    rita = Browser(hub)
    rita.sign_in(site.tokens[rbac.REVENUE])
    r = rita.request(
        "POST",
        f"/console/mappings/{item}/resolve",
        data={"csrf": "stale", "set_revenue_account": "4999"},
    )
    assert r.status_code == 403 and "CSRF" in r.text
    r = rita.request(
        "POST",
        f"/console/mappings/{item}/resolve",
        data={"csrf": rita.csrf(), "set_service_line": "Lab"},
    )
    assert r.status_code == 400 and "revenue_account" in r.text
    assert hub.store.work_item(item).status == "open"  # type: ignore[union-attr]


def test_resolving_maps_the_code_and_releases_every_held_charge(hub: Hub, site: Site) -> None:
    item = _item_id(hub)
    before_entries = len(hub.store.entries())
    rita = Browser(hub)
    rita.sign_in(site.tokens[rbac.REVENUE])
    before = hub.governance.audit_head()
    r = rita.request(
        "POST",
        f"/console/mappings/{item}/resolve",
        data={
            "csrf": rita.csrf(),
            "set_revenue_account": "4999",
            "set_service_line": "Lab",
            "note": "new lab panel",
        },
    )
    assert r.status_code == 303
    said = r.headers["location"]
    assert "released%203%20held%20event" in said and "3%20posted" in said
    after = hub.store.work_item(item)
    assert after is not None and after.status == "resolved"
    # the three charges posted, on the revenue account the form gave
    posted = hub.store.entries()[before_entries:]
    revenue = [ln for e in posted for ln in e.lines if ln.account == "4999"]
    assert sum((ln.credit - ln.debit for ln in revenue), Decimal(0)) == Decimal("350.00")
    rows = hub.governance.audit_rows(after=before[0] if before else 0)
    assert [(x.event.actor, x.event.action, x.event.target, x.event.outcome) for x in rows] == [
        (USERS[rbac.REVENUE], "console.mappings.resolve", f"workitem/{item}", "ok")
    ]
    page = rita.request("GET", "/console/mappings?table=charge_codes").text
    assert f'id="mapping-{item}"' not in page  # nothing waits for it any more
    assert re.search(r"<td>99999</td><td>[^<]*4999[^<]*</td><td class=\"source\">override<", page)
    # the item is done: a second resolve is refused with its reason
    r = rita.request(
        "POST",
        f"/console/mappings/{item}/resolve",
        data={"csrf": rita.csrf(), "set_revenue_account": "4998"},
    )
    assert r.status_code == 400 and "already resolved" in r.text


def test_other_items_are_not_resolved_here(hub: Hub, site: Site) -> None:
    with hub.store.transaction() as tx:  # a payment's own item, not a missing mapping
        tx.add_work_item(
            kind="unapplied_cash",
            queue="cash-posting",
            key="remit|X",
            event_id="x12/T:1/0001/0",
            correlation_id="x12/T:1",
            detail="no account",
            envelope=b"",
            now=time.time(),
        )
    [other] = [w for w in hub.store.work_items("open") if w.kind == "unapplied_cash"]
    eli = Browser(hub)
    eli.sign_in(site.tokens[rbac.ENGINEER])
    r = eli.request(
        "POST",
        f"/console/mappings/{other.id}/resolve",
        data={"csrf": eli.csrf(), "set_company": "C1"},
    )
    assert r.status_code == 400 and "not a missing mapping" in r.text
