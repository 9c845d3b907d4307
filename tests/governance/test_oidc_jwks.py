"""[oidc] jwks_url: the provider's keys fetched over HTTP from a JWKS server the test runs on
127.0.0.1, kept, refreshed on an unknown kid (rate-limited) and on age, and kept in use
while the provider cannot be reached (issue 16, item 10)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from isthmus.api.http import build_app
from isthmus.app import Hub
from isthmus.config import ConfigError, load_settings
from isthmus.governance import identity, oidc, rbac
from tests.governance.test_oidc import AUD, ISS, _jwk, claims, jwt

K1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
K2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Provider:
    """A JWKS endpoint whose key set the test changes, counting its requests."""

    def __init__(self) -> None:
        self.keys: list[dict[str, str]] = [_jwk(K1, "k1")]
        self.hits = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.hits += 1
                body = json.dumps({"keys": provider.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/certs"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider() -> Iterator[Provider]:
    p = Provider()
    try:
        yield p
    finally:
        p.stop()


def _settings(url: str, **over: float) -> oidc.OidcSettings:
    s = oidc.parse({"issuer": ISS, "audience": AUD, "jwks_url": url, **over})
    assert s is not None
    return s


def test_keys_come_from_the_url_and_rotation_is_picked_up(provider: Provider) -> None:
    s = _settings(provider.url, jwks_min_refresh_s=30)
    t0 = 1000.0
    assert oidc.verify(jwt(claims(), key=K1, kid="k1"), s, t0).subject == "jdoe@hospital.org"
    assert provider.hits == 1
    oidc.verify(jwt(claims(), key=K1, kid="k1"), s, t0 + 1)
    assert provider.hits == 1  # cached
    provider.keys = [_jwk(K1, "k1"), _jwk(K2, "k2")]  # the provider rotates
    assert oidc.verify(jwt(claims(), key=K2, kid="k2"), s, t0 + 40).roles
    assert provider.hits == 2
    # made-up kids refresh at most once per jwks_min_refresh_s
    for i in range(5):
        with pytest.raises(oidc.JwtRejected, match="unknown key"):
            oidc.verify(jwt(claims(), key=K2, kid=f"bogus{i}"), s, t0 + 41 + i)
    assert provider.hits == 2


def test_keys_are_refetched_after_their_max_age(provider: Provider) -> None:
    s = _settings(provider.url, jwks_max_age_s=600, jwks_min_refresh_s=30)
    oidc.verify(jwt(claims(), key=K1, kid="k1"), s, 1000.0)
    provider.keys = [_jwk(K2, "k2")]  # k1 withdrawn
    oidc.verify(jwt(claims(), key=K1, kid="k1"), s, 1500.0)  # still young: still held
    with pytest.raises(oidc.JwtRejected, match="unknown key"):
        oidc.verify(jwt(claims(), key=K1, kid="k1"), s, 1700.0)
    assert provider.hits == 2


def test_an_unreachable_provider_keeps_the_cached_keys(provider: Provider) -> None:
    s = _settings(provider.url, jwks_max_age_s=60, jwks_min_refresh_s=0)
    oidc.verify(jwt(claims(), key=K1, kid="k1"), s, 1000.0)
    provider.stop()
    # older than max age, provider down: the held key still verifies
    assert oidc.verify(jwt(claims(), key=K1, kid="k1"), s, 2000.0).roles
    with pytest.raises(oidc.JwtRejected, match="unknown key"):
        oidc.verify(jwt(claims(), key=K2, kid="k2"), s, 2001.0)


def test_jwks_url_and_file_over_http(provider: Provider, tmp_path: Path) -> None:
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [_jwk(K2, "file-key")]}))
    conf = tmp_path / "hub.toml"
    conf.write_text(
        f'[oidc]\nissuer = "{ISS}"\naudience = "{AUD}"\n'
        f'jwks_url = "{provider.url}"\njwks_file = "{tmp_path / "jwks.json"}"\n'
        "jwks_min_refresh_s = 0\n"
    )
    hub = Hub.open(load_settings(conf, data_dir=tmp_path / "data"))
    try:
        admin = identity.principal("root", "user", (rbac.ADMIN,), time.time())
        assert hub.governance.initialize(
            admin, identity.issue(admin, (rbac.ADMIN,), time.time()).token
        )
        app = build_app(hub)

        def get(token: str) -> httpx.Response:
            async def go() -> httpx.Response:
                t = httpx.ASGITransport(app=app, client=("192.0.2.9", 1))
                async with httpx.AsyncClient(transport=t, base_url="http://hub") as c:
                    return await c.get("/metrics", headers={"Authorization": f"Bearer {token}"})

            return asyncio.run(go())

        assert get(jwt(claims(), key=K1, kid="k1")).status_code == 200  # from the URL
        assert get(jwt(claims(), key=K2, kid="file-key")).status_code == 200  # from the file
        provider.stop()
        assert get(jwt(claims(), key=K1, kid="k1")).status_code == 200
        r = get(jwt(claims(), key=K2, kid="new"))
        assert r.status_code == 401 and "unknown key" in r.json()["reason"]
    finally:
        hub.close()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('jwks_url = "http://idp.example.org/certs"', "https"),
        (
            'jwks_url = "https://idp.example.org/certs"\nalgorithms = ["HS256"]',
            "unknown key oidc.algorithms",
        ),
    ],
)
def test_bad_jwks_urls_are_refused_at_load(tmp_path: Path, table: str, message: str) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text(f'[oidc]\nissuer = "x"\naudience = "y"\n{table}\n')
    with pytest.raises(ConfigError, match=message):
        load_settings(conf, data_dir=tmp_path)
