"""The channels API, the FHIR channel's pause and the console's Channels page (issue 18):
roles, the audit trail, the state kept in the store, 404 naming the known channels, 503 +
Retry-After + OperationOutcome from the FHIR API while its channel is paused."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from isthmus.api.http import build_app
from isthmus.app import Hub
from isthmus.console.app import build_console
from isthmus.governance import identity, rbac
from tests.api.admin_hub import admin_hub
from tests.api.fhir_call import call

PATIENT = {
    "resourceType": "Patient",
    "id": "chan-p1",
    "gender": "female",
    "identifier": [
        {"type": {"coding": [{"code": "MR"}]}, "system": "urn:mrn", "value": "MRN-CHAN-1"}
    ],
}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Hub, dict[str, str]]]:
    with admin_hub(tmp_path) as (hub, admin):
        tokens = {"admin": admin}
        now = time.time()
        for name, role in (("eng", rbac.ENGINEER), ("reader", rbac.READ_ONLY)):
            p = identity.principal(name, "user", (role,), now)
            hub.governance.save_principal(p)
            issued = identity.issue(p, (role,), now)
            hub.governance.add_token(issued.token)
            tokens[name] = issued.clear
        yield hub, tokens


def test_list_pause_resume_with_roles_and_audit(site: tuple[Hub, dict[str, str]]) -> None:
    hub, tokens = site
    r = call(hub, "GET", "/api/v1/channels", token=tokens["reader"])
    assert r.status_code == 200
    rows = {c["name"]: c for c in r.json()["channels"]}
    assert set(rows) == {"drop", "fhir", "mllp"} and rows["mllp"]["state"] == "running"
    assert (
        call(
            hub, "POST", "/api/v1/channels/mllp/pause", {"reason": "x"}, token=tokens["reader"]
        ).status_code
        == 403
    )
    r = call(
        hub,
        "POST",
        "/api/v1/channels/mllp/pause",
        {"reason": "EHR cut-over"},
        token=tokens["eng"],
        media="application/json",
    )
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["changed_by"], r.json()["reason"]) == (
        "paused",
        "eng",
        "EHR cut-over",
    )
    assert hub.store.channel_states()["mllp"].state == "paused"
    last = hub.governance.audit_rows()[-1].event
    assert (last.action, last.actor, last.target, last.outcome) == (
        "channels.pause",
        "eng",
        "mllp",
        "ok",
    )
    r = call(hub, "POST", "/api/v1/channels/nope/pause", None, token=tokens["admin"])
    assert r.status_code == 404
    assert "drop, fhir, mllp" in r.json()["reason"]
    assert hub.governance.audit_rows()[-1].event.outcome == "failed"
    r = call(hub, "POST", "/api/v1/channels/mllp/resume", None, token=tokens["admin"])
    assert r.status_code == 200 and r.json()["state"] == "running"
    assert (
        call(
            hub,
            "POST",
            "/api/v1/channels/mllp/pause",
            ["not", "an", "object"],
            token=tokens["admin"],
            media="application/json",
        ).status_code
        == 400
    )


def test_a_paused_fhir_channel_answers_503_and_takes_nothing(
    site: tuple[Hub, dict[str, str]],
) -> None:
    hub, tokens = site
    assert (
        call(hub, "POST", "/api/v1/channels/fhir/pause", None, token=tokens["eng"]).status_code
        == 200
    )
    before = hub.store.counts()["messages"]
    r = call(hub, "POST", "/fhir/Patient", PATIENT, token=tokens["eng"])
    assert r.status_code == 503 and r.headers["retry-after"] == "30"
    assert r.headers["content-type"] == "application/fhir+json"
    issue = r.json()["issue"][0]
    assert r.json()["resourceType"] == "OperationOutcome" and issue["code"] == "transient"
    assert "paused" in issue["diagnostics"]
    assert (
        call(hub, "PUT", "/fhir/Patient/chan-p1", PATIENT, token=tokens["eng"]).status_code == 503
    )
    assert hub.store.counts()["messages"] == before  # nothing taken
    assert call(hub, "GET", "/fhir/metadata", token=tokens["reader"]).status_code == 200
    call(hub, "POST", "/api/v1/channels/fhir/resume", None, token=tokens["eng"])
    # the API reads the states through a one-second cache: a new app reads them now
    assert call(hub, "POST", "/fhir/Patient", PATIENT, token=tokens["eng"]).status_code == 201


class Browser:
    """A cookie-keeping client of the HTTP app with the console (no JavaScript needed)."""

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

    def sign_in(self, token: str) -> None:
        page = self.request("GET", "/console/login").text
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found
        r = self.request(
            "POST",
            "/console/login",
            data={"token": token, "next": "/console/", "csrf": found.group(1)},
        )
        assert r.status_code == 303


def test_console_channels_page_pauses_and_resumes(site: tuple[Hub, dict[str, str]]) -> None:
    hub, tokens = site
    reader = Browser(hub)
    reader.sign_in(tokens["reader"])
    page = reader.request("GET", "/console/channels")
    assert page.status_code == 200 and 'id="channel-mllp"' in page.text
    assert 'href="/console/channels"' in page.text  # in the navigation
    assert "/channels/mllp/pause" not in page.text  # no buttons for a reader
    eng = Browser(hub)
    eng.sign_in(tokens["eng"])
    page = eng.request("GET", "/console/channels").text
    assert 'action="/console/channels/mllp/pause"' in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    bad = eng.request("POST", "/console/channels/mllp/pause", data={"csrf": "forged"})
    assert bad.status_code == 403 and "mllp" not in hub.store.channel_states()
    r = eng.request(
        "POST", "/console/channels/mllp/pause", data={"csrf": csrf.group(1), "reason": "EHR down"}
    )
    assert r.status_code == 303 and "channel+mllp+paused" in r.headers["location"].replace(
        "%20", "+"
    )
    st = hub.store.channel_states()["mllp"]
    assert (st.state, st.by, st.reason) == ("paused", "eng", "EHR down")
    last = hub.governance.audit_rows()[-1].event
    assert (last.action, last.outcome) == ("console.channels.pause", "ok")
    page = eng.request("GET", "/console/channels").text
    assert 'action="/console/channels/mllp/resume"' in page and "EHR down" in page
    r = eng.request("POST", "/console/channels/mllp/resume", data={"csrf": csrf.group(1)})
    assert r.status_code == 303 and hub.store.channel_states()["mllp"].state == "running"
    assert (
        reader.request(
            "POST", "/console/channels/mllp/pause", data={"csrf": csrf.group(1)}
        ).status_code
        == 403
    )
