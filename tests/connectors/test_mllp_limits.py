"""MLLP connection limits: idle connections, however many and from wherever, never keep a
new sender out (issue 16: 256 idle connections blocked every other sender for 300 s).

Real sockets on the loopback; other peers are other loopback source addresses
(127.0.0.2, 127.0.0.3, ...), which Linux routes to 127.0.0.1 like any local address.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support import await_until

from isthmus.app import Hub
from isthmus.config import ConfigError, ReliabilitySettings, load_settings
from isthmus.connectors.mllp import MllpServer
from isthmus.connectors.mllp_framing import MllpFramer, frame
from isthmus.runtime import start


def msg(cid: str) -> bytes:
    return f"MSH|^~\\&|EPIC|HOSP|ISTHMUS|FIN|202401011200||ADT^A01|{cid}|P|2.5.1\r".encode()


def ack(cid: str) -> bytes:
    return (
        f"MSH|^~\\&|ISTHMUS|FIN|EPIC|HOSP|202401011200||ACK|A{cid}|P|2.5.1\rMSA|AA|{cid}\r".encode()
    )


class Handler:
    """ACKs every message; while `gate` is clear, messages wait (they stay in flight)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = 0

    async def on_message(self, payload: bytes, peer: str) -> bytes:
        self.waiting += 1
        try:
            await self.gate.wait()
        finally:
            self.waiting -= 1
        return ack(payload.split(b"|")[9].decode())

    async def on_framing_error(self, payload_head: bytes, peer: str, reason: str) -> bytes | None:
        return None


class Peer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.framer = MllpFramer()

    @classmethod
    async def connect(cls, port: int, source: str = "127.0.0.1") -> Peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        return cls(reader, writer)

    async def ask(self, cid: str) -> bytes:
        """Send one message and read its ACK (b"" when the server closed instead)."""
        self.writer.write(frame(msg(cid)))
        await self.writer.drain()
        return await self.answer()

    async def answer(self) -> bytes:
        while True:
            data = await asyncio.wait_for(self.reader.read(65536), 5.0)
            if not data:
                return b""
            got = [f.payload for f in self.framer.feed_data(data) if f.ok]
            if got:
                return got[0]

    async def closed_by_server(self) -> bool:
        try:
            return await asyncio.wait_for(self.reader.read(65536), 5.0) == b""
        except ConnectionResetError:
            return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def run(body: Callable[[MllpServer, Handler], Awaitable[None]], **kwargs: Any) -> MllpServer:
    handler = Handler()
    server = MllpServer(handler, port=0, **kwargs)

    async def main() -> None:
        await server.start()
        try:
            await asyncio.wait_for(body(server, handler), 60.0)
        finally:
            handler.gate.set()
            await server.close(grace_s=5.0)

    asyncio.run(main())
    return server


def settled(server: MllpServer, n: int) -> Callable[[], bool]:
    """The server has admitted or refused `n` connections so far."""
    return lambda: server.stats.connections_total + server.stats.connections_refused >= n


def test_idle_connections_from_one_address_do_not_lock_out_other_senders() -> None:
    flood = 300  # more than the 256 that filled the server before

    async def body(server: MllpServer, _h: Handler) -> None:
        idle = [await Peer.connect(server.port) for _ in range(flood)]
        await await_until(settled(server, flood), what="every flood connection admitted")
        assert server.stats.connections == 64  # the per-address default
        other = await Peer.connect(server.port, "127.0.0.2")
        assert await other.ask("OTHER-1") == ack("OTHER-1")
        again = await Peer.connect(server.port)  # the flooding address itself reconnects
        assert await again.ask("SAME-1") == ack("SAME-1")
        for p in (*idle, other, again):
            await p.close()

    server = run(body)  # the defaults: what `serve` runs with
    assert server.stats.connections_refused == 0
    assert server.stats.evictions == flood - 64 + 1
    assert server.stats.idle_closes == server.stats.evictions


def test_total_limit_closes_the_oldest_idle_connection_to_admit_a_new_one() -> None:
    async def body(server: MllpServer, _h: Handler) -> None:
        a = await Peer.connect(server.port, "127.0.0.2")
        b = await Peer.connect(server.port, "127.0.0.3")
        c = await Peer.connect(server.port, "127.0.0.4")
        await await_until(settled(server, 3), what="three connections admitted")
        assert await a.ask("A-1") == ack("A-1")  # a is now the most recently active
        d = await Peer.connect(server.port, "127.0.0.5")
        assert await d.ask("D-1") == ack("D-1")
        assert await b.closed_by_server()  # the oldest idle one made room
        assert await a.ask("A-2") == ack("A-2")
        assert await c.ask("C-1") == ack("C-1")
        assert server.stats.connections == 3
        for p in (a, b, c, d):
            await p.close()

    server = run(body, max_connections=3)
    assert (server.stats.evictions, server.stats.idle_closes) == (1, 1)
    assert server.stats.connections_refused == 0


def test_connections_with_messages_in_flight_are_never_closed_for_room() -> None:
    async def body(server: MllpServer, handler: Handler) -> None:
        handler.gate.clear()
        busy = [await Peer.connect(server.port, f"127.0.0.{i}") for i in (2, 3)]
        for i, p in enumerate(busy):
            p.writer.write(frame(msg(f"B-{i}")))
        await await_until(lambda: handler.waiting == 2, what="both messages in flight")
        extra = await Peer.connect(server.port, "127.0.0.4")
        assert await extra.closed_by_server()  # refused: closing a busy one loses an ACK
        assert server.stats.connections_refused == 1
        handler.gate.set()
        assert [await p.answer() for p in busy] == [ack("B-0"), ack("B-1")]
        for p in (*busy, extra):
            await p.close()

    server = run(body, max_connections=2)
    assert server.stats.evictions == 0


def test_an_address_at_its_limit_takes_its_own_oldest_idle_place_not_anyone_elses() -> None:
    async def body(server: MllpServer, handler: Handler) -> None:
        other = await Peer.connect(server.port, "127.0.0.2")
        first = await Peer.connect(server.port)
        second = await Peer.connect(server.port)
        await await_until(settled(server, 3), what="three connections admitted")
        third = await Peer.connect(server.port)
        assert await third.ask("T-1") == ack("T-1")
        assert await first.closed_by_server()
        assert await other.ask("O-1") == ack("O-1")  # older than `first`, yet kept
        assert await second.ask("S-1") == ack("S-1")
        # with every place of the address busy, its next connection is refused
        handler.gate.clear()
        for p in (second, third):
            p.writer.write(frame(msg("WAIT")))
        await await_until(lambda: handler.waiting == 2, what="both messages in flight")
        fourth = await Peer.connect(server.port)
        assert await fourth.closed_by_server()
        handler.gate.set()
        for p in (other, first, second, third, fourth):
            await p.close()

    server = run(body, max_connections_per_peer=2)
    assert server.stats.evictions == 1
    assert server.stats.connections_refused == 1


def test_idle_timeout_defaults_to_a_minute_and_the_limits_are_settings(tmp_path: Path) -> None:
    assert ReliabilitySettings().idle_timeout_s == 60.0
    assert MllpServer(Handler()).idle_timeout_s == 60.0
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(
        "[reliability]\nidle_timeout_s = 20.0\nmllp_max_connections = 32\n"
        "mllp_max_connections_per_peer = 4\n"
    )
    rel = load_settings(cfg, data_dir=tmp_path, env={}).reliability
    assert (rel.idle_timeout_s, rel.mllp_max_connections, rel.mllp_max_connections_per_peer) == (
        20.0,
        32,
        4,
    )
    cfg.write_text("[reliability]\nmllp_max_connections_per_peer = 0\n")
    with pytest.raises(ConfigError, match="mllp_max_connections_per_peer"):
        load_settings(cfg, data_dir=tmp_path, env={})


def test_serve_wires_the_limits_into_the_listener(tmp_path: Path) -> None:
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(
        "[reliability]\nidle_timeout_s = 20.0\nmllp_max_connections = 32\n"
        "mllp_max_connections_per_peer = 4\n"
    )
    hub = Hub.open(load_settings(cfg, data_dir=tmp_path / "data", env=dict(os.environ)))

    async def main() -> None:
        running = await start(hub, role="listener", mllp_port=0)
        try:
            assert running.mllp is not None
            assert (
                running.mllp.idle_timeout_s,
                running.mllp.max_connections,
                running.mllp.max_connections_per_peer,
            ) == (20.0, 32, 4)
        finally:
            await running.stop()

    try:
        asyncio.run(main())
    finally:
        hub.close()
