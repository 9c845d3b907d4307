"""Transport defaults: mutual TLS for MLLP clients ([tls] client_ca) through the hub's own
start-up, and listeners on 127.0.0.1 unless the config says otherwise."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
import trustme

from isthmus.app import Hub
from isthmus.config import ConfigError, Settings, load_settings
from isthmus.connectors.mllp_client import send_messages
from isthmus.runtime import start
from tests.flows.helpers import adt


def _site(tmp_path: Path) -> tuple[Path, trustme.CA, trustme.CA]:
    server_ca, client_ca = trustme.CA(), trustme.CA()
    cert = server_ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "hub.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "hub.key"))
    client_ca.cert_pem.write_to_path(str(tmp_path / "clients.pem"))
    conf = tmp_path / "hub.toml"
    conf.write_text(
        f'[hub]\ntls_cert = "{tmp_path / "hub.pem"}"\n'
        f'tls_key = "{tmp_path / "hub.key"}"\n'
        f'[tls]\nclient_ca = "{tmp_path / "clients.pem"}"\n'
    )
    return conf, server_ca, client_ca


def _client(server_ca: trustme.CA, issuer: trustme.CA | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    server_ca.configure_trust(ctx)
    if issuer is not None:
        issuer.issue_cert("lab-feed@example.org").configure_cert(ctx)
    return ctx


async def _refused(port: int, ctx: ssl.SSLContext) -> str:
    """What a client without an acceptable certificate gets: never an ACK."""
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1"
        )
        writer.write(b"\x0b" + adt("MTLS-NO", "M9") + b"\x1c\r")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(4096), 10)
        writer.close()
        return f"answered {data!r}" if data else "closed"
    except (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError) as exc:
        return type(exc).__name__


def test_mllp_requires_a_client_certificate_from_the_configured_ca(tmp_path: Path) -> None:
    conf, server_ca, client_ca = _site(tmp_path)
    settings = load_settings(conf, data_dir=tmp_path / "data")
    assert settings.tls_client_ca == tmp_path / "clients.pem"
    hub = Hub.open(settings)

    async def go() -> tuple[str, str, list[bytes]]:
        run = await start(hub, role="listener", mllp_port=0)
        try:
            assert run.mllp is not None
            port = run.mllp.port
            none = await _refused(port, _client(server_ca, None))
            stranger = await _refused(port, _client(server_ca, trustme.CA()))
            report = await send_messages(
                "127.0.0.1", port, [adt("MTLS-OK", "M9")], ssl_context=_client(server_ca, client_ca)
            )
            return none, stranger, list(report.acks)
        finally:
            await run.stop()

    try:
        none, stranger, acks = asyncio.run(go())
    finally:
        hub.close()
    assert not none.startswith("answered"), none
    assert not stranger.startswith("answered"), stranger
    assert len(acks) == 1 and b"MSA|AA|MTLS-OK" in acks[0]


def test_client_ca_without_a_server_certificate_is_a_config_error(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text('[tls]\nclient_ca = "/etc/isthmus/clients.pem"\n')
    with pytest.raises(ConfigError, match="client_ca needs"):
        load_settings(conf, data_dir=tmp_path)


def test_listeners_bind_to_loopback_by_default(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path, env={})
    assert settings.host == Settings.host == "127.0.0.1"
    assert settings.tls_client_ca is None
    hub = Hub.open(settings)

    async def go() -> str:
        run = await start(hub, role="listener", mllp_port=0)
        try:
            assert run.mllp is not None and run.mllp._server is not None
            return str(run.mllp._server.sockets[0].getsockname()[0])
        finally:
            await run.stop()

    try:
        assert asyncio.run(go()) == "127.0.0.1"
    finally:
        hub.close()
