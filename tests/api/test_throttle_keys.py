"""The failed-authentication throttle keys on what the caller proved (issue 16, item 3):
nobody is locked out by someone else's bad tokens, and X-Forwarded-For counts only from a
configured proxy, for the throttle and the audit trail alike."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from isthmus.api.clients import client_address
from isthmus.api.http import build_app, serve_http
from isthmus.app import Hub
from isthmus.config import ConfigError, load_settings
from isthmus.governance import identity, rbac
from isthmus.governance.throttle import FailureThrottle

NOW = time.time()
TRIES = FailureThrottle.max_failures


@dataclasses.dataclass
class Site:
    hub: Hub
    victim: str  # a valid admin token
    revoked: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    hub = Hub.open(load_settings(None, data_dir=tmp_path_factory.mktemp("keys")))
    try:
        admin = identity.principal("root", "user", (rbac.ADMIN,), NOW)
        issued = identity.issue(admin, (rbac.ADMIN,), NOW)
        assert hub.governance.initialize(admin, issued.token)
        gone = identity.issue(admin, (rbac.ADMIN,), NOW)
        hub.governance.add_token(gone.token)
        assert hub.governance.revoke_token(gone.token.id, NOW)
        yield Site(hub, issued.clear, gone.clear)
    finally:
        hub.close()


def _get(app: object, token: str, client: str, path: str = "/metrics") -> httpx.Response:
    async def go() -> httpx.Response:
        t = httpx.ASGITransport(app=app, client=(client, 40000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=t, base_url="http://hub") as c:
            return await c.get(path, headers={"Authorization": f"Bearer {token}"})

    return asyncio.run(go())


def _forged(clear: str) -> str:
    """The victim's public token id in front of a made-up secret."""
    token_id = clear.split("_")[1]
    return f"{identity.PREFIX}{token_id}_{'x' * 43}"


def test_bad_tokens_with_a_victims_token_id_do_not_lock_the_victim_out(site: Site) -> None:
    app = build_app(site.hub)
    forged = _forged(site.victim)
    for i in range(3 * TRIES):  # from many addresses, more than enough to trip any key
        assert _get(app, forged, f"198.51.100.{i}").status_code == 401
    assert _get(app, site.victim, "203.0.113.77").status_code == 200
    assert _get(app, site.victim, "198.51.100.1").status_code == 200


def test_one_bad_client_does_not_lock_out_valid_tokens_behind_its_address(site: Site) -> None:
    app = build_app(site.hub)
    nat = "192.0.2.200"
    codes = [_get(app, "isth_000000000000_" + "y" * 43, nat).status_code for _ in range(TRIES + 2)]
    assert codes == [401] * TRIES + [429, 429]
    assert _get(app, site.victim, nat).status_code == 200  # a valid token always passes
    assert _get(app, "not-a-token", nat).status_code == 429  # the prober stays slowed


def test_a_proven_but_revoked_token_is_throttled_by_its_id_from_anywhere(site: Site) -> None:
    app = build_app(site.hub)
    codes = [_get(app, site.revoked, f"198.51.100.{100 + i}").status_code for i in range(TRIES + 1)]
    assert codes == [401] * TRIES + [429]
    assert _get(app, site.victim, "198.51.100.100").status_code == 200


@pytest.mark.parametrize(
    ("peer", "hops", "proxies", "client"),
    [
        ("127.0.0.1", ["203.0.113.9"], [], "127.0.0.1"),  # no proxy configured: the peer
        ("10.0.0.5", ["203.0.113.9"], ["10.0.0.0/8"], "203.0.113.9"),
        ("10.0.0.5", ["6.6.6.6, 203.0.113.9"], ["10.0.0.0/8"], "203.0.113.9"),  # forged left
        ("10.0.0.5", ["203.0.113.9, 10.0.0.7"], ["10.0.0.0/8"], "203.0.113.9"),  # two proxies
        ("10.0.0.5", ["garbage"], ["10.0.0.0/8"], "10.0.0.5"),
        ("198.51.100.1", ["203.0.113.9"], ["10.0.0.0/8"], "198.51.100.1"),  # not a proxy
    ],
)
def test_client_address_believes_only_configured_proxies(
    peer: str, hops: list[str], proxies: list[str], client: str
) -> None:
    import ipaddress  # noqa: PLC0415

    nets = [ipaddress.ip_network(p) for p in proxies]
    assert client_address(peer, hops, nets) == client


def test_trusted_proxies_must_be_addresses(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text('[api]\ntrusted_proxies = ["10.0.0.0/8", "proxy.example"]\n')
    with pytest.raises(ConfigError, match=r"proxy\.example"):
        load_settings(conf, data_dir=tmp_path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(site: Site) -> Iterator[tuple[str, Hub]]:
    """`serve`'s HTTP server (uvicorn, as configured by serve_http) on the loopback."""
    port = _free_port()
    loop = asyncio.new_event_loop()
    task: list[asyncio.Task[None]] = []
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        task.append(loop.create_task(serve_http(site.hub, {}, "127.0.0.1", port)))
        ready.set()
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(task[0])

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(5)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(url + "/health", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    try:
        yield url, site.hub
    finally:
        loop.call_soon_threadsafe(task[0].cancel)
        thread.join(10)
        loop.close()


def test_x_forwarded_for_from_loopback_is_not_believed_by_default(served: tuple[str, Hub]) -> None:
    url, hub = served
    before = hub.governance.audit_head()
    bad = "isth_111111111111_" + "z" * 43
    codes = [
        httpx.get(
            url + "/metrics",
            timeout=5,
            headers={"Authorization": f"Bearer {bad}", "X-Forwarded-For": f"203.0.113.{i}"},
        ).status_code
        for i in range(TRIES + 1)
    ]
    assert codes == [401] * TRIES + [429]  # one client, whatever it claims to be
    rows = hub.governance.audit_rows(after=before[0] if before else 0)
    assert rows and {json.loads(r.event.detail)["client"] for r in rows} == {"127.0.0.1"}


def test_a_configured_proxy_names_the_client_for_throttle_and_audit(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text('[api]\ntrusted_proxies = ["10.0.0.0/8"]\n')
    hub = Hub.open(load_settings(conf, data_dir=tmp_path / "data"))
    try:
        admin = identity.principal("root", "user", (rbac.ADMIN,), NOW)
        assert hub.governance.initialize(admin, identity.issue(admin, (rbac.ADMIN,), NOW).token)
        app = build_app(hub)

        async def go(forwarded: str) -> int:
            t = httpx.ASGITransport(app=app, client=("10.0.0.5", 40000))
            async with httpx.AsyncClient(transport=t, base_url="http://hub") as c:
                r = await c.get(
                    "/metrics",
                    headers={"Authorization": "Bearer nope", "X-Forwarded-For": forwarded},
                )
                return r.status_code

        codes = [asyncio.run(go(f"6.6.6.6, 203.0.113.{i}")) for i in range(TRIES + 1)]
        assert codes == [401] * (TRIES + 1)  # each client behind the proxy on its own
        codes = [asyncio.run(go("203.0.113.250")) for _ in range(TRIES + 1)]
        assert codes == [401] * TRIES + [429]  # ... and one of them throttled alone
        clients = {
            json.loads(r.event.detail)["client"]
            for r in hub.governance.audit_rows()
            if r.event.action.startswith("http.")
        }
        assert "203.0.113.3" in clients and "10.0.0.5" not in clients
        assert "6.6.6.6" not in clients
    finally:
        hub.close()
