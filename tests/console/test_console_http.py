"""The console over ASGI (no browser): every route × every role, sessions, CSRF, audit.

The routes come from the console app itself, so a new console route without a
governance.rbac entry fails here, like tests/governance/test_rbac_matrix.py for the API.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from isthmus.api.http import build_app
from isthmus.app import Hub
from isthmus.console import session
from isthmus.console.app import build_console
from isthmus.governance import rbac
from tests.console.site import POSTED, UNMAPPED, USERS, Site
from tests.e2e.helpers import TOKEN_SECRET

PUBLIC_PATHS = {"/login", "/logout", "/static/console.css"}


@pytest.fixture(scope="module")
def hub(site: Site) -> Iterator[Hub]:
    h = Hub.open(site.settings())
    try:
        yield h
    finally:
        h.close()


class Browser:
    """A cookie-keeping client of the whole HTTP app (API + console), sync for the tests."""

    def __init__(self, hub: Hub) -> None:
        self.app = build_app(hub, None, console=build_console)
        self.cookies = httpx.Cookies()

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            t = httpx.ASGITransport(app=self.app, client=("127.0.0.1", 50000))
            async with httpx.AsyncClient(
                transport=t, base_url="http://hub", cookies=self.cookies
            ) as c:
                r = await c.request(method, path, **kw)
                self.cookies.update(c.cookies)
                return r

        return asyncio.run(go())

    def sign_in(self, token: str, nxt: str = "/console/") -> httpx.Response:
        """Post the sign-in form as a browser does: with the form's CSRF token."""
        page = self.request("GET", "/console/login").text
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found, page[:500]
        return self.request(
            "POST", "/console/login", data={"token": token, "next": nxt, "csrf": found.group(1)}
        )

    def csrf(self) -> str:
        page = self.request("GET", "/console/").text
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found, page[:500]
        return found.group(1)


def _routes(hub: Hub) -> list[tuple[str, str]]:
    out = []
    for r in build_console(hub).routes:
        assert isinstance(r, Route)
        out += [(m, r.path) for m in sorted(r.methods or ()) if m != "HEAD"]
    return out


def _concrete(path: str) -> str:
    return ("/console" + path).replace("{ref:path}", "mllp/NOPE").replace("{id:int}", "999999")


def test_every_console_route_has_a_permission(hub: Hub) -> None:
    routes = _routes(hub)
    assert len(routes) >= 14
    missing = [
        f"{m} /console{p}"
        for m, p in routes
        if rbac.http_action(m, "/console" + p) not in rbac.PERMISSIONS
        and rbac.http_action(m, "/console" + p) not in rbac.CONSOLE_PUBLIC
    ]
    assert not missing, f"console routes without an rbac entry: {missing}"


def test_console_role_matrix(hub: Hub, site: Site) -> None:
    anonymous = Browser(hub)
    browsers = {role: Browser(hub) for role in rbac.ROLES}
    for role, b in browsers.items():
        assert b.sign_in(site.tokens[role]).status_code == 303
    csrf = {role: b.csrf() for role, b in browsers.items()}
    for method, path in _routes(hub):
        if path in PUBLIC_PATHS:
            continue
        action = rbac.http_action(method, "/console" + path)
        url = _concrete(path)
        r = anonymous.request(method, url, data={"csrf": "x"})
        assert r.status_code == (303 if method == "GET" else 401), (action, r.status_code)
        for role, b in browsers.items():
            r = b.request(method, url, data={"csrf": csrf[role]})
            if role in rbac.PERMISSIONS[action]:
                assert r.status_code in (200, 303, 400, 404), (action, role, r.status_code)
            else:
                assert r.status_code == 403, (action, role, r.status_code)
                assert "may not" in r.text


def test_no_session_redirects_to_sign_in_and_back(hub: Hub, site: Site) -> None:
    b = Browser(hub)
    r = b.request("GET", "/console/queues?queue=denials")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/console/login?next=/console/queues%3Fqueue")
    r = b.sign_in(site.tokens[rbac.REVENUE], "/console/queues?queue=denials")
    assert r.headers["location"] == "/console/queues?queue=denials"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert site.tokens[rbac.REVENUE] not in r.headers["set-cookie"]


def test_sign_in_refuses_bad_tokens_and_foreign_redirects(hub: Hub, site: Site) -> None:
    b = Browser(hub)
    r = b.sign_in("isth_nope_" + "A" * 40)
    assert r.status_code == 401 and "invalid token" in r.text
    assert session.COOKIE + "=" not in r.headers.get("set-cookie", "")
    r = b.sign_in("")
    assert r.status_code == 400
    r = b.sign_in(site.tokens[rbac.AUDITOR], "//evil.example/console/")
    assert r.headers["location"] == "/console/"
    rows = hub.governance.audit_rows()
    assert any(x.event.action == "console.login" and x.event.outcome == "denied" for x in rows)
    assert all(site.tokens[rbac.AUDITOR] not in x.event.detail for x in rows)


def test_forged_or_expired_cookie_is_no_session(hub: Hub, site: Site) -> None:
    b = Browser(hub)
    b.sign_in(site.tokens[rbac.ADMIN])
    good = b.cookies[session.COOKIE]
    body, mac = good.split(".")
    forged = Browser(hub)
    forged.cookies.set(session.COOKIE, body + "A." + mac, domain="hub", path="/console")
    assert forged.request("GET", "/console/").status_code == 303
    key = session.session_key(TOKEN_SECRET)
    s = session.unseal(good, key, 0.0)
    assert s is not None
    assert session.unseal(good, key, s.expires_at) is None  # expired
    assert session.unseal(good, session.session_key("other"), 0.0) is None


def test_post_without_csrf_is_refused_and_audited(hub: Hub, site: Site) -> None:
    b = Browser(hub)
    b.sign_in(site.tokens[rbac.ENGINEER])
    before = hub.governance.audit_head()
    r = b.request("POST", "/console/dlq/replay", data={"all": "1", "csrf": "stale"})
    assert r.status_code == 403 and "CSRF" in r.text
    rows = hub.governance.audit_rows(after=before[0] if before else 0)
    assert rows[-1].event.action == "console.csrf" and rows[-1].event.actor == USERS[rbac.ENGINEER]


def test_bad_form_input_names_the_field(hub: Hub, site: Site) -> None:
    b = Browser(hub)
    b.sign_in(site.tokens[rbac.REVENUE])
    item = next(w for w in hub.store.work_items("open") if w.kind == "unmapped_charge_code")
    r = b.request(
        "POST",
        f"/console/workitems/{item.id}/resolve",
        data={"csrf": b.csrf(), "set_service_line": "Lab"},
    )
    assert r.status_code == 400 and "revenue_account" in r.text
    r = b.request(
        "POST", f"/console/workitems/{item.id}/resolve", data={"csrf": b.csrf(), "set_color": "red"}
    )
    assert r.status_code == 400 and "color" in r.text
    assert hub.store.work_item(item.id).status == "open"  # type: ignore[union-attr]
    r = b.request("GET", "/console/messages?since=yesterday")
    assert r.status_code == 400 and "since" in r.text


def test_search_by_control_id_and_account_token(hub: Hub, site: Site) -> None:
    b = Browser(hub)
    b.sign_in(site.tokens[rbac.REVENUE])
    page = b.request("GET", f"/console/messages?control_id={UNMAPPED}").text
    assert UNMAPPED in page and POSTED not in page
    token = hub.store.entries()[0].lines[0].dims.account_token
    page = b.request("GET", f"/console/messages?account_token={token}").text
    assert POSTED in page and UNMAPPED not in page
    page = b.request("GET", "/console/messages?status=rejected").text
    assert "BAD1004" in page and POSTED not in page
    page = b.request("GET", f"/console/messages?correlation_id=mllp/{POSTED}").text
    assert POSTED in page


def test_raw_message_view_is_audited_and_pages_carry_no_phi(hub: Hub, site: Site) -> None:
    b = Browser(hub)
    b.sign_in(site.tokens[rbac.AUDITOR])
    trace = b.request("GET", f"/console/messages/mllp/{POSTED}").text
    assert "DOE" not in trace and "JANE" not in trace and "19800101" not in trace
    before = hub.governance.audit_head()
    raw = b.request("GET", f"/console/raw/mllp/{POSTED}").text
    assert "DOE^JANE" in raw
    rows = hub.governance.audit_rows(after=before[0] if before else 0)
    assert [(x.event.action, x.event.target) for x in rows] == [
        ("console.messages.raw", f"mllp/{POSTED}")
    ]
    assert rows[0].event.actor == USERS[rbac.AUDITOR]
    for path in (
        "/console/",
        "/console/queues",
        "/console/dlq",
        "/console/kpis",
        "/console/recon",
        f"/console/messages?control_id={POSTED}",
    ):
        page = b.request("GET", path).text
        assert "DOE" not in page and "5001^" not in page, path


def test_revoked_token_ends_the_session(hub: Hub, site: Site) -> None:
    from isthmus.governance import identity  # noqa: PLC0415

    p = identity.principal("temp", "user", (rbac.READ_ONLY,), 0.0)
    hub.governance.save_principal(p)
    issued = identity.issue(p, (rbac.READ_ONLY,), 0.0)
    hub.governance.add_token(issued.token)
    b = Browser(hub)
    b.sign_in(issued.clear)
    assert b.request("GET", "/console/").status_code == 200
    assert hub.governance.revoke_token(issued.token.id, 1.0)
    r = b.request("GET", "/console/")
    assert r.status_code == 303 and "token%20revoked" in r.headers["location"]


def test_refund_requester_cannot_approve_their_own(hub: Hub, site: Site) -> None:
    from tests.console.site import CREDIT_ACCOUNT  # noqa: PLC0415

    b = Browser(hub)
    b.sign_in(site.tokens[rbac.ADMIN])  # admin may both ask and decide, but not both
    r = b.request(
        "POST",
        "/console/refunds",
        data={
            "csrf": b.csrf(),
            "account": CREDIT_ACCOUNT,
            "amount": "550.00",
            "currency": "USD",
            "reason": "test",
            "idempotency_key": "sod-1",
        },
    )
    assert r.status_code == 303
    rid = next(x.id for x in hub.refunds().list("pending") if x.requested_by == "root")
    r = b.request("POST", f"/console/refunds/{rid}/approve", data={"csrf": b.csrf()})
    assert r.status_code == 403 and "approve" in r.text
    assert hub.refunds().get(rid).status == "pending"
    r = b.request(
        "POST",
        "/console/refunds",
        data={
            "csrf": b.csrf(),
            "account": CREDIT_ACCOUNT,
            "amount": "ten",
            "currency": "USD",
            "reason": "test",
            "idempotency_key": "sod-2",
        },
    )
    assert r.status_code == 400 and "amount" in r.text


def test_refund_items_are_not_resolved_from_the_queue(hub: Hub, site: Site) -> None:
    from tests.console.site import CREDIT_ACCOUNT  # noqa: PLC0415

    b = Browser(hub)
    b.sign_in(site.tokens[rbac.REVENUE])
    # one pending refund on the account (this request, or an earlier test's: one at a time)
    b.request(
        "POST",
        "/console/refunds",
        data={
            "csrf": b.csrf(),
            "account": CREDIT_ACCOUNT,
            "amount": "501.00",
            "currency": "USD",
            "reason": "queue test",
            "idempotency_key": "queue-1",
        },
    )
    item = next(w for w in hub.store.work_items("open") if w.queue == "refunds")
    for act in ("resolve", "resubmit"):
        r = b.request("POST", f"/console/workitems/{item.id}/{act}", data={"csrf": b.csrf()})
        assert r.status_code == 400 and "Refunds page" in r.text
    assert hub.store.work_item(item.id).status == "open"  # type: ignore[union-attr]
    assert "decide on the Refunds page" in b.request("GET", "/console/queues?queue=refunds").text


def test_work_item_actions_are_audited_with_the_actor(hub: Hub, site: Site) -> None:
    b = Browser(hub)
    b.sign_in(site.tokens[rbac.ENGINEER])
    item = next(w for w in hub.store.work_items("open") if w.queue == "revenue-integrity")
    before = hub.governance.audit_head()
    r = b.request(
        "POST",
        f"/console/workitems/{item.id}/assign",
        data={"csrf": b.csrf(), "assignee": "", "queue": "revenue-integrity"},
    )
    assert r.status_code == 303 and "assigned%20to%20eli" in r.headers["location"]
    rows = hub.governance.audit_rows(after=before[0] if before else 0)
    assert [(x.event.actor, x.event.action, x.event.target, x.event.outcome) for x in rows] == [
        ("eli", "console.workitems.assign", f"workitem/{item.id}", "ok")
    ]
    page = b.request("GET", "/console/queues?queue=revenue-integrity").text
    assert re.search(rf'id="item-{item.id}".*?class="assignee">eli<', page, re.S)
