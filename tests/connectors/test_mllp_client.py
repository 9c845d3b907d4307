"""MLLP client against the MLLP server (real sockets) and against servers that misbehave."""

from __future__ import annotations

import asyncio
import math
import random
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from isthmus.connectors.mllp import MllpServer
from isthmus.connectors.mllp_client import SendReport, send_messages, send_messages_sync
from isthmus.connectors.mllp_framing import MllpFramer


def msg(cid: str) -> bytes:
    return f"MSH|^~\\&|EPIC|HOSP|ISTHMUS|FIN|202401011200||DFT^P03|{cid}|P|2.5.1\rFT1|1\r".encode()


def cid_of(payload: bytes) -> str:
    return payload.split(b"\r", 1)[0].split(b"|")[9].decode()


class EchoAck:
    """Answers MSA|AA|<MSH-10>; remembers which peer sent what, in handling order."""

    def __init__(self, *, jitter_s: float = 0.0, fail_on: str | None = None) -> None:
        self.jitter_s = jitter_s
        self.fail_on = fail_on
        self.by_peer: dict[str, list[str]] = {}

    async def on_message(self, payload: bytes, peer: str) -> bytes:
        cid = cid_of(payload)
        if self.jitter_s:
            await asyncio.sleep(random.random() * self.jitter_s)
        if cid == self.fail_on:
            raise RuntimeError("store unavailable")
        self.by_peer.setdefault(peer, []).append(cid)
        return f"MSH|^~\\&|ISTHMUS|FIN|EPIC|HOSP|x||ACK|A{cid}|P|2.5.1\rMSA|AA|{cid}\r".encode()

    async def on_framing_error(self, payload_head: bytes, peer: str, reason: str) -> bytes | None:
        return None


def run(main: Callable[[], Coroutine[Any, Any, object]], timeout: float = 30.0) -> None:
    async def guarded() -> None:
        await asyncio.wait_for(main(), timeout)

    asyncio.run(guarded())


def acked_ids(report: SendReport) -> list[str]:
    return [a.decode().rsplit("|", 1)[1].strip() for a in report.acks if a is not None]


def test_send_report_helpers() -> None:
    r = SendReport(
        acks=[b"a", b"b", None, b"c"],
        errors=[None, None, "x", None],
        latencies=[0.003, 0.001, math.nan, 0.002],
        elapsed_s=2.0,
    )
    assert (r.acked, r.failed) == (3, 1)
    assert r.rate == 1.5
    assert r.p50 == 0.002
    assert r.p99 == 0.003
    assert "3/4 acked" in r.summary()
    assert math.isnan(SendReport(acks=[], errors=[], latencies=[]).p50)


def test_send_over_several_connections_with_window() -> None:
    handler = EchoAck(jitter_s=0.005)
    ids = [f"M{i}" for i in range(200)]

    async def main() -> None:
        server = MllpServer(handler, port=0)
        await server.start()
        try:
            report = await send_messages(
                "127.0.0.1",
                server.port,
                [msg(c) for c in ids],
                connections=4,
                window=8,
            )
        finally:
            await server.close()
        assert report.errors == [None] * 200
        assert acked_ids(report) == ids  # report is indexed like the input
        assert all(lat >= 0 for lat in report.latencies)
        assert report.rate > 0 and report.p99 >= report.p50
        assert server.stats.connections_total == 4

    run(main)
    # message i went to connection i % 4, and each connection kept its order
    assert sorted(sorted(v) for v in handler.by_peer.values()) == sorted(
        sorted(ids[c::4]) for c in range(4)
    )


def test_route_keeps_a_key_on_one_connection() -> None:
    handler = EchoAck()
    keys = ["acct-1", "acct-2", "acct-3"]
    ids = [f"{keys[i % 3]}-{i}" for i in range(30)]

    async def main() -> None:
        server = MllpServer(handler, port=0)
        await server.start()
        try:
            report = await send_messages(
                "127.0.0.1",
                server.port,
                [msg(c) for c in ids],
                connections=2,
                window=4,
                route=lambda i, p: 0 if b"acct-1" in p else 1,
            )
        finally:
            await server.close()
        assert report.failed == 0

    run(main)
    per_peer = list(handler.by_peer.values())
    assert len(per_peer) == 2
    acct1 = next(v for v in per_peer if v[0].startswith("acct-1"))
    assert acct1 == [c for c in ids if c.startswith("acct-1")]


def test_server_dropping_connection_mid_stream_reports_unacked() -> None:
    handler = EchoAck(fail_on="M5")
    ids = [f"M{i}" for i in range(10)]

    async def main() -> None:
        server = MllpServer(handler, port=0)
        await server.start()
        try:
            report = await send_messages(
                "127.0.0.1",
                server.port,
                [msg(c) for c in ids],
                window=1,
                timeout_s=5,
            )
        finally:
            await server.close()
        assert acked_ids(report) == ids[:5]
        assert report.errors[:5] == [None] * 5
        assert report.errors[5] == "connection closed before ACK"
        assert all(e is not None and e.startswith("not sent") for e in report.errors[6:])
        assert all(math.isnan(x) for x in report.latencies[5:])

    run(main)


def test_server_that_never_answers_times_out() -> None:
    async def main() -> None:
        connections: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.append(writer)

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            report = await send_messages(
                "127.0.0.1",
                port,
                [msg("A"), msg("B"), msg("C")],
                window=2,
                timeout_s=0.3,
            )
            assert loop.time() - t0 < 3
        finally:
            for w in connections:
                w.close()
            server.close()
            await server.wait_closed()
        assert report.acks == [None, None, None]
        assert report.errors[0] == report.errors[1] == "no ACK within 0.3 s"
        assert str(report.errors[2]).startswith("not sent")

    run(main)


def test_server_killed_while_client_waits() -> None:
    # The server accepts, reads one block, then the process "dies": its sockets are reset.
    async def main() -> None:
        writers: list[asyncio.StreamWriter] = []

        async def dies(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            framer = MllpFramer()
            while not framer.feed_data(await reader.read(1024)):
                pass
            transport = writer.transport
            assert isinstance(transport, asyncio.Transport)
            transport.abort()

        server = await asyncio.start_server(dies, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            report = await send_messages(
                "127.0.0.1",
                port,
                [msg(f"K{i}") for i in range(6)],
                window=3,
                timeout_s=5,
            )
        finally:
            server.close()
            await server.wait_closed()
        assert report.acked == 0
        assert all(e is not None for e in report.errors)
        assert report.elapsed_s < 4

    run(main)


def test_connection_refused_reports_every_message() -> None:
    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        report = await send_messages("127.0.0.1", port, [msg("A"), msg("B")], connections=2)
        assert report.acks == [None, None]
        assert all("connect failed" in str(e) for e in report.errors)

    run(main)


def test_sync_wrapper() -> None:
    ready = threading.Event()
    stop: list[Callable[[], object]] = []
    port: list[int] = []

    def serve() -> None:
        async def main() -> None:
            server = MllpServer(EchoAck(), port=0)
            await server.start()
            done = asyncio.Event()
            loop = asyncio.get_running_loop()
            stop.append(lambda: loop.call_soon_threadsafe(done.set))
            port.append(server.port)
            ready.set()
            await done.wait()
            await server.close()

        asyncio.run(main())

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        assert ready.wait(5)
        report = send_messages_sync("127.0.0.1", port[0], [msg("S1"), msg("S2")], timeout_s=5)
        assert acked_ids(report) == ["S1", "S2"]
    finally:
        if stop:
            stop[0]()
        thread.join(5)


@pytest.mark.parametrize("kwargs", [{"connections": 0}, {"window": 0}, {"timeout_s": 0}])
def test_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="positive"):
        send_messages_sync("127.0.0.1", 1, [], **kwargs)
