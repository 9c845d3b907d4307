"""With [hub] tls_cert/tls_key, the HTTP API serves HTTPS (TLS 1.2+) and refuses plain HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path

import httpx
import trustme

from isthmus.api.http import serve_http
from isthmus.app import Hub
from isthmus.config import load_settings
from tests.e2e.helpers import free_port
from tests.support import await_until, listening


def test_https_with_the_configured_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "hub.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "hub.key"))
    conf = tmp_path / "hub.toml"
    conf.write_text(
        f'[hub]\ntls_cert = "{tmp_path / "hub.pem"}"\ntls_key = "{tmp_path / "hub.key"}"\n'
    )
    hub = Hub.open(load_settings(conf, data_dir=tmp_path / "data"))
    port = free_port()
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def go() -> tuple[int, int, str]:
        task = asyncio.create_task(serve_http(hub, {}, "127.0.0.1", port))
        try:
            await await_until(
                lambda: listening("127.0.0.1", port),
                what="the HTTPS listener to accept connections",
            )
            async with httpx.AsyncClient(verify=client_ctx) as c:
                ok = await c.get(f"https://127.0.0.1:{port}/health")
                guarded = await c.get(f"https://127.0.0.1:{port}/metrics")
            async with httpx.AsyncClient() as plain:
                try:
                    r = await plain.get(f"http://127.0.0.1:{port}/health")
                    refused = f"answered {r.status_code}"
                except httpx.HTTPError as exc:
                    refused = type(exc).__name__
            return ok.status_code, guarded.status_code, refused
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    try:
        health, metrics, plain = asyncio.run(go())
    finally:
        hub.close()
    assert health == 200
    assert metrics == 200  # loopback read on a hub not yet initialized
    assert not plain.startswith("answered 2"), plain
