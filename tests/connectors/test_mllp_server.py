"""MLLP server over real sockets on 127.0.0.1, with an in-test handler; plus python-hl7 interop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import hl7
import hl7.mllp
import pytest
import trustme

from isthmus.connectors.mllp import MllpServer, tls_context
from isthmus.connectors.mllp_client import send_messages
from isthmus.connectors.mllp_framing import MllpFramer, frame

MLLP_SEND = Path(sys.executable).parent / "mllp_send"


def msg(cid: str, extra: str = "") -> bytes:
    return (
        f"MSH|^~\\&|EPIC|HOSP|ISTHMUS|FIN|202401011200||ADT^A01|{cid}|P|2.5.1\r"
        f"PID|1||MRN{cid}||DOE^JANE{extra}\r"
    ).encode()


def control_id(payload: bytes) -> str:
    fields = payload.split(b"\r", 1)[0].split(b"|")
    return fields[9].decode() if len(fields) > 9 and fields[0] == b"MSH" else ""


def ack(cid: str, code: str = "AA") -> bytes:
    return (
        f"MSH|^~\\&|ISTHMUS|FIN|EPIC|HOSP|202401011200||ACK|A{cid}|P|2.5.1\rMSA|{code}|{cid}\r"
    ).encode()


def ack_of(payload: bytes) -> tuple[str, str]:
    """(MSA-1, MSA-2) of an ACK payload."""
    for seg in payload.split(b"\r"):
        if seg.startswith(b"MSA|"):
            parts = seg.decode().split("|")
            return parts[1], parts[2]
    raise AssertionError("no MSA segment")


class FakeHandler:
    """Dict-backed store keyed by MSH-10; optional random delay; fails on a marker."""

    def __init__(self, *, jitter_s: float = 0.0, delay_s: float = 0.0) -> None:
        self.jitter_s = jitter_s
        self.delay_s = delay_s
        self.stored: dict[str, bytes] = {}
        self.completed: list[str] = []
        self.framing_errors: list[tuple[bytes, str]] = []
        self.started = 0
        self.in_flight = 0
        self.max_in_flight = 0

    async def on_message(self, payload: bytes, peer: str) -> bytes:
        cid = control_id(payload)
        self.started += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s or self.jitter_s:
                await asyncio.sleep(self.delay_s + random.random() * self.jitter_s)
            if b"BOOM" in payload:
                raise RuntimeError(f"cannot store patient {payload!r}")  # PHI in the message
            if b"BADACK" in payload:
                return b"\x0bnot allowed"
            self.stored[cid] = payload
            self.completed.append(cid)
            return ack(cid)
        finally:
            self.in_flight -= 1

    async def on_framing_error(self, payload_head: bytes, peer: str, reason: str) -> bytes | None:
        self.framing_errors.append((payload_head, reason))
        return ack(control_id(payload_head), "AR")


def run(main: Callable[[], Coroutine[Any, Any, object]], timeout: float = 30.0) -> None:
    async def guarded() -> None:
        await asyncio.wait_for(main(), timeout)

    asyncio.run(guarded())


async def serving(
    handler: FakeHandler, body: Callable[[MllpServer], Awaitable[None]], **kwargs: Any
) -> MllpServer:
    server = MllpServer(handler, port=0, **kwargs)
    await server.start()
    try:
        await body(server)
    finally:
        await server.close()
    return server


class Peer:
    """A raw socket client that reads MLLP frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.framer = MllpFramer()
        self.frames: list[bytes] = []

    @classmethod
    async def connect(cls, port: int) -> Peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read(self, n: int) -> list[bytes]:
        while len(self.frames) < n:
            data = await self.reader.read(65536)
            if not data:
                break
            self.frames.extend(f.payload for f in self.framer.feed_data(data) if f.ok)
        got, self.frames = self.frames[:n], self.frames[n:]
        return got

    async def at_eof(self) -> bool:
        return await self.reader.read(65536) == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def test_single_message() -> None:
    handler = FakeHandler()

    async def body(server: MllpServer) -> None:
        peer = await Peer.connect(server.port)
        await peer.send(frame(msg("M1")))
        assert await peer.read(1) == [ack("M1")]
        await peer.close()

    async def main() -> None:
        server = await serving(handler, body)
        assert server.stats.messages == 1
        assert server.stats.acks == 1
        assert server.stats.connections == 0
        assert server.stats.connections_total == 1

    run(main)
    assert handler.stored == {"M1": msg("M1")}


def test_fifty_connections_twenty_messages_each_in_order() -> None:
    handler = FakeHandler(jitter_s=0.003)

    async def one(port: int, c: int) -> None:
        peer = await Peer.connect(port)
        ids = [f"C{c}-{i}" for i in range(20)]
        for i in range(0, 20, 5):  # pipelined, five frames a write
            await peer.send(b"".join(frame(msg(cid)) for cid in ids[i : i + 5]))
        got = await peer.read(20)
        assert [ack_of(a) for a in got] == [("AA", cid) for cid in ids]
        await peer.close()

    async def body(server: MllpServer) -> None:
        await asyncio.gather(*(one(server.port, c) for c in range(50)))
        assert server.stats.connections_total == 50
        assert server.stats.messages == 1000

    run(lambda: serving(handler, body))
    assert len(handler.stored) == 1000


def test_pipelined_acks_keep_arrival_order_when_handler_finishes_out_of_order() -> None:
    handler = FakeHandler(jitter_s=0.05)
    ids = [f"P{i}" for i in range(40)]

    async def body(server: MllpServer) -> None:
        peer = await Peer.connect(server.port)
        await peer.send(b"".join(frame(msg(cid)) for cid in ids))
        got = await peer.read(40)
        assert [ack_of(a)[1] for a in got] == ids
        await peer.close()

    run(lambda: serving(handler, body))
    assert handler.completed != ids  # the handler really did finish out of order
    assert sorted(handler.completed) == sorted(ids)


def test_in_flight_limit_applies_backpressure() -> None:
    handler = FakeHandler(jitter_s=0.01)
    ids = [f"B{i}" for i in range(60)]

    async def body(server: MllpServer) -> None:
        peer = await Peer.connect(server.port)
        await peer.send(b"".join(frame(msg(cid)) for cid in ids))
        got = await peer.read(60)
        assert [ack_of(a)[1] for a in got] == ids
        await peer.close()

    run(lambda: serving(handler, body, max_in_flight_per_connection=4))
    assert 1 < handler.max_in_flight <= 4


def test_long_backlog_of_instant_answers_stays_ordered() -> None:
    # The handler never suspends, so answers are produced inside the read callback (eager
    # start); a 3000-frame backlog behind a window of 4 must neither recurse nor reorder.
    handler = FakeHandler()
    ids = [f"Q{i}" for i in range(3000)]

    async def body(server: MllpServer) -> None:
        peer = await Peer.connect(server.port)
        await peer.send(b"".join(frame(msg(cid)) for cid in ids))
        got = await peer.read(3000)
        assert [ack_of(a)[1] for a in got] == ids
        await peer.close()

    run(lambda: serving(handler, body, max_in_flight_per_connection=4))
    assert handler.completed == ids


class MixedHandler(FakeHandler):
    """Odd messages answer at once, even ones after a sleep: two code paths, one order."""

    async def on_message(self, payload: bytes, peer: str) -> bytes:
        if int(control_id(payload)[1:]) % 2 == 0:
            await asyncio.sleep(random.random() * 0.01)
        return await super().on_message(payload, peer)


def test_instant_and_slow_answers_interleave_in_order() -> None:
    handler = MixedHandler()
    ids = [f"X{i}" for i in range(200)]

    async def body(server: MllpServer) -> None:
        peer = await Peer.connect(server.port)
        for i in range(0, 200, 7):
            await peer.send(b"".join(frame(msg(cid)) for cid in ids[i : i + 7]))
        got = await peer.read(200)
        assert [ack_of(a)[1] for a in got] == ids
        await peer.close()

    run(lambda: serving(handler, body, max_in_flight_per_connection=16))


class BulkyAck(FakeHandler):
    async def on_message(self, payload: bytes, peer: str) -> bytes:
        return (await super().on_message(payload, peer)) + b"NTE|" + b"n" * 20_000 + b"\r"


def test_peer_not_reading_acks_stops_the_server_reading() -> None:
    handler = BulkyAck()
    ids = [f"W{i}" for i in range(4000)]

    async def body(server: MllpServer) -> None:
        peer = await Peer.connect(server.port)
        peer.writer.write(b"".join(frame(msg(cid)) for cid in ids))  # no drain: may block
        await asyncio.sleep(0.5)
        assert server.stats.messages < 4000  # 80 MB of ACKs unread: reading was paused
        got = await peer.read(4000)
        assert [ack_of(a)[1] for a in got] == ids
        await peer.close()

    run(lambda: serving(handler, body))


def test_oversize_frame_gets_nak_and_connection_stays_usable() -> None:
    handler = FakeHandler()

    async def body(server: MllpServer) -> None:
        peer = await Peer.connect(server.port)
        big = msg("BIG", extra="X" * 50_000)
        await peer.send(frame(big))
        (nak,) = await peer.read(1)
        assert ack_of(nak) == ("AR", "BIG")
        await peer.send(frame(msg("AFTER")))
        assert await peer.read(1) == [ack("AFTER")]
        await peer.close()
        assert server.stats.errors == 1

    run(lambda: serving(handler, body, max_message_bytes=10_000))
    ((head, reason),) = handler.framing_errors
    assert head.startswith(b"MSH|") and len(head) <= 4096
    assert reason.startswith("oversize")
    assert "BIG" not in handler.stored


def test_garbage_before_start_block_is_skipped() -> None:
    handler = FakeHandler()

    async def body(server: MllpServer) -> None:
        peer = await Peer.connect(server.port)
        await peer.send(b"garbage garbage\r\n" + frame(msg("G1")) + b"\n")
        await peer.send(b"more junk" + frame(msg("G2")))
        assert await peer.read(2) == [ack("G1"), ack("G2")]
        await peer.close()
        assert server.stats.errors == 2
        assert server.stats.acks == 2

    run(lambda: serving(handler, body))
    assert handler.framing_errors == []  # junk answers nobody


def test_broken_frame_goes_to_framing_error_in_order() -> None:
    handler = FakeHandler()

    async def body(server: MllpServer) -> None:
        peer = await Peer.connect(server.port)
        await peer.send(frame(msg("K1")) + b"\x0b" + msg("K2")[:70] + frame(msg("K3")))
        got = await peer.read(3)
        assert [ack_of(a) for a in got] == [("AA", "K1"), ("AR", "K2"), ("AA", "K3")]
        await peer.close()

    run(lambda: serving(handler, body))
    assert handler.framing_errors[0][1].startswith("broken")


def test_idle_timeout_closes_connection() -> None:
    handler = FakeHandler()

    async def body(server: MllpServer) -> None:
        peer = await Peer.connect(server.port)
        await peer.send(frame(msg("I1")))
        assert await peer.read(1) == [ack("I1")]
        assert await asyncio.wait_for(peer.at_eof(), 3.0)
        await peer.close()
        assert server.stats.idle_closes == 1

    run(lambda: serving(handler, body, idle_timeout_s=0.2))


def test_slow_handler_is_not_mistaken_for_idle() -> None:
    handler = FakeHandler(delay_s=0.5)

    async def body(server: MllpServer) -> None:
        peer = await Peer.connect(server.port)
        await peer.send(frame(msg("S1")))
        assert await peer.read(1) == [ack("S1")]
        await peer.close()
        assert server.stats.idle_closes == 0

    run(lambda: serving(handler, body, idle_timeout_s=0.2))


def test_handler_exception_closes_without_ack_and_server_survives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = FakeHandler()
    caplog.set_level(logging.DEBUG, logger="isthmus.connectors.mllp")

    async def body(server: MllpServer) -> None:
        peer = await Peer.connect(server.port)
        await peer.send(frame(msg("E1")) + frame(msg("E2", extra="BOOM")) + frame(msg("E3")))
        assert await peer.read(3) == [ack("E1")]  # then EOF: no ACK for E2 nor E3
        await peer.close()
        assert server.stats.handler_errors == 1

        peer2 = await Peer.connect(server.port)
        await peer2.send(frame(msg("E4")))
        assert await peer2.read(1) == [ack("E4")]
        await peer2.close()

    run(lambda: serving(handler, body))
    assert "RuntimeError" in caplog.text
    assert "DOE" not in caplog.text and "MRN" not in caplog.text  # no PHI in logs


def test_handler_returning_unframable_ack_is_a_handler_error() -> None:
    handler = FakeHandler()

    async def body(server: MllpServer) -> None:
        peer = await Peer.connect(server.port)
        await peer.send(frame(msg("BADACK")))
        assert await peer.read(1) == []
        await peer.close()
        assert server.stats.handler_errors == 1

    run(lambda: serving(handler, body))


def test_half_closed_peer_still_gets_its_acks() -> None:
    handler = FakeHandler(jitter_s=0.02)
    ids = [f"H{i}" for i in range(10)]

    async def body(server: MllpServer) -> None:
        peer = await Peer.connect(server.port)
        await peer.send(b"".join(frame(msg(cid)) for cid in ids))
        peer.writer.write_eof()
        got = await peer.read(10)
        assert [ack_of(a)[1] for a in got] == ids
        assert await peer.at_eof()
        await peer.close()

    run(lambda: serving(handler, body))


# connection limits (refusal only when nothing idle can make room): test_mllp_limits.py


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    d = tmp_path_factory.mktemp("tls")
    cert.cert_chain_pems[0].write_to_path(d / "server.pem")
    cert.private_key_pem.write_to_path(d / "server.key")
    return ca, d / "server.pem", d / "server.key"


def test_tls_with_verified_client(tls_files: tuple[trustme.CA, Path, Path]) -> None:
    ca, cert, key = tls_files
    handler = FakeHandler()
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    untrusting_ctx = ssl.create_default_context()  # does not know our CA

    async def body(server: MllpServer) -> None:
        report = await send_messages(
            "127.0.0.1",
            server.port,
            [msg(f"T{i}") for i in range(20)],
            connections=2,
            window=4,
            ssl_context=client_ctx,
            timeout_s=5,
        )
        assert report.errors == [None] * 20
        assert [ack_of(a)[1] for a in report.acks if a] == [f"T{i}" for i in range(20)]

        bad = await send_messages(
            "127.0.0.1",
            server.port,
            [msg("T99")],
            ssl_context=untrusting_ctx,
            timeout_s=5,
        )
        assert bad.acks == [None]
        assert "CERTIFICATE_VERIFY_FAILED" in str(bad.errors[0])

    run(lambda: serving(handler, body, ssl_context=tls_context(cert, key)))
    assert "T99" not in handler.stored


def test_graceful_close_finishes_in_flight_messages() -> None:
    handler = FakeHandler(delay_s=0.3)
    ids = [f"Z{i}" for i in range(5)]

    async def main() -> None:
        server = MllpServer(handler, port=0)
        await server.start()
        port = server.port
        peer = await Peer.connect(port)
        await peer.send(b"".join(frame(msg(cid)) for cid in ids))
        while handler.started < 5:
            await asyncio.sleep(0.01)
        closing = asyncio.create_task(server.close())
        got = await peer.read(5)
        assert [ack_of(a)[1] for a in got] == ids
        assert await peer.at_eof()
        await peer.close()
        await closing
        with pytest.raises(OSError):
            await Peer.connect(port)
        assert server.stats.connections == 0

    run(main)
    assert len(handler.stored) == 5


def test_close_cancels_handlers_stuck_past_the_grace_period() -> None:
    handler = FakeHandler(delay_s=60)

    async def main() -> None:
        server = MllpServer(handler, port=0)
        await server.start()
        peer = await Peer.connect(server.port)
        await peer.send(frame(msg("STUCK")))
        while handler.started < 1:
            await asyncio.sleep(0.01)
        await server.close(grace_s=0.1)
        assert await peer.read(1) == []  # no ACK: the sender will resend
        await peer.close()
        assert server.stats.connections == 0

    run(main)
    assert handler.stored == {}


def test_serve_forever_stops_on_cancel() -> None:
    async def main() -> None:
        server = MllpServer(FakeHandler(), port=0)
        task = asyncio.create_task(server.serve_forever())
        while server.port == 0:
            await asyncio.sleep(0.01)
        peer = await Peer.connect(server.port)
        await peer.send(frame(msg("F1")))
        assert await peer.read(1) == [ack("F1")]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await peer.at_eof()
        await peer.close()

    run(main)


# -- interop with python-hl7 --------------------------------------------------------------


def test_python_hl7_mllp_send_cli(tmp_path: Path) -> None:
    # mllp_send splits its input file on <FS> and strips <VT>/<CR>, so a file of MLLP
    # blocks works; it sends one message at a time and prints each raw answer on a line.
    handler = FakeHandler()
    ids = [f"CLI{i}" for i in range(25)]
    source = tmp_path / "batch.hl7"
    source.write_bytes(b"".join(frame(msg(cid)) for cid in ids))

    async def body(server: MllpServer) -> None:
        proc = await asyncio.create_subprocess_exec(
            str(MLLP_SEND),
            "--port",
            str(server.port),
            "--file",
            str(source),
            "127.0.0.1",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err
        framer = MllpFramer()
        acks = [f.payload for f in framer.feed_data(out) if f.ok]
        assert [ack_of(a) for a in acks] == [("AA", cid) for cid in ids]

    run(lambda: serving(handler, body))
    # mllp_send strips the trailing <CR> of the last segment; the content is otherwise intact.
    assert set(handler.stored) == set(ids)
    assert all(handler.stored[c] == msg(c).rstrip(b"\r") for c in ids)


def test_python_hl7_asyncio_client() -> None:
    handler = FakeHandler(jitter_s=0.01)

    async def body(server: MllpServer) -> None:
        reader, writer = await hl7.mllp.open_hl7_connection("127.0.0.1", server.port)
        try:
            for i in range(10):
                writer.writemessage(hl7.parse(msg(f"PY{i}").decode()))
                await writer.drain()
                answer = await reader.readmessage()
                assert str(answer.segment("MSA")[1]) == "AA"
                assert str(answer.segment("MSA")[2]) == f"PY{i}"
            # pipelined: write three, then read three
            for i in range(10, 13):
                writer.writeblock(msg(f"PY{i}"))
            await writer.drain()
            got = [await reader.readblock() for _ in range(3)]
            assert [ack_of(a)[1] for a in got] == ["PY10", "PY11", "PY12"]
        finally:
            writer.close()
            await writer.wait_closed()

    run(lambda: serving(handler, body))
    assert len(handler.stored) == 13
