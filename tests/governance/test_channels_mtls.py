"""Per-channel TLS and mutual TLS (issue 18): a channel with a certificate and client CA of
its own requires a client certificate from that CA on its port only, while the hub's
channel "mllp" (no TLS configured for it) stays plain on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import trustme

from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.connectors.mllp_client import send_messages
from isthmus.runtime import start
from tests.flows.helpers import adt
from tests.governance.test_mtls import _client, _refused


def test_a_channel_with_its_own_client_ca_requires_its_certificates(tmp_path: Path) -> None:
    server_ca, lab_ca = trustme.CA(), trustme.CA()
    cert = server_ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "lab.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "lab.key"))
    lab_ca.cert_pem.write_to_path(str(tmp_path / "lab-clients.pem"))
    conf = tmp_path / "hub.toml"
    conf.write_text(
        f'[channels.lab]\nport = 0\ntls_cert = "{tmp_path / "lab.pem"}"\n'
        f'tls_key = "{tmp_path / "lab.key"}"\n'
        f'tls_client_ca = "{tmp_path / "lab-clients.pem"}"\n'
    )
    hub = Hub.open(load_settings(conf, data_dir=tmp_path / "data"))

    async def go() -> tuple[str, str, list[bytes], list[bytes]]:
        run = await start(hub, role="listener", mllp_port=0)
        try:
            lab, main = run.mllps["lab"].port, run.mllps["mllp"].port
            none = await _refused(lab, _client(server_ca, None))
            stranger = await _refused(lab, _client(server_ca, trustme.CA()))
            ok = await send_messages(
                "127.0.0.1", lab, [adt("CH-MTLS-1", "T1")], ssl_context=_client(server_ca, lab_ca)
            )
            plain = await send_messages("127.0.0.1", main, [adt("CH-PLAIN-1", "T2")])
            return none, stranger, list(ok.acks), list(plain.acks)
        finally:
            await run.stop()

    try:
        none, stranger, ok, plain = asyncio.run(go())
    finally:
        hub.close()
    assert not none.startswith("answered"), none
    assert not stranger.startswith("answered"), stranger
    assert b"MSA|AA|CH-MTLS-1" in ok[0]
    assert b"MSA|AA|CH-PLAIN-1" in plain[0]
