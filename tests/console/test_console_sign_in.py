"""Console sign-in and sign-out (issue 16, item 6): signing out ends the session on the
server, failed sign-ins are throttled like API tokens, and the sign-in form is CSRF- and
Origin-checked."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from isthmus.app import Hub
from isthmus.governance import identity, rbac
from isthmus.governance.throttle import FailureThrottle
from tests.console.site import POSTED, Site
from tests.console.test_console_http import Browser


@pytest.fixture(scope="module")
def hub(site: Site) -> Iterator[Hub]:
    h = Hub.open(site.settings())
    try:
        yield h
    finally:
        h.close()


def _form_csrf(b: Browser) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', b.request("GET", "/console/login").text)
    assert found
    return found.group(1)


def test_sign_out_ends_the_session_on_the_server(hub: Hub, site: Site) -> None:
    b = Browser(hub)
    assert b.sign_in(site.tokens[rbac.AUDITOR]).status_code == 303
    raw = f"/console/raw/mllp/{POSTED}"
    assert b.request("GET", raw).status_code == 200
    kept = Browser(hub)  # a copy of the cookie, as a thief would keep it
    kept.cookies.update(b.cookies)
    csrf = b.csrf()
    assert b.request("POST", "/console/logout", data={"csrf": csrf}).status_code == 303
    r = kept.request("GET", raw)
    assert r.status_code == 303 and "signed%20out" in r.headers["location"]
    assert any(x.event.action == "console.logout" for x in hub.governance.audit_rows())


def test_sign_out_needs_the_csrf_token(hub: Hub, site: Site) -> None:
    b = Browser(hub)
    b.sign_in(site.tokens[rbac.AUDITOR])
    assert b.request("POST", "/console/logout", data={"csrf": "forged"}).status_code == 403
    assert b.request("GET", "/console/").status_code == 200


def test_a_session_record_is_not_a_bearer_token_nor_an_admin_token(hub: Hub, site: Site) -> None:
    b = Browser(hub)
    b.sign_in(site.tokens[rbac.ADMIN])
    records = [t for t in hub.governance.tokens() if t.created_by.startswith(identity.SESSION)]
    assert records and all(t.scopes == () for t in records)
    assert (
        identity.refusal(records[-1], hub.governance.principal(records[-1].principal), 0.0)
        is not None
    )


def test_failed_sign_ins_are_throttled_per_address_not_per_valid_token(
    hub: Hub, site: Site
) -> None:
    b = Browser(hub)  # one console app: its throttle lives as long as it does
    codes = [
        b.sign_in("isth_nope_" + "B" * 40).status_code
        for _ in range(FailureThrottle.max_failures + 1)
    ]
    assert codes == [401] * FailureThrottle.max_failures + [429]
    r = b.sign_in("isth_nope_" + "B" * 40)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert b.sign_in(site.tokens[rbac.REVENUE]).status_code == 303  # a valid token passes
    assert any(x.event.action == "console.throttled" for x in hub.governance.audit_rows())


def test_sign_in_without_the_forms_csrf_token_is_refused(hub: Hub, site: Site) -> None:
    b = Browser(hub)
    token = site.tokens[rbac.REVENUE]
    r = b.request("POST", "/console/login", data={"token": token, "next": "/console/"})
    assert r.status_code == 403 and "isthmus_console=" not in r.headers.get("set-cookie", "")
    csrf = _form_csrf(b)
    other = Browser(hub)  # the token of another browser's form (login CSRF)
    r = other.request("POST", "/console/login", data={"token": token, "csrf": csrf})
    assert r.status_code == 403
    assert (
        b.request("POST", "/console/login", data={"token": token, "csrf": csrf}).status_code == 303
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Referer": "https://evil.example/page"},
        {"Origin": "http://hub:8080"},
    ],
)
def test_sign_in_from_another_origin_is_refused(
    hub: Hub, site: Site, headers: dict[str, str]
) -> None:
    b = Browser(hub)
    csrf = _form_csrf(b)
    r = b.request(
        "POST",
        "/console/login",
        headers=headers,
        data={"token": site.tokens[rbac.REVENUE], "csrf": csrf},
    )
    assert r.status_code == 403 and "isthmus_console=" not in r.headers.get("set-cookie", "")
    r = b.request(
        "POST",
        "/console/login",
        headers={"Origin": "http://hub"},
        data={"token": site.tokens[rbac.REVENUE], "csrf": csrf},
    )
    assert r.status_code == 303
