"""The `nats` destination against real NATS JetStream servers.

Two servers: the shared one on 127.0.0.1:4222 (tests.services.NATS; skipped locally when
absent, a failure under CI=true), for stream creation and dedupe on a unique subject, and a
private `nats-server -js` this module starts on a free loopback port with its own store
directory, for the contract and the fault test, which stop and restart it (the shared one
must never be stopped). The peer's view is the stream itself: each stored message's
Nats-Msg-Id, in sequence order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import nats
import nats.js.errors
import pytest
from nats.js.api import StreamConfig
from tests.connectors.contract_destination import (
    DestinationContract,
    Peer,
    assert_no_phi,
    closed_port,
    deliver_all,
    free_port,
    outgoing,
)
from tests.services import NATS, require
from tests.support import listening, wait_until

from isthmus.config import DestinationSettings
from isthmus.connectors import dest_nats
from isthmus.connectors.dest_nats import NatsDestination, stream_for
from isthmus.ports.destination import Destination, DestinationUnavailable, Outgoing

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def body(n: int, size: int = 0) -> bytes:
    pad = f', "pad": "{"x" * size}"' if size else ""
    return (
        f'{{"type": "PaymentPosted", "account": "acct-{n % 3}", "amount": "{n}.00", '
        f'"currency": "USD", "patient": "DOE^JANE"{pad}}}'
    ).encode()


async def _stored(servers: str, subject: str) -> list[str]:
    nc = await nats.connect(servers, connect_timeout=2, allow_reconnect=False)
    try:
        js = nc.jetstream(timeout=5)
        try:
            stream = await js.find_stream_name_by_subject(subject)
        except nats.js.errors.NotFoundError:
            return []
        info = await js.stream_info(stream)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(stream, seq)
            if msg.subject == subject:
                out.append(unquote((msg.headers or {}).get("Nats-Msg-Id", "")))
        return out
    finally:
        await nc.close()


async def _make_stream(servers: str, config: StreamConfig) -> None:
    nc = await nats.connect(servers, connect_timeout=2, allow_reconnect=False)
    try:
        await nc.jetstream(timeout=5).add_stream(config)
    finally:
        await nc.close()


async def _drop_stream(servers: str, name: str) -> None:
    nc = await nats.connect(servers, connect_timeout=2, allow_reconnect=False)
    try:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await nc.jetstream(timeout=5).delete_stream(name)
    finally:
        await nc.close()


class NatsServer:
    """A private JetStream server on a loopback port; stop and start keep its store."""

    def __init__(self, store: Path) -> None:
        if not os.access(NATS_SERVER, os.X_OK):
            why = f"{NATS_SERVER} is not installed (Debian package nats-server)"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"{why}; CI=true requires it (.ci/run installs it)")
            pytest.skip(why)
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.store = store
        self.subject = "isthmus.out.payments"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: listening("127.0.0.1", self.port), what="nats-server to listen")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(20)
            self._proc = None

    def seen(self) -> list[str]:
        return asyncio.run(_stored(self.url, self.subject))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    srv = NatsServer(tmp_path / "js")
    srv.start()
    yield srv
    srv.stop()


def item(n: int, prefix: str = "N", size: int = 0) -> Outgoing:
    return outgoing(n, body(n, size), destination="backbone", prefix=prefix)


class TestNatsDestination(DestinationContract):
    accepted_codes = ("published",)
    dedupes = True  # Nats-Msg-Id inside the stream's duplicate window

    @pytest.fixture
    def peer(self, tmp_path: Path) -> Iterator[Peer]:
        srv = NatsServer(tmp_path / "js")
        srv.start()
        yield srv
        srv.stop()

    def open(self, peer: Peer, tmp_path: Path) -> Destination:
        assert isinstance(peer, NatsServer)
        s = DestinationSettings(name="backbone", kind="nats", subject=peer.subject, timeout_s=2)
        return dest_nats.open_destination(s, peer.url)

    def open_down(self, tmp_path: Path) -> Destination:
        return NatsDestination(
            "backbone", f"nats://127.0.0.1:{closed_port()}", "isthmus.out.payments", timeout_s=2
        )

    def item(self, n: int) -> Outgoing:
        return item(n)

    def refused(self, peer: Peer, tmp_path: Path) -> tuple[Destination, Outgoing]:
        """A stream that takes messages up to 1 KiB: a bigger one is refused by JetStream."""
        assert isinstance(peer, NatsServer)
        asyncio.run(
            _make_stream(
                peer.url, StreamConfig(name="SMALL", subjects=[peer.subject], max_msg_size=1024)
            )
        )
        return self.open(peer, tmp_path), item(8, size=4096)


# -- the shared server: stream creation, dedupe, headers ------------------------------------


@pytest.fixture
def shared_subject() -> Iterator[str]:
    require("NATS JetStream", *NATS)
    subject = f"isthmus_test.dest.{uuid.uuid4().hex[:12]}"
    yield subject
    asyncio.run(_drop_stream(f"nats://{NATS[0]}:{NATS[1]}", stream_for(subject)))


def test_creates_the_stream_and_dedupes_on_the_shared_server(shared_subject: str) -> None:
    servers = f"nats://{NATS[0]}:{NATS[1]}"
    d = dest_nats.open_destination(
        DestinationSettings(name="backbone", kind="nats", subject=shared_subject), servers
    )
    try:
        first = d.send([item(1)])
        assert first.code == "published"
        assert f"stream={stream_for(shared_subject)} seq=1" == first.detail
        again = d.send([item(1)])  # the engine's retry after a crash before its commit
        assert again.detail.endswith("duplicate")
        assert d.send([item(2)]).detail.endswith("seq=2")
    finally:
        d.close()
    assert asyncio.run(_stored(servers, shared_subject)) == ["N000001", "N000002"]


def test_headers_carry_the_event_and_key(server: NatsServer) -> None:
    d = NatsDestination("backbone", server.url, server.subject, timeout_s=2)
    try:
        d.send([item(4)])
    finally:
        d.close()

    async def headers() -> dict[str, str]:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            msg = await js.get_msg(stream_for(server.subject), 1)
            return dict(msg.headers or {})
        finally:
            await nc.close()

    h = asyncio.run(headers())
    assert h["Nats-Msg-Id"] == "N000004"
    assert h["Isthmus-Event-Type"] == "PaymentPosted" and h["Isthmus-Key"] == "acct-1"


def test_a_closed_destination_refuses_to_send(server: NatsServer) -> None:
    d = NatsDestination("backbone", server.url, server.subject, timeout_s=2)
    d.close()
    with pytest.raises(DestinationUnavailable, match="closed"):
        d.send([item(1)])


def test_wildcard_subjects_and_no_servers_are_refused_at_open() -> None:
    with pytest.raises(ValueError, match="literal"):
        NatsDestination("backbone", "nats://127.0.0.1:1", "isthmus.out.*")
    with pytest.raises(ValueError, match="servers"):
        dest_nats.open_destination(DestinationSettings(name="b", kind="nats", subject="a.b"), "")


# -- the fault test -------------------------------------------------------------------------


@pytest.mark.slow
def test_server_down_for_a_while_then_back_stores_each_exactly_once(server: NatsServer) -> None:
    """40 deliveries; the server stops after the 15th, several attempts fail meanwhile (a
    publish buffered by the client may be stored when it returns), then it comes back with
    its store: every delivery is in the stream exactly once, in order, thanks to
    Nats-Msg-Id; a resend after a 'crash' is answered as a duplicate."""
    d = NatsDestination("backbone", server.url, server.subject, timeout_s=1.5)
    items = [item(n, prefix="F") for n in range(40)]
    failures: list[str] = []

    def outage(i: int) -> None:
        if i != 15:
            return
        server.stop()
        for _ in range(3):
            with pytest.raises(DestinationUnavailable) as caught:
                d.send([items[i]])
            failures.append(str(caught.value))
        server.start()

    try:
        answers = deliver_all(d, items, between=outage)
        assert all(a.code == "published" for a in answers)
        assert len(failures) == 3
        assert_no_phi(*failures)
        resent = d.send([items[10]])
        assert resent.detail.endswith("duplicate")
    finally:
        d.close()
    assert server.seen() == [i.idempotency_key for i in items]
