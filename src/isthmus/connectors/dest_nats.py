"""The `nats` destination: canonical events published to an external JetStream subject.

Why: other consumers (a data platform, a billing worker, a second hub) take the hub's
status events from the event backbone (issue 18). This adapter publishes each rendered
delivery to `subject` on `servers` (empty: the hub's `[nats] servers`) and returns only
after JetStream's PubAck, i.e. after the stream has stored it.

Which JetStream feature carries which guarantee (docs.nats.io, "JetStream" > "Model deep
dive" and ADR-1 "JetStream JSON API Design"):
- Stored: `js.publish` waits for the PubAck `{stream, seq, duplicate}`; the answer records
  `seq=<n>` (and `duplicate` when the stream had it already).
- Idempotent: header `Nats-Msg-Id` = the delivery's idempotency key. Within the stream's
  duplicate window a second publish of the same key is acknowledged as a duplicate and not
  stored again, so the engine's at-least-once retries land exactly once.
- The stream: if no stream listens on the subject (`$JS.API.STREAM.NAMES` with a subject
  filter), one is created, named from the subject (`ISTHMUS_OUT_<SUBJECT>`), file storage,
  limits retention, a 2 minute duplicate window. A stream someone else made is used as is.

Errors at the boundary: no connection, a timeout waiting for the PubAck, no responders and
JetStream 5xx answers are `DestinationUnavailable` (nats-py's client reconnects on its own;
a publish buffered during an outage may still be stored when the server returns, which is
what the Nats-Msg-Id dedupe absorbs). A JetStream 4xx answer (message too large for the
stream, a subject the stream refuses) is `DestinationRejected` with its code. Texts carry
codes and the server's reason, never the body.

nats-py is asyncio; the engine calls adapters from a thread, so the client lives on a
private event loop in a daemon thread, as `bus/nats.py` does (not imported: adapters do not
reach into the bus).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js.api import RetentionPolicy, StorageType, StreamConfig

from isthmus.config.destinations import DestinationSettings
from isthmus.ports.destination import (
    Answer,
    DestinationRejected,
    DestinationUnavailable,
    Outgoing,
)

__all__ = ["NatsDestination", "open_destination", "stream_for"]

T = TypeVar("T")
_HEADER_SAFE = "-_.:~#/@+=,;"


def stream_for(subject: str) -> str:
    """The stream created for `subject` when none exists: letters, digits, `_` only."""
    return "ISTHMUS_OUT_" + re.sub(r"[^A-Za-z0-9_]", "_", subject).upper()


class NatsDestination:
    """Publish to one subject, waiting for each PubAck; one connection, held and re-made."""

    batch = 1

    def __init__(
        self,
        name: str,
        servers: str,
        subject: str,
        *,
        timeout_s: float = 10.0,
        dedupe_window_s: float = 120.0,
    ) -> None:
        if not subject or any(c in subject for c in " \t\r\n*>"):
            raise ValueError(f"[destinations.{name}] needs a literal NATS subject")
        self.name = name
        self._servers = [s.strip() for s in servers.split(",") if s.strip()]
        if not self._servers:
            raise ValueError(
                f'[destinations.{name}] kind = "nats" needs servers (or [nats] servers)'
            )
        self._subject = subject
        self._timeout = timeout_s
        self._dedupe = dedupe_window_s
        self._nc: Client | None = None
        self._stream: str | None = None
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name=f"dest-nats-{name}"
        )
        self._thread.start()

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise DestinationUnavailable("nats destination is closed")
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(self._timeout * 3 + 5)
        except TimeoutError as exc:
            fut.cancel()
            raise DestinationUnavailable(f"NATS {self._subject}: no answer in time") from exc

    async def _connect(self) -> Client:
        nc = self._nc
        if nc is not None and not nc.is_closed:
            return nc
        self._nc, self._stream = None, None
        try:
            # Fail fast on the first connect; once up, the client reconnects on its own and
            # publishes made meanwhile time out as DestinationUnavailable.
            nc = await nats.connect(
                self._servers,
                connect_timeout=min(self._timeout, 2.0),
                max_reconnect_attempts=1,
                reconnect_time_wait=0.2,
                allow_reconnect=False,
                name=f"isthmus-dest-{self.name}",
            )
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            raise DestinationUnavailable(
                f"NATS {','.join(self._servers)} unreachable: {type(exc).__name__}"
            ) from exc
        nc.options["allow_reconnect"] = True
        nc.options["max_reconnect_attempts"] = -1
        nc.options["reconnect_time_wait"] = 0.5
        self._nc = nc
        return nc

    async def _ensure_stream(self, nc: Client) -> str:
        if self._stream is not None:
            return self._stream
        js = nc.jetstream(timeout=self._timeout)
        try:
            name = await js.find_stream_name_by_subject(self._subject)
        except nats.js.errors.NotFoundError:
            name = stream_for(self._subject)
            try:
                await js.add_stream(
                    StreamConfig(
                        name=name,
                        subjects=[self._subject],
                        storage=StorageType.FILE,
                        retention=RetentionPolicy.LIMITS,
                        duplicate_window=self._dedupe,
                    )
                )
            except nats.js.errors.BadRequestError as exc:  # a racing creator, or overlap
                with contextlib.suppress(nats.js.errors.NotFoundError):
                    name = await js.find_stream_name_by_subject(self._subject)
                    self._stream = name
                    return name
                raise DestinationRejected(
                    Answer(
                        "stream",
                        f"cannot create stream {name} for the subject: "
                        f"{exc.err_code} {exc.description or ''}".strip(),
                    )
                ) from exc
        self._stream = name
        return name

    async def _publish(self, item: Outgoing) -> Answer:
        nc = await self._connect()
        try:
            stream = await self._ensure_stream(nc)
            js = nc.jetstream(timeout=self._timeout)
            headers = {
                "Nats-Msg-Id": quote(item.idempotency_key, safe=_HEADER_SAFE),
                "Isthmus-Event-Type": quote(item.event_type, safe=_HEADER_SAFE),
                "Isthmus-Key": quote(item.key, safe=_HEADER_SAFE),
                "Content-Type": item.content_type,
            }
            ack = await js.publish(
                self._subject, item.body, timeout=self._timeout, stream=stream, headers=headers
            )
        except nats.errors.NoRespondersError as exc:
            self._stream = None  # the stream went away: look for (or make) it again
            raise DestinationUnavailable(f"NATS {self._subject}: no stream answered") from exc
        except nats.errors.MaxPayloadError as exc:
            raise DestinationRejected(
                Answer("max_payload", f"{len(item.body)} bytes exceed the server's max_payload")
            ) from exc
        except (nats.js.errors.ServiceUnavailableError, nats.js.errors.ServerError) as exc:
            raise DestinationUnavailable(
                f"NATS JetStream {exc.code} {exc.err_code}: {exc.description or ''}".strip()
            ) from exc
        except nats.js.errors.APIError as exc:
            if exc.err_code == 10060:  # expected stream does not match: re-resolve it
                self._stream = None
                raise DestinationUnavailable(
                    f"NATS {self._subject}: the stream moved ({exc.err_code})"
                ) from exc
            raise DestinationRejected(
                Answer(
                    str(exc.code or "rejected"),
                    (f"JetStream {exc.err_code}: {exc.description or ''}").strip(),
                )
            ) from exc
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            raise DestinationUnavailable(
                f"NATS {self._subject}: {type(exc).__name__}, no PubAck"
            ) from exc
        detail = f"stream={ack.stream} seq={ack.seq}" + (" duplicate" if ack.duplicate else "")
        return Answer("published", detail)

    async def _close(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(nats.errors.Error, OSError, TimeoutError):
                await asyncio.wait_for(nc.close(), timeout=5)

    # -- the port ---------------------------------------------------------------------------

    def send(self, items: Sequence[Outgoing]) -> Answer:
        if len(items) != 1:
            raise ValueError(f"the nats destination publishes one at a time, got {len(items)}")
        return self._call(self._publish(items[0]))

    def close(self) -> None:
        if self._closed:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._closed = True
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(
                    self._loop.shutdown_asyncgens(), self._loop
                ).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._loop.close()


def open_destination(s: DestinationSettings, nats_servers: str) -> NatsDestination:
    """The adapter for `[destinations.<name>] kind = "nats"` (`subject`, `servers`)."""
    return NatsDestination(s.name, s.servers or nats_servers, s.subject, timeout_s=s.timeout_s)
