"""One MLLP client connection: framer, answers in arrival order, backpressure, idle timer.

The per-connection half of the MLLP server (see ``mllp``): HL7 v2.x Implementation Guide,
Appendix C (Minimal Lower Layer Protocol, release 2). Handler calls start eagerly inside
the read callback and become tasks only when they must wait.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections import deque
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any

from isthmus.connectors.mllp_framing import Frame, FrameError, MllpFramer, frame

if TYPE_CHECKING:
    from isthmus.connectors.mllp import MllpServer

log = logging.getLogger("isthmus.connectors.mllp")


def _stack(exc: BaseException) -> str:
    """Where an exception came from, without its message (which may quote PHI)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return "".join(traceback.format_list(frames)).rstrip()


class _Slot:
    """One answer owed to the peer, in arrival order."""

    __slots__ = ("done", "failed", "response")

    def __init__(self) -> None:
        self.done = False
        self.failed = False
        self.response: bytes | None = None  # framed, ready to write


class _Resume:
    """Carries on, inside a task, a coroutine whose first step already ran (eager start).

    The task receives the future that step yielded as if it had run the step itself.
    """

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, None], first: Any) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Generator[Any, None, None]:
        coro, pending = self._coro, self._first
        while True:
            try:
                yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 -- thrown in by the task (cancel)
                try:
                    pending = coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    pending = coro.send(None)
                except StopIteration:
                    return


async def _finish(resume: _Resume) -> None:
    await resume


class Connection(asyncio.Protocol):
    """One client connection: framer, ordered answers, backpressure, idle timer."""

    def __init__(self, server: MllpServer) -> None:
        self._server = server
        self._loop = asyncio.get_running_loop()
        self._handler = server.handler
        self._stats = server.stats
        self._max_in_flight = server.max_in_flight_per_connection
        self._framer = MllpFramer(server.max_message_bytes)
        self._transport: asyncio.Transport | None = None
        self._peer = "?"
        self.peer_host = "?"  # the address without the port: what per-peer limits count
        self._slots: deque[_Slot] = deque()
        self._backlog: deque[Frame] = deque()
        self._registered = False
        self._stopping = False  # no new work; answers already owed are still written
        self._dead = False  # nothing more is written: failed, closed or lost
        self._eof = False
        self._reading_paused = False
        self._writing_paused = False
        self._batching = False
        self._flushing = False
        self._flush_again = False
        self._out: list[bytes] = []  # framed answers waiting for one write
        self._last_activity = self._loop.time()
        self._idle_handle: asyncio.TimerHandle | None = None
        self.lost: asyncio.Future[None] = self._loop.create_future()

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self._peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.peer_host = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        server = self._server
        refused = server.admit(self)
        if refused is not None:
            self._stats.connections_refused += 1
            log.warning("mllp refusing connection from %s: %s", self._peer, refused)
            self._stopping = True
            transport.close()
            return
        self._registered = True
        log.debug("mllp connection from %s", self._peer)
        self._arm_idle(server.idle_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stopping = self._dead = True
        self._backlog.clear()
        if self._idle_handle is not None:
            self._idle_handle.cancel()
        if self._registered:
            self._registered = False
            self._server.release(self)
            if exc is not None:
                log.debug("mllp connection from %s lost: %s", self._peer, type(exc).__name__)
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._stopping:
            return
        self._last_activity = self._loop.time()
        self._stats.bytes_received += len(data)
        self._batching = True  # answers completed during this read leave in one write
        try:
            for f in self._framer.feed_data(data):
                self._accept(f)
        finally:
            self._batching = False
        self._flush()

    def eof_received(self) -> bool:
        # The peer closed its sending side; answers still owed are written, then we close.
        self._eof = True
        if not self._stopping:
            for f in self._framer.feed_eof():
                self._note_problem(f)
        self._maybe_finish()
        return True

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._update_reading()

    # -- work --------------------------------------------------------------------------------

    def _accept(self, f: Frame) -> None:
        if self._stopping:
            return
        if f.error is None:
            self._stats.messages += 1
        else:
            self._note_problem(f)
            if f.error is FrameError.JUNK:
                return
        if self._backlog or len(self._slots) >= self._max_in_flight:
            self._backlog.append(f)
        else:
            self._start(f)

    def _note_problem(self, f: Frame) -> None:
        self._stats.errors += 1
        log.warning("mllp framing problem from %s: %s", self._peer, f.reason)

    def _start(self, f: Frame) -> None:
        """Run the handler's first step now (eager start); a task only if it must wait.

        A handler that answers without suspending costs no task and no extra loop turn,
        the same idea as Python 3.12's eager task factory.
        """
        slot = _Slot()
        self._slots.append(slot)
        coro = self._run(slot, f)
        try:
            first = coro.send(None)
        except StopIteration:
            return
        self._server.track(self._loop.create_task(_finish(_Resume(coro, first))))

    async def _run(self, slot: _Slot, f: Frame) -> None:
        try:
            if f.error is None:
                slot.response = frame(await self._handler.on_message(f.payload, self._peer))
            else:
                nak = await self._handler.on_framing_error(f.payload, self._peer, f.reason)
                slot.response = None if nak is None else frame(nak)
        except asyncio.CancelledError:
            slot.failed = True
            raise
        except Exception as exc:  # noqa: BLE001 -- a handler bug must not kill the server
            slot.failed = True
            self._stats.handler_errors += 1
            log.error(
                "mllp handler failed on a %d-byte %s from %s: %s; closing without ACK\n%s",
                len(f.payload),
                "message" if f.error is None else "framing error",
                self._peer,
                type(exc).__name__,
                _stack(exc),
            )
        finally:
            slot.done = True
            self._flush()

    def _flush(self) -> None:
        """Queue every answer whose turn has come, start backlog work, write unless batching.

        Re-entrant calls (an eagerly started handler finishing inside this loop) only ask
        the outer call to go round again, so the stack stays flat however long the backlog.
        """
        if self._flushing:
            self._flush_again = True
            return
        self._flushing = True
        try:
            self._flush_again = True
            while self._flush_again and not self._dead:
                self._flush_again = False
                slots = self._slots
                while slots and slots[0].done:
                    slot = slots.popleft()
                    if slot.failed:
                        self._write_out()
                        self._close_now()
                        return
                    if slot.response is not None:
                        self._out.append(slot.response)
                while self._backlog and len(slots) < self._max_in_flight and not self._stopping:
                    self._start(self._backlog.popleft())
        finally:
            self._flushing = False
        if not self._batching:
            self._write_out()
            self._update_reading()
            self._maybe_finish()

    def _write_out(self) -> None:
        out = self._out
        if not out:
            return
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(out[0] if len(out) == 1 else b"".join(out))
            self._stats.acks += len(out)
            self._stats.bytes_sent += sum(len(b) for b in out)
            self._last_activity = self._loop.time()
        out.clear()

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        pause = (
            self._stopping
            or self._writing_paused
            or bool(self._backlog)
            or len(self._slots) >= self._max_in_flight
        )
        if pause != self._reading_paused:
            self._reading_paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _maybe_finish(self) -> None:
        if (self._eof or self._stopping) and not self._slots and not self._backlog:
            self._close_now()

    def _close_now(self) -> None:
        """Close after the answers already written; owed answers are dropped (no ACK)."""
        self._stopping = self._dead = True
        self._slots.clear()
        self._backlog.clear()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def stop(self) -> None:
        """Server shutdown: read nothing more, finish what is in flight, then close."""
        self._stopping = True
        self._backlog.clear()
        self._update_reading()
        self._maybe_finish()

    @property
    def peer(self) -> str:
        return self._peer

    @property
    def last_activity(self) -> float:
        """Loop time of the last byte read or answer written."""
        return self._last_activity

    @property
    def idle(self) -> bool:
        """Open with no message in flight: closing it loses no ACK."""
        return self._registered and not (self._stopping or self._slots or self._backlog)

    def evict(self) -> None:
        """Close now to make room for a new connection (the server counts it)."""
        self._server.release(self)
        self._registered = False
        self._close_now()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # -- idle timeout ------------------------------------------------------------------------

    def _arm_idle(self, delay: float) -> None:
        self._idle_handle = self._loop.call_later(delay, self._check_idle)

    def _check_idle(self) -> None:
        if self._stopping:
            return
        timeout = self._server.idle_timeout_s
        if self._slots or self._backlog:
            self._arm_idle(timeout)
            return
        idle_for = self._loop.time() - self._last_activity
        if idle_for < timeout:
            self._arm_idle(timeout - idle_for)
            return
        self._stats.idle_closes += 1
        log.info("mllp closing idle connection from %s after %.0f s", self._peer, idle_for)
        self._close_now()
