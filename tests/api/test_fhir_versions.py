"""Issue 19 item 7, FHIR: absolute `fullUrl` and `Location`, `ETag` and `meta.versionId`
with `If-Match` (412 on another version), the current version on read, and unknown search
parameters ignored unless `Prefer: handling=strict`, so a client's `_count=0` count
(fhirpy's `.count()`: `_count=0&_totalMethod=count`) gets the total.

In process over ASGI (httpx), and with fhirclient against `serve`'s own HTTP server.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhirclient.models.account import Account as FcAccount
from fhirclient.models.bundle import Bundle as FcBundle
from fhirclient.models.operationoutcome import OperationOutcome
from fhirclient.models.patient import Patient as FcPatient
from fhirclient.server import FHIRServer

from isthmus.api.fhir import version_id
from isthmus.api.http import build_app, serve_http
from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.governance import identity, rbac
from tests.api.admin_hub import admin_hub
from tests.e2e.helpers import free_port
from tests.support import wait_until

NOW = 1_700_000_000.0
MEDIA = "application/fhir+json"
BASE = "http://hub.test/fhir"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Hub, str]]:
    with admin_hub(tmp_path / "data") as found:
        yield found


def _call(
    site: tuple[Hub, str],
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    hub, token = site

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(hub, {}), client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as c:
            return await c.request(
                method,
                path,
                json=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": MEDIA,
                    **(headers or {}),
                },
            )

    return asyncio.run(go())


def _patient(gender: str = "female", pid: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "gender": gender,
        "identifier": [{"system": "urn:oid:1.2.3", "value": f"MRN-{pid}"}],
    }


def _account(aid: str, number: str) -> dict[str, Any]:
    return {
        "resourceType": "Account",
        "id": aid,
        "status": "active",
        "identifier": [{"value": number}],
        "subject": [{"reference": "Patient/p1"}],
    }


def test_create_answers_absolute_location_etag_and_version(site: tuple[Hub, str]) -> None:
    r = _call(site, "POST", "/fhir/Patient", _patient())
    assert r.status_code == 201, r.text
    vid = r.json()["meta"]["versionId"]
    assert r.headers["location"] == f"{BASE}/Patient/p1/_history/{vid}"
    assert r.headers["etag"] == f'W/"{vid}"'
    again = _call(site, "POST", "/fhir/Patient", _patient())  # identical resend
    assert again.status_code == 200 and again.headers["etag"] == r.headers["etag"]
    read = _call(site, "GET", "/fhir/Patient/p1")
    assert read.headers["etag"] == f'W/"{vid}"'
    meta = FcPatient(read.json()).meta
    assert meta.versionId == vid and meta.lastUpdated is not None


def test_update_makes_a_new_current_version_and_if_match_guards_it(site: tuple[Hub, str]) -> None:
    v1 = _call(site, "PUT", "/fhir/Patient/p1", _patient()).headers["etag"]
    changed = _call(site, "PUT", "/fhir/Patient/p1", _patient("male"), {"If-Match": v1})
    assert changed.status_code == 200, changed.text
    v2 = changed.headers["etag"]
    assert v2 != v1 and changed.json()["gender"] == "male"
    read = _call(site, "GET", "/fhir/Patient/p1")  # the current version, not the first
    assert read.json()["gender"] == "male" and read.headers["etag"] == v2
    # an update over the old version is refused and changes nothing
    stale = _call(site, "PUT", "/fhir/Patient/p1", _patient("other"), {"If-Match": v1})
    assert stale.status_code == 412
    [issue] = OperationOutcome(stale.json()).issue
    assert issue.code == "conflict" and issue.expression == ["If-Match"]
    assert _call(site, "GET", "/fhir/Patient/p1").json()["gender"] == "male"
    # the strong form and the bare version id are read too
    bare = v2.removeprefix("W/")
    ok = _call(site, "PUT", "/fhir/Patient/p1", _patient("female"), {"If-Match": bare})
    assert ok.status_code == 200
    # back to the first content: a new current version, not a silent no-op
    assert _call(site, "GET", "/fhir/Patient/p1").json()["gender"] == "female"
    # If-Match on a resource that does not exist
    assert (
        _call(site, "PUT", "/fhir/Patient/zz", _patient(pid="zz"), {"If-Match": v1}).status_code
        == 412
    )


def test_search_has_absolute_full_urls_a_total_and_ignores_unknown_parameters(
    site: tuple[Hub, str],
) -> None:
    for i in range(3):
        assert (
            _call(site, "POST", "/fhir/Account", _account(f"a{i}", f"ACC-{i}")).status_code == 201
        )
    r = _call(site, "GET", "/fhir/Account?patient=Patient/p1&_count=2&_sort=-date&foo=1")
    assert r.status_code == 200, r.text
    bundle = FcBundle(r.json())
    assert bundle.total == 3 and len(bundle.entry) == 2
    assert [e.fullUrl for e in bundle.entry] == [f"{BASE}/Account/a0", f"{BASE}/Account/a1"]
    assert all(e.resource.meta.versionId for e in bundle.entry)
    self_link, next_link = bundle.link  # a third match remains: a `next` page (paging)
    assert (self_link.relation, next_link.relation) == ("self", "next")
    assert self_link.url == f"{BASE}/Account?patient=Patient/p1&_count=2"  # what was applied
    # fhirpy's .count(): _count=0 and its own _totalMethod
    count = _call(site, "GET", "/fhir/Account?_count=0&_totalMethod=count").json()
    assert count["total"] == 3 and count["entry"] == []
    assert "total" not in _call(site, "GET", "/fhir/Account?_total=none").json()
    # strict handling: the unknown parameter is a 400 naming it
    strict = _call(site, "GET", "/fhir/Account?foo=1", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400
    assert OperationOutcome(strict.json()).issue[0].expression == ["foo"]
    lenient = _call(site, "GET", "/fhir/Account?foo=1", headers={"Prefer": "handling=lenient"})
    assert lenient.status_code == 200
    assert _call(site, "GET", "/fhir/Account?_total=maybe").status_code == 400


def test_search_shows_the_current_version(site: tuple[Hub, str]) -> None:
    assert _call(site, "PUT", "/fhir/Account/a1", _account("a1", "ACC-1")).status_code == 201
    closed = {**_account("a1", "ACC-1"), "status": "inactive"}
    assert _call(site, "PUT", "/fhir/Account/a1", closed).status_code == 200
    [entry] = _call(site, "GET", "/fhir/Account?identifier=ACC-1").json()["entry"]
    assert entry["resource"]["status"] == "inactive"


def test_batch_and_transaction_locations_are_absolute(site: tuple[Hub, str]) -> None:
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"resource": _patient(), "request": {"method": "PUT", "url": "Patient/p1"}}],
    }
    r = _call(site, "POST", "/fhir", batch)
    assert r.status_code == 200, r.text
    [entry] = r.json()["entry"]
    assert entry["response"]["location"].startswith(f"{BASE}/Patient/p1/_history/")
    tx = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": _patient(pid="p2"), "request": {"method": "PUT", "url": "Patient/p2"}}
        ],
    }
    r = _call(site, "POST", "/fhir", tx)
    assert r.status_code == 200, r.text
    assert all(
        e["response"]["location"].startswith(f"{BASE}/")
        for e in r.json()["entry"]
        if e["response"].get("location")
    )


def test_a_trusted_proxy_makes_the_urls_https(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text('[api]\ntrusted_proxies = ["127.0.0.1/32"]\n')
    hub = Hub.open(load_settings(conf, data_dir=tmp_path / "data"))
    try:
        admin = identity.principal("root", "user", (rbac.ADMIN,), NOW)
        issued = identity.issue(admin, (rbac.ADMIN,), NOW)
        assert hub.governance.initialize(admin, issued.token)
        r = _call(
            (hub, issued.clear),
            "POST",
            "/fhir/Patient",
            _patient(),
            {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.5"},
        )
        assert r.headers["location"].startswith("https://hub.test/fhir/Patient/p1/_history/")
    finally:
        hub.close()


def test_version_id_is_the_inbox_history_key() -> None:
    assert version_id(b'{"a":1}') == "015abd7f5cc57a2d"


@pytest.fixture
def served(site: tuple[Hub, str]) -> Iterator[str]:
    """`serve`'s HTTP server (uvicorn as serve_http configures it) on the loopback."""
    port = free_port()
    loop = asyncio.new_event_loop()
    task: list[asyncio.Task[None]] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        task.append(loop.create_task(serve_http(site[0], {}, "127.0.0.1", port)))
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(task[0])

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(url + "/health", timeout=1).status_code in (200, 503)
        except httpx.TransportError:
            return False

    wait_until(up, what="serve's HTTP server to answer")
    try:
        yield url
    finally:
        loop.call_soon_threadsafe(task[0].cancel)
        thread.join(10)
        loop.close()


def test_fhirclient_reads_updates_and_searches_against_the_real_server(
    site: tuple[Hub, str], served: str
) -> None:
    server = FHIRServer(None, base_uri=f"{served}/fhir")
    server.session.headers["Authorization"] = f"Bearer {site[1]}"
    try:
        p = FcPatient(_patient())
        p.update(server)  # PUT
        acct = FcAccount(_account("a7", "ACC-7"))
        acct.update(server)
        found = FcPatient.read("p1", server)
        assert found.meta.versionId and found.gender == "female"
        found.gender = "male"
        found.update(server)  # the read copy, meta and all, back as the next version
        assert FcPatient.read("p1", server).gender == "male"
        [hit] = list(FcAccount.where(struct={"identifier": "ACC-7"}).perform_resources_iter(server))
        assert hit.id == "a7"
        raw = server.request_json("Account?_count=0&_totalMethod=count")
        assert raw["total"] == 1
        entry = server.request_json("Account?identifier=ACC-7")["entry"][0]
        assert entry["fullUrl"] == f"{served}/fhir/Account/a7"
    finally:
        server.session.close()


def test_fhirclient_follows_the_next_links_against_the_real_server(
    site: tuple[Hub, str], served: str
) -> None:
    """fhirclient's paging (`perform_iter`: the Bundle's `next` link until there is none)
    over `serve`'s HTTP server: every match once, in order, pages of `_count`."""
    ids = [f"pg{i:02d}" for i in range(7)]
    for aid in ids:
        assert (
            _call(site, "PUT", f"/fhir/Account/{aid}", _account(aid, f"ACC-{aid}")).status_code
            == 201
        )
    server = FHIRServer(None, base_uri=f"{served}/fhir")
    server.session.headers["Authorization"] = f"Bearer {site[1]}"
    try:
        search = FcAccount.where(struct={"patient": "Patient/p1", "_count": "3"})
        pages = list(search.perform_iter(server))
        assert [len(b.entry or []) for b in pages] == [3, 3, 1]
        assert all(b.total == len(ids) for b in pages)
        assert [e.resource.id for b in pages for e in b.entry or []] == ids
        nexts = [lk.url for b in pages for lk in b.link or [] if lk.relation == "next"]
        assert len(nexts) == 2 and all(u.startswith(f"{served}/fhir/Account?") for u in nexts)
    finally:
        server.session.close()
