"""MLLP client: sends HL7 v2 messages to an MLLP listener and collects the ACK for each one.

Used by the demo, the benchmarks and the tests, to play the part of an EHR interface engine.
Framing follows the Minimal Lower Layer Protocol (HL7 v2.x Implementation Guide, Appendix C,
release 2) through :mod:`isthmus.connectors.mllp_framing`. MLLP carries no message id at the
transport level, so ACKs are matched to messages by order on each connection, which is what
Appendix C's original mode implies: one answer per block, in order.

Messages are spread over ``connections`` TCP connections (message ``i`` goes to connection
``i % connections`` unless ``route`` says otherwise, so order per connection is
deterministic), each with up to ``window`` blocks written before their ACKs come back. Every
message ends with either an ACK payload or an error string; a server that dies, resets or
stops answering cannot make the client hang: each ACK has ``timeout_s`` from its send, after
which that connection's remaining messages are reported as failed.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from isthmus.connectors.mllp_framing import MllpFramer, frame

__all__ = ["SendReport", "send_messages", "send_messages_sync"]

Route = Callable[[int, bytes], int]


@dataclass(slots=True)
class SendReport:
    """Outcome per message (same index as the input) plus wall time.

    ``acks[i]`` is the ACK payload or None; ``errors[i]`` says why there is no ACK;
    ``latencies[i]`` is seconds from send to ACK, NaN when there was no ACK.
    """

    acks: list[bytes | None]
    errors: list[str | None]
    latencies: list[float]
    elapsed_s: float = 0.0
    connections: int = 1
    window: int = 1
    extra_frames: int = field(default=0)  # answers nobody was waiting for

    @property
    def acked(self) -> int:
        return sum(1 for a in self.acks if a is not None)

    @property
    def failed(self) -> int:
        return len(self.acks) - self.acked

    @property
    def rate(self) -> float:
        """ACKed messages per second of wall time."""
        return self.acked / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile(self, q: float) -> float:
        """Latency percentile (0..100, nearest rank) over ACKed messages; NaN if none."""
        values = sorted(x for x in self.latencies if not math.isnan(x))
        if not values:
            return math.nan
        rank = max(1, math.ceil(q / 100 * len(values)))
        return values[min(rank, len(values)) - 1]

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    def summary(self) -> str:
        return (
            f"{self.acked}/{len(self.acks)} acked over {self.connections} connection(s), "
            f"window {self.window}, in {self.elapsed_s:.3f} s: {self.rate:,.0f} msg/s, "
            f"p50 {self.p50 * 1000:.2f} ms, p99 {self.p99 * 1000:.2f} ms"
        )


class _Sender(asyncio.Protocol):
    """One connection's share of the messages: writes up to ``window``, matches ACKs in order."""

    def __init__(
        self, report: SendReport, items: list[tuple[int, bytes]], window: int, timeout_s: float
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._report = report
        self._todo = deque(items)
        self._window = window
        self._timeout = timeout_s
        self._framer = MllpFramer(max_message_bytes=64 * 1024 * 1024)
        self._outstanding: deque[tuple[int, float]] = deque()  # (index, sent_at)
        self._transport: asyncio.Transport | None = None
        self.finished: asyncio.Future[None] = self._loop.create_future()
        self.lost: asyncio.Future[None] = self._loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._send_more()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        report = self._report
        for f in self._framer.feed_data(data):
            if f.error is not None:
                continue  # junk around an ACK is the server's problem, not a missing answer
            if not self._outstanding:
                report.extra_frames += 1
                continue
            index, sent_at = self._outstanding.popleft()
            report.acks[index] = f.payload
            report.latencies[index] = now - sent_at
        self._send_more()

    def connection_lost(self, exc: Exception | None) -> None:
        why = "connection closed before ACK" if exc is None else f"connection lost: {exc!r}"
        self.fail(why)
        if not self.lost.done():
            self.lost.set_result(None)

    def _send_more(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        chunks: list[bytes] = []
        now = time.perf_counter()
        while self._todo and len(self._outstanding) < self._window:
            index, payload = self._todo.popleft()
            chunks.append(frame(payload))
            self._outstanding.append((index, now))
        if chunks:
            transport.write(b"".join(chunks))
        if not self._todo and not self._outstanding and not self.finished.done():
            self.finished.set_result(None)

    def deadline(self) -> float:
        """perf_counter time by which the oldest outstanding ACK must have arrived."""
        if self._outstanding:
            return self._outstanding[0][1] + self._timeout
        return time.perf_counter() + self._timeout

    def fail(self, why: str) -> None:
        """Report every message of this connection still without an ACK."""
        report = self._report
        while self._outstanding:
            index, _ = self._outstanding.popleft()
            report.errors[index] = why
        while self._todo:
            index, _ = self._todo.popleft()
            report.errors[index] = f"not sent: {why}"
        if not self.finished.done():
            self.finished.set_result(None)


async def _run_connection(
    host: str,
    port: int,
    report: SendReport,
    items: list[tuple[int, bytes]],
    *,
    window: int,
    timeout_s: float,
    ssl_context: ssl.SSLContext | None,
) -> None:
    loop = asyncio.get_running_loop()
    sender = _Sender(report, items, window, timeout_s)
    try:
        transport, _ = await asyncio.wait_for(
            loop.create_connection(
                lambda: sender,
                host,
                port,
                ssl=ssl_context,
                server_hostname=host if ssl_context is not None else None,
            ),
            timeout=timeout_s,
        )
    except (OSError, TimeoutError) as exc:
        sender.fail(f"connect failed: {exc!r}")
        return
    try:
        while not sender.finished.done():
            delay = sender.deadline() - time.perf_counter()
            if delay <= 0:
                sender.fail(f"no ACK within {timeout_s} s")
                break
            await asyncio.wait([sender.finished], timeout=delay)
    finally:
        transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(sender.lost), timeout=min(timeout_s, 5.0))
        except TimeoutError:
            transport.abort()
            await asyncio.wait([sender.lost], timeout=1.0)


async def send_messages(
    host: str,
    port: int,
    messages: Sequence[bytes],
    *,
    connections: int = 1,
    window: int = 1,
    timeout_s: float = 30.0,
    ssl_context: ssl.SSLContext | None = None,
    route: Route | None = None,
) -> SendReport:
    """Send ``messages`` (unframed payloads) and return what came back for each one.

    ``route(i, payload)`` picks the connection (taken modulo ``connections``) so that, say,
    all messages for one account share a connection and keep their order.
    """
    if connections < 1 or window < 1 or timeout_s <= 0:
        raise ValueError("connections, window and timeout_s must be positive")
    n = len(messages)
    report = SendReport(
        acks=[None] * n,
        errors=[None] * n,
        latencies=[math.nan] * n,
        connections=connections,
        window=window,
    )
    shares: list[list[tuple[int, bytes]]] = [[] for _ in range(connections)]
    for i, payload in enumerate(messages):
        c = i % connections if route is None else route(i, payload) % connections
        shares[c].append((i, payload))
    started = time.perf_counter()
    await asyncio.gather(
        *(
            _run_connection(
                host,
                port,
                report,
                share,
                window=window,
                timeout_s=timeout_s,
                ssl_context=ssl_context,
            )
            for share in shares
            if share
        )
    )
    report.elapsed_s = time.perf_counter() - started
    return report


def send_messages_sync(
    host: str,
    port: int,
    messages: Sequence[bytes],
    *,
    connections: int = 1,
    window: int = 1,
    timeout_s: float = 30.0,
    ssl_context: ssl.SSLContext | None = None,
    route: Route | None = None,
) -> SendReport:
    """:func:`send_messages` for callers without an event loop (scripts, the CLI)."""
    return asyncio.run(
        send_messages(
            host,
            port,
            messages,
            connections=connections,
            window=window,
            timeout_s=timeout_s,
            ssl_context=ssl_context,
            route=route,
        )
    )
