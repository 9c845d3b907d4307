"""The `mllp` destination against python-hl7's asyncio MLLP server answering real ACKs.

The receiver (hl7.mllp.start_hl7_server) runs on its own event loop in a thread on a
loopback port, records each message's MSH-10 and answers `msg.create_ack()` (AA), or an AE
with an ERR segment whose free text echoes patient data, for control ids starting "R-".
Covers the destination contract, ACK reading (AE/AR with ERR codes, a stray ACK, no
answer), TLS with a client certificate, and the fault test: the receiver is down for a
while and comes back; nothing is lost, order holds, and duplicates are bounded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import ssl
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import hl7
import pytest
import trustme
from hl7.mllp import start_hl7_server
from tests.connectors.contract_destination import (
    DestinationContract,
    Peer,
    assert_no_phi,
    closed_port,
    deliver_all,
    free_port,
)

from isthmus.config import DestinationSettings
from isthmus.connectors import dest_mllp
from isthmus.connectors.dest_mllp import MllpDestination, ack_answer, control_id
from isthmus.ports.destination import (
    Destination,
    DestinationRejected,
    DestinationUnavailable,
    Outgoing,
)


def dft(control: str, amount: str = "125.00") -> bytes:
    """A DFT^P03 payment posting as a route would render it (PHI in PID on purpose)."""
    return "\r".join(
        [
            f"MSH|^~\\&|ISTHMUS|HUB|PATACCT|GH|20260101120000||DFT^P03^DFT_P03|{control}|P|2.5.1",
            "EVN|P03|20260101120000",
            "PID|1||MRN0042^^^GH^MR||DOE^JANE||19600102|F",
            "PV1|1|O|CLINIC||||||||||||||||V0001",
            f"FT1|1|PAY-{control}||20260101|20260101|PY|PAY01^Patient payment|||1|{amount}",
        ]
    ).encode()


def ae_ack(control: str, code: str = "AE") -> str:
    return "\r".join(
        [
            f"MSH|^~\\&|PATACCT|GH|ISTHMUS|HUB|20260101120001||ACK^P03^ACK|A{control}|P|2.5.1",
            f"MSA|{code}|{control}|Unknown patient DOE^JANE born 19600102",
            "ERR||PID^1^3^1|204^Unknown key identifier^HL70357|E||||MRN0042 Jane Doe not found",
        ]
    )


class Hl7Receiver:
    """python-hl7's asyncio MLLP server in a thread; restartable on the same port."""

    def __init__(
        self,
        port: int | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        answer: bool = True,
    ) -> None:
        self.port = port or free_port()
        self.keys: list[str] = []
        self.answer = answer
        self._ssl = ssl_context
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._writers: set[Any] = set()
        self.connections = 0

    async def _client(self, reader: Any, writer: Any) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while not writer.is_closing():
                msg = await reader.readmessage()
                control = str(msg.segment("MSH")[10])
                self.keys.append(control)
                if not self.answer:
                    continue
                if control.startswith("R-"):
                    writer.writemessage(hl7.parse(ae_ack(control)))
                else:
                    writer.writemessage(msg.create_ack())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, hl7.exceptions.ParseException):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def start(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        started: Future[Any] = asyncio.run_coroutine_threadsafe(
            start_hl7_server(
                self._client, "127.0.0.1", self.port, ssl=self._ssl, reuse_address=True
            ),
            self._loop,
        )
        self._server = started.result(10)

    async def _stop(self) -> None:
        self._server.close()
        for w in list(self._writers):
            w.close()
        await self._server.wait_closed()

    def stop(self) -> None:
        assert self._loop is not None and self._thread is not None
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        pending = asyncio.run_coroutine_threadsafe(_cancel_rest(), self._loop)
        pending.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = None

    def seen(self) -> list[str]:
        return list(self.keys)


async def _cancel_rest() -> None:
    me = asyncio.current_task()
    rest = [t for t in asyncio.all_tasks() if t is not me]
    for t in rest:
        t.cancel()
    await asyncio.gather(*rest, return_exceptions=True)


def item(n: int, prefix: str = "M") -> Outgoing:
    key = f"{prefix}{n:06d}"
    return Outgoing(
        delivery_id=n,
        destination="billing",
        key=f"acct-{n % 3}",
        idempotency_key=key,
        event_type="PaymentPosted",
        content_type="x-application/hl7-v2+er7",
        body=dft(key),
        attempt=1,
    )


class TestMllpDestination(DestinationContract):
    accepted_codes = ("AA",)

    @pytest.fixture
    def peer(self, tmp_path: Path) -> Iterator[Peer]:
        receiver = Hl7Receiver()
        receiver.start()
        yield receiver
        if receiver._loop is not None:
            receiver.stop()

    def open(self, peer: Peer, tmp_path: Path) -> Destination:
        assert isinstance(peer, Hl7Receiver)
        return dest_mllp.open_destination(
            DestinationSettings(name="billing", kind="mllp", port=peer.port, timeout_s=5), ""
        )

    def open_down(self, tmp_path: Path) -> Destination:
        return MllpDestination("billing", "127.0.0.1", closed_port(), timeout_s=2)

    def item(self, n: int) -> Outgoing:
        return item(n)

    def refused(self, peer: Peer, tmp_path: Path) -> tuple[Destination, Outgoing]:
        return self.open(peer, tmp_path), item(7, prefix="R-")


# -- the ACK, read --------------------------------------------------------------------------


def test_control_id_is_msh_10() -> None:
    assert control_id(dft("X123")) == "X123"
    with pytest.raises(DestinationRejected):
        control_id(b"PID|1||x")
    with pytest.raises(DestinationRejected):
        control_id(b"MSH|^~\\&|A|B|C|D|20260101||ADT^A01||P|2.5.1")


def test_ae_answer_keeps_codes_and_drops_free_text() -> None:
    with pytest.raises(DestinationRejected) as caught:
        ack_answer(ae_ack("C1").encode(), "C1")
    answer = caught.value.answer
    assert answer.code == "AE"
    assert "ERR-3=204^Unknown key identifier" in answer.detail
    assert "ERR-4=E" in answer.detail and "PID^1^3^1" in answer.detail
    assert_no_phi(str(caught.value), answer.detail)


def test_ar_and_commit_reject_are_refusals_and_ca_is_accept() -> None:
    for code in ("AR", "CE", "CR"):
        with pytest.raises(DestinationRejected) as caught:
            ack_answer(ae_ack("C2", code).encode(), "C2")
        assert caught.value.answer.code == code
    ca = "MSH|^~\\&|A|B|C|D|20260101||ACK|9|P|2.5.1\rMSA|CA|C3"
    assert ack_answer(ca.encode(), "C3").code == "AA"
    lf = "MSH#^~\\&#A#B#C#D#20260101##ACK#9#P#2.5.1\nMSA#AA#C5\n"  # LF ends, own separator
    assert ack_answer(lf.encode(), "C5").detail == "MSA-1=AA MSA-2=C5"


def test_v23_err_1_location_and_code() -> None:
    ack = "MSH|^~\\&|A|B|C|D|20260101||ACK|9|P|2.3\rMSA|AE|C4|bad\rERR|PID^1^5^103&Table value"
    with pytest.raises(DestinationRejected) as caught:
        ack_answer(ack.encode(), "C4")
    assert "ERR-1=103 at PID^1^5" in caught.value.answer.detail


def test_stray_ack_is_unavailable_not_delivered() -> None:
    ack = "MSH|^~\\&|A|B|C|D|20260101||ACK|9|P|2.5.1\rMSA|AA|SOMEONE-ELSE"
    with pytest.raises(DestinationUnavailable, match="another message"):
        ack_answer(ack.encode(), "MINE")
    with pytest.raises(DestinationUnavailable, match="MSA"):
        ack_answer(b"MSH|^~\\&|A|B|C|D|20260101||ACK|9|P|2.5.1", "MINE")


def test_stray_ack_on_the_wire_drops_the_connection() -> None:
    """A peer that answers with another control id: unavailable, and the next send uses
    a fresh connection (the late ACK is never read as the next message's answer)."""
    connections: list[socket.socket] = []
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]

    def serve() -> None:
        for _ in range(2):
            conn, _addr = srv.accept()
            connections.append(conn)
            data = b""
            while b"\x1c" not in data:
                data += conn.recv(65536)
            cid = data.split(b"|")[9].decode()
            reply = cid if len(connections) == 2 else "OTHER"
            conn.sendall(
                b"\x0bMSH|^~\\&|A|B|C|D|1||ACK|1|P|2.5.1\rMSA|AA|" + reply.encode() + b"\x1c\r"
            )

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    d = MllpDestination("billing", "127.0.0.1", port, timeout_s=5)
    try:
        with pytest.raises(DestinationUnavailable, match="another message"):
            d.send([item(1)])
        assert d.send([item(1)]).code == "AA"
        t.join(5)
        assert len(connections) == 2
    finally:
        d.close()
        srv.close()
        for c in connections:
            c.close()


def test_no_ack_in_time_is_unavailable() -> None:
    receiver = Hl7Receiver(answer=False)
    receiver.start()
    d = MllpDestination("billing", "127.0.0.1", receiver.port, timeout_s=0.5)
    try:
        with pytest.raises(DestinationUnavailable, match="no ACK within"):
            d.send([item(1)])
        assert receiver.seen() == ["M000001"]
    finally:
        d.close()
        receiver.stop()


def test_a_body_with_an_mllp_block_byte_is_refused_before_sending() -> None:
    d = MllpDestination("billing", "127.0.0.1", closed_port(), timeout_s=1)
    bad = dataclasses.replace(item(1), body=dft("Z1") + b"\x1c")
    with pytest.raises(DestinationRejected, match="block byte"):
        d.send([bad])


# -- TLS ------------------------------------------------------------------------------------


def test_mutual_tls(tmp_path: Path) -> None:
    server_ca, client_ca = trustme.CA(), trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ca.configure_trust(server_ctx)
    ca_pem, cert_pem = tmp_path / "ca.pem", tmp_path / "client.pem"
    server_ca.cert_pem.write_to_path(str(ca_pem))
    client_cert = client_ca.issue_cert("isthmus-hub")
    client_cert.private_key_and_cert_chain_pem.write_to_path(str(cert_pem))
    receiver = Hl7Receiver(ssl_context=server_ctx)
    receiver.start()
    try:
        settings = DestinationSettings(
            name="billing",
            kind="mllp",
            port=receiver.port,
            tls_ca=ca_pem,
            tls_cert=cert_pem,
            timeout_s=5,
        )
        d = dest_mllp.open_destination(settings, "")
        try:
            for n in (1, 3, 4):  # TLS 1.3 session tickets do not look like a dead line
                assert d.send([item(n)]).code == "AA"
        finally:
            d.close()
        assert receiver.connections == 1
        # without our client certificate the server refuses the handshake
        anonymous = dest_mllp.open_destination(
            DestinationSettings(
                name="billing", kind="mllp", port=receiver.port, tls_ca=ca_pem, timeout_s=5
            ),
            "",
        )
        try:
            with pytest.raises(DestinationUnavailable) as caught:
                anonymous.send([item(2)])
            assert_no_phi(str(caught.value))
        finally:
            anonymous.close()
        assert receiver.seen() == ["M000001", "M000003", "M000004"]
    finally:
        receiver.stop()


# -- the fault test -------------------------------------------------------------------------


@pytest.mark.slow
def test_receiver_down_for_a_while_loses_nothing_and_keeps_order() -> None:
    """60 deliveries; the receiver stops after the 20th and comes back after several failed
    attempts; every delivery arrives, in order of first arrival, each at most twice."""
    receiver = Hl7Receiver()
    receiver.start()
    d = MllpDestination("billing", "127.0.0.1", receiver.port, timeout_s=2)
    failures: list[str] = []
    items = [item(n, prefix="F") for n in range(60)]

    def outage(i: int) -> None:
        if i != 20:
            return
        receiver.stop()
        for _ in range(5):  # the engine keeps trying meanwhile; each attempt fails
            with pytest.raises(DestinationUnavailable) as caught:
                d.send([items[i]])
            failures.append(str(caught.value))
        receiver.start()

    try:
        answers = deliver_all(d, items, between=outage)
        assert [a.code for a in answers] == ["AA"] * 60
        assert len(failures) == 5
        assert_no_phi(*failures)
        seen = receiver.seen()
        keys = [i.idempotency_key for i in items]
        first_seen = list(dict.fromkeys(seen))
        assert first_seen == keys  # nothing lost, order per key (and overall) kept
        assert all(seen.count(k) <= 2 for k in keys)  # at least once, bounded
    finally:
        d.close()
        receiver.stop()
