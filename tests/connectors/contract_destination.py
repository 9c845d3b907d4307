"""The destination contract (ports/destination.py), one suite subclassed per adapter.

Every outbound adapter (mllp, nats, sftp, fhir, the in-memory fake here, and the file and
webhook adapters of connectors/destinations.py) runs the same cases against a real peer:

- accepted: the peer takes a delivery and the adapter returns its `Answer`;
- peer down: `DestinationUnavailable` (nothing taken, retry later);
- peer refuses the content: `DestinationRejected` carrying the peer's answer;
- the peer restarts: the adapter fails while it is down, then reconnects by itself;
- the idempotency key reaches the peer (MSH-10, Nats-Msg-Id, the file's control record,
  a request header), and a retry of the same delivery is absorbed where the peer dedupes;
- no patient data in exception texts or answers, although every body carries some.

A subclass provides the `peer` fixture (a `Peer`: start, stop, the keys it received) and
the hooks `open`, `open_down`, `item` and `refused`, in the style of faststream's
`tests/brokers/base/consume.py`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest
import uvicorn
from starlette.applications import Starlette
from tests.support import wait_until

from isthmus.ports.destination import (
    Answer,
    Destination,
    DestinationRejected,
    DestinationUnavailable,
    Outgoing,
)

# Patient data every test body carries; none of it may leave in an error text or answer.
PHI = ("DOE^JANE", "Jane Doe", "19600102", "MRN0042")


class Peer(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...

    def seen(self) -> list[str]: ...  # idempotency keys received, in arrival order


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    return free_port()


def outgoing(
    n: int,
    body: bytes,
    *,
    destination: str = "dest",
    prefix: str = "k",
    event_type: str = "PaymentPosted",
    content_type: str = "application/json",
) -> Outgoing:
    return Outgoing(
        delivery_id=n,
        destination=destination,
        key=f"acct-{n % 3}",
        idempotency_key=f"{prefix}{n:06d}",
        event_type=event_type,
        content_type=content_type,
        body=body,
        attempt=1,
    )


def assert_no_phi(*texts: str) -> None:
    for text in texts:
        for marker in PHI:
            assert marker not in text, f"patient data {marker!r} leaked into {text!r}"


def try_send(dest: Destination, items: Sequence[Outgoing]) -> Answer | None:
    """One attempt, as the engine makes it: the answer, or None while unavailable."""
    try:
        return dest.send(items)
    except DestinationUnavailable:
        return None


def deliver_all(
    dest: Destination, items: Sequence[Outgoing], *, between: Callable[[int], None] = lambda i: None
) -> list[Answer]:
    """Send each item in order, retrying an unavailable one until it goes (the engine's
    at-least-once loop without the backoff); `between(i)` runs before item i."""
    answers: list[Answer] = []
    for i, item in enumerate(items):
        between(i)
        answers.append(sent(dest, item))
    return answers


def sent(dest: Destination, item: Outgoing) -> Answer:
    """Retry one delivery while the destination is unavailable; its answer."""
    answer = wait_until(
        lambda: try_send(dest, [item]), what=f"delivery {item.idempotency_key}", every_s=0.1
    )
    assert answer is not None
    return answer


class DestinationContract:
    accepted_codes: tuple[str, ...] = ()
    dedupes = False  # the peer absorbs a repeated idempotency key (NATS, a rewritten file)

    @pytest.fixture
    def peer(self, tmp_path: Path) -> Iterator[Peer]:
        raise NotImplementedError

    def open(self, peer: Peer, tmp_path: Path) -> Destination:
        raise NotImplementedError

    def open_down(self, tmp_path: Path) -> Destination:
        raise NotImplementedError

    def item(self, n: int) -> Outgoing:
        raise NotImplementedError

    def refused(self, peer: Peer, tmp_path: Path) -> tuple[Destination, Outgoing]:
        raise NotImplementedError

    @pytest.fixture
    def dest(self, peer: Peer, tmp_path: Path) -> Iterator[Destination]:
        d = self.open(peer, tmp_path)
        yield d
        d.close()

    def test_item_bodies_carry_patient_data(self) -> None:
        body = self.item(1).body.decode("utf-8", "replace")
        assert any(marker in body for marker in PHI)  # else the no-PHI checks prove nothing

    def test_accepted_delivery_returns_the_answer(self, dest: Destination, peer: Peer) -> None:
        item = self.item(1)
        answer = dest.send([item])
        assert isinstance(answer, Answer)
        assert answer.code in self.accepted_codes
        assert_no_phi(answer.code, answer.detail)
        assert wait_until(lambda: item.idempotency_key in peer.seen(), what="the peer's copy")

    def test_deliveries_arrive_in_order_on_one_connection(
        self, dest: Destination, peer: Peer
    ) -> None:
        items = [self.item(n) for n in range(10, 15)]
        for item in items:
            assert dest.send([item]).code in self.accepted_codes
        keys = [i.idempotency_key for i in items]
        wait_until(lambda: set(keys) <= set(peer.seen()), what="all five at the peer")
        assert [k for k in peer.seen() if k in keys] == keys

    def test_peer_down_is_unavailable(self, tmp_path: Path) -> None:
        d = self.open_down(tmp_path)
        try:
            with pytest.raises(DestinationUnavailable) as caught:
                d.send([self.item(2)])
            assert_no_phi(str(caught.value))
        finally:
            d.close()

    def test_refused_content_is_rejected_with_the_answer(self, peer: Peer, tmp_path: Path) -> None:
        d, item = self.refused(peer, tmp_path)
        try:
            with pytest.raises(DestinationRejected) as caught:
                d.send([item])
            answer = caught.value.answer
            assert answer.code and answer.code not in self.accepted_codes
            assert_no_phi(str(caught.value), answer.code, answer.detail)
            # the refusal is the peer's answer, not the end of the connection
            ok = self.item(3)
            assert d.send([ok]).code in self.accepted_codes
        finally:
            d.close()

    def test_reconnects_after_the_peer_restarts(self, dest: Destination, peer: Peer) -> None:
        first, second = self.item(4), self.item(5)
        assert dest.send([first]).code in self.accepted_codes
        peer.stop()
        with pytest.raises(DestinationUnavailable) as caught:
            dest.send([second])
        assert_no_phi(str(caught.value))
        peer.start()
        answer = sent(dest, second)
        assert answer.code in self.accepted_codes
        wait_until(lambda: second.idempotency_key in peer.seen(), what="the second delivery")
        assert peer.seen().count(first.idempotency_key) == 1

    def test_idempotency_key_reaches_the_peer_and_a_retry(
        self, dest: Destination, peer: Peer
    ) -> None:
        item = self.item(6)
        dest.send([item])
        retry = dataclasses.replace(item, attempt=2)
        assert dest.send([retry]).code in self.accepted_codes
        wait_until(lambda: item.idempotency_key in peer.seen(), what="the key at the peer")
        count = peer.seen().count(item.idempotency_key)
        assert count == 1 if self.dedupes else count in (1, 2)


# -- the in-memory fake, held to the same contract -------------------------------------------


@dataclass
class MemoryPeer:
    """A receiver in memory: up or down, refusing bodies that hold `refuse_marker`."""

    up: bool = True
    refuse_marker: bytes = b"REFUSE"
    received: list[Outgoing] = field(default_factory=list)

    def start(self) -> None:
        self.up = True

    def stop(self) -> None:
        self.up = False

    def seen(self) -> list[str]:
        return [o.idempotency_key for o in self.received]


class MemoryDestination:
    """The fake destination: what the engine's unit tests use instead of a network peer."""

    def __init__(self, name: str, peer: MemoryPeer, *, batch: int = 1) -> None:
        self.name, self.batch, self.peer = name, batch, peer
        self.closed = False

    def send(self, items: Sequence[Outgoing]) -> Answer:
        if not self.peer.up or self.closed:
            raise DestinationUnavailable(f"{self.name}: peer down")
        if any(self.peer.refuse_marker in o.body for o in items):
            raise DestinationRejected(Answer("refused", f"{len(items)} item(s) refused"))
        known = set(self.peer.seen())
        self.peer.received += [o for o in items if o.idempotency_key not in known]
        return Answer("stored", f"{len(items)} item(s)")

    def close(self) -> None:
        self.closed = True


class _ThreadServer(uvicorn.Server):
    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


class UvicornPeer:
    """An ASGI app served by uvicorn in a thread on a fixed loopback port; restartable (the
    HTTP peers of the webhook and FHIR destinations)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: _ThreadServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._server = _ThreadServer(
            uvicorn.Config(
                self.app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                access_log=False,
                lifespan="off",
                ws="none",
                http="h11",
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        server, thread = self._server, self._thread
        wait_until(lambda: server.started or not thread.is_alive(), what="the HTTP peer")
        assert server.started

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
        self._server = self._thread = None
