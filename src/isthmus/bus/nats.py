"""Scale-out bus: the event log as a NATS JetStream stream, behind the same port as SQLite.

Why: in scale-out mode listeners and workers run on several machines, and consumer groups,
replication and redelivery must be the broker's (DESIGN.md, "Two runtime modes"). This
adapter is a synchronous facade (the port is synchronous) over nats-py's asyncio client,
which runs on a private event loop in a daemon thread. Every nats error leaves as
`BusUnavailable` ("retry later"), raised from the original. Its parts, one module each:
the streams, consumers and buckets (`nats_streams`), the held messages and the per-key
barrier (`nats_held`), the retry state (`nats_retries`), the dead letters
(`nats_dead_letters`), the leases (`nats_leases`).

Which JetStream feature carries which guarantee:
- Durable ACK: `publish` returns only after every PubAck, i.e. the stream has stored it.
  The streams use file storage. Production runs them with `replicas=3` (R3: a quorum
  write before the PubAck) or, single node, a server with `jetstream { sync_interval:
  always }` (fsync before the PubAck; nats-server >= 2.10). Without either, a PubAck'ed
  message can be lost if the host (not the process) crashes within the sync interval.
- Idempotent publish: `Nats-Msg-Id` = msg_id; the stream's duplicate window
  (`dedupe_window_s`) drops a second copy.
- Partitions and per-partition order: subjects are `<prefix>.<partition>.<hex(key)>`; one
  durable pull consumer per partition (`<stream>_p<n>`, explicit ack, filter
  `<prefix>.<n>.*`) hands a partition out in stream order. Workers that use the same stream
  name share those durables: that is the consumer group.
- At least once: a delivery that is not acked within `ack_wait_s` is redelivered by the
  broker (worker crash); `close()` naks what it still holds so that happens at once.
  Retention is WorkQueue: a message stays until it is acked or dead-lettered.
- Retry state: `nak` asks the broker to redeliver after the delay (JetStream keeps the
  delay and the delivery count) and writes {seq, key, attempts, visible_at, last_error} to
  the KV bucket `<stream>_RETRY` keyed by the message id. Every instance mirrors that bucket
  with a KV watch, so the per-key barrier survives restarts and fail-over.
- Per-key order across retries: a fetched message whose key has an earlier message in the
  bucket (waiting for its retry, or not back from the broker yet) is held, not handed out,
  and kept alive with in-progress acks so it does not burn deliveries.
- Dead letters: `dead` publishes the message with its reason to the stream `<stream>_DLQ`
  (subject `<prefix>.dlq`) and then terminates it; `replay_dead` republishes and deletes.
- `max_deliver` is enforced here, not by the consumer: a message delivered more than
  `max_deliver` times (naks and crash redeliveries alike) goes to the dead-letter stream
  with its last error. JetStream's own limit would stop redelivery with only an advisory,
  which is a silent drop.

Honest limits:
- Publish dedupe lasts the duplicate window only (SQLite's is forever); effects stay
  idempotent on their business key, so a late duplicate is absorbed downstream.
- Per-key order holds when one worker at a time pulls a partition. Two workers pulling the
  same partition concurrently split it without duplicates but may run two messages of one
  key at once: scale by adding partitions, share a durable for fail-over.
- `replay` of a message still pending leaves both copies (the memory/SQLite adapters
  replace it); the effect's idempotency absorbs it. Replayed copies get a fresh broker id
  `<msg_id>#replay-<uuid>`, and the Delivery reports `Isthmus-Msg-Id`.
- `now` is compared only with the `visible_at` values the caller gave `nak`; the broker's
  delay uses the real clock (`visible_at - time.time()`). Both agree when callers use
  `time.time()`.
- Held (key-blocked) messages count against the consumer's max_ack_pending (1000), and the
  partition count is fixed for the life of a stream (subjects carry it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Awaitable, Coroutine, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext

from isthmus.bus.nats_dead_letters import DeadLetterStream, quoted
from isthmus.bus.nats_held import Held, select
from isthmus.bus.nats_leases import JetStreamLeases
from isthmus.bus.nats_retries import Retry, RetryBucket
from isthmus.bus.nats_streams import declare, durable
from isthmus.bus.ports import DeadLetter, Delivery, Publish, once_per_id, partition_of
from isthmus.errors import TransientError

T = TypeVar("T")
_TIMEOUT = 10.0


class BusUnavailable(TransientError, RuntimeError):
    """The broker cannot be reached or refused the call: retry later."""


class NatsBus:
    """The bus port on NATS JetStream: one stream for the log, a dead-letter stream, and a
    key-value bucket for retry state and leases."""

    def __init__(
        self,
        servers: str = "nats://127.0.0.1:4222",
        *,
        stream: str = "ISTHMUS",
        partitions: int = 2,
        subject_prefix: str = "isthmus.events",
        dedupe_window_s: float = 120,
        max_deliver: int = 8,
        ack_wait_s: float = 30,
        replicas: int = 1,
    ) -> None:
        self.partitions = partitions
        self.stream, self.dlq, self.bucket = stream, f"{stream}_DLQ", f"{stream}_RETRY"
        self._prefix, self._dlq_subject = subject_prefix, f"{subject_prefix}.dlq"
        self._dedupe, self._max_deliver, self._ack_wait = dedupe_window_s, max_deliver, ack_wait_s
        self._replicas = replicas
        self._held: dict[int, Held] = {}  # stream seq -> message this instance holds
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name=f"natsbus-{stream}"
        )
        self._thread.start()
        self._closed = False
        try:
            self._call(self._open(servers))
        except BaseException:
            self._stop_loop()
            raise

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = _TIMEOUT) -> T:
        if self._closed:
            coro.close()
            raise BusUnavailable("bus is closed")
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            fut.cancel()
            raise BusUnavailable(f"NATS JetStream: {type(exc).__name__}: {exc}") from exc

    def _stop_loop(self) -> None:
        """Stop the private loop from any thread, even one running a loop of its own."""
        self._closed = True
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(
                    self._loop.shutdown_asyncgens(), self._loop
                ).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._loop.close()

    async def _open(self, servers: str) -> None:
        self._nc: Client = await nats.connect(
            servers,
            connect_timeout=2,
            name=self.stream,
            max_reconnect_attempts=2,
            reconnect_time_wait=0.5,
        )
        # Fail fast on the first connect; once up, reconnect forever (calls made during an
        # outage time out as BusUnavailable and succeed again after it).
        self._nc.options["max_reconnect_attempts"] = -1
        self._nc.options["reconnect_time_wait"] = 2
        self._js: JetStreamContext = self._nc.jetstream(timeout=5)
        kv, lease_kv = await declare(
            self._js,
            stream=self.stream,
            dlq=self.dlq,
            prefix=self._prefix,
            dlq_subject=self._dlq_subject,
            partitions=self.partitions,
            dedupe_window_s=self._dedupe,
            ack_wait_s=self._ack_wait,
            replicas=self._replicas,
        )
        self._retries = RetryBucket(kv)
        self._dead_letters = DeadLetterStream(self._js, self.dlq, self._dlq_subject)
        self._leases = JetStreamLeases(lease_kv, self._js, f"{self.stream}_LEASES")
        await self._retries.start()

    def _subject(self, key: str) -> str:
        return f"{self._prefix}.{partition_of(key, self.partitions)}.{key.encode().hex()}"

    async def _gather(self, futures: Sequence[Awaitable[T]]) -> list[T]:
        return list(await asyncio.wait_for(asyncio.gather(*futures), _TIMEOUT))

    async def _publish(self, items: Sequence[Publish], replay: bool) -> None:
        acks = []
        for p in items:
            broker_id = (
                f"{quoted(p.msg_id)}#replay-{uuid.uuid4().hex}" if replay else quoted(p.msg_id)
            )
            headers = {
                "Nats-Msg-Id": broker_id,
                "Isthmus-Msg-Id": quoted(p.msg_id),
                "Isthmus-Key": quoted(p.key),
                "Isthmus-Topic": quoted(p.topic),
            }
            acks.append(await self._js.publish_async(self._subject(p.key), p.body, headers=headers))
        await self._gather(acks)  # every PubAck in: the broker has them all

    # -- the port ---------------------------------------------------------------------------

    def publish(self, items: Sequence[Publish]) -> None:
        if items:
            self._call(self._publish(items, replay=False))

    def fetch(self, partition: int, limit: int, now: float) -> list[Delivery]:
        return self._call(self._fetch(partition, limit, now))

    async def _pull(self, partition: int, batch: int) -> list[Msg]:
        """One no-wait pull: whatever is available now, up to `batch`."""
        inbox = self._nc.new_inbox()
        sub = await self._nc.subscribe(inbox)
        try:
            await self._nc.publish(
                f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{durable(self.stream, partition)}",
                json.dumps({"batch": batch, "no_wait": True}).encode(),
                reply=inbox,
            )
            out: list[Msg] = []
            while len(out) < batch:
                try:
                    msg = await sub.next_msg(timeout=2)
                except nats.errors.TimeoutError:
                    break
                if msg.headers and "Status" in msg.headers:  # 404/408: nothing more now
                    break
                out.append(msg)
            return out
        finally:
            await sub.unsubscribe()

    async def _fetch(self, partition: int, limit: int, now: float) -> list[Delivery]:
        ready, _ = select(self._held, self._retries.state, partition, limit, now)
        if len(ready) < limit:
            for msg in await self._pull(partition, limit - len(ready)):
                await self._take(msg, partition)
            await self._drop_stale_barriers()
            ready, _ = select(self._held, self._retries.state, partition, limit, now)
        _, waiting = select(self._held, self._retries.state, partition, len(self._held), now)
        real = time.time()
        for seq in waiting:  # keep held messages alive without spending deliveries
            h = self._held[seq]
            if real - h.touched > self._ack_wait / 3:
                await h.msg.in_progress()
                h.touched = real
        out = []
        for h in ready:
            seq = h.msg.metadata.sequence.stream
            out.append(
                Delivery(
                    seq, h.msg_id, h.topic, h.key, h.msg.data, self._retries.attempts(h.msg_id, seq)
                )
            )
        return out

    async def _take(self, msg: Msg, partition: int) -> None:
        hdr = msg.headers or {}
        meta = msg.metadata
        h = Held(
            msg,
            partition,
            unquote(hdr.get("Isthmus-Msg-Id", "")),
            unquote(hdr.get("Isthmus-Topic", "")),
            unquote(hdr.get("Isthmus-Key", "")),
            meta.num_delivered,
            time.time(),
        )
        self._held[meta.sequence.stream] = h
        if h.delivered > self._max_deliver:
            state = self._retries.state.get(RetryBucket.key(h.msg_id))
            last = state.last_error if state else "none recorded (worker crash or ack timeout)"
            await self._dead(
                meta.sequence.stream,
                f"max_deliver {self._max_deliver} exhausted; last error: {last}",
                time.time(),
                h.delivered - 1,
            )

    async def _drop_stale_barriers(self) -> None:
        """A barrier whose message is long overdue and gone from the stream is stale."""
        real = time.time()
        for kv_key, r in list(self._retries.state.items()):
            if r.seq in self._held or real < r.due + self._ack_wait:
                continue
            try:
                await self._js.get_msg(self.stream, r.seq)
            except nats.js.errors.NotFoundError:
                await self._retries.delete(kv_key)

    def _pop(self, seq: int) -> Held:
        h = self._held.pop(seq, None)
        if h is None:
            raise BusUnavailable(f"delivery {seq} is not held by this worker (redelivered?)")
        return h

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            self._call(self._ack([d.seq for d in deliveries]))

    async def _ack(self, seqs: Sequence[int]) -> None:
        held = [self._pop(s) for s in seqs if s in self._held]
        for h in held:  # barrier first: a crash in between costs a redelivery, not a stall
            await self._retries.forget(h.msg_id)
        await self._gather([h.msg.ack_sync(timeout=5) for h in held])

    def nak(self, delivery: Delivery, error: str, visible_at: float) -> None:
        self._call(self._nak(delivery.seq, error, visible_at))

    async def _nak(self, seq: int, error: str, visible_at: float) -> None:
        h = self._pop(seq)
        attempts = self._retries.attempts(h.msg_id, seq) + 1
        delay = max(0.0, visible_at - time.time())
        state = Retry(seq, h.key, attempts, visible_at, time.time() + delay, error[:2000])
        await self._retries.put(h.msg_id, state)
        await h.msg.nak(delay=delay)
        await self._nc.flush()

    def dead(self, delivery: Delivery, reason: str, now: float) -> None:
        self._call(self._dead(delivery.seq, reason, now, None))

    async def _dead(self, seq: int, reason: str, now: float, attempts: int | None) -> None:
        h = self._pop(seq)
        if attempts is None:
            attempts = self._retries.attempts(h.msg_id, seq) + 1
        await self._dead_letters.put(
            h.msg.data,
            seq=seq,
            msg_id=h.msg_id,
            key=h.key,
            topic=h.topic,
            reason=reason,
            attempts=attempts,
            now=now,
        )
        await self._retries.forget(h.msg_id)
        await h.msg.term()
        await self._nc.flush()

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return self._call(self._dead_letters.read(limit))

    def replay(self, items: Sequence[Publish]) -> int:
        items = once_per_id(items)
        self._call(self._replay(items))
        return len(items)

    async def _replay(self, items: Sequence[Publish]) -> None:
        for p in items:
            await self._retries.forget(p.msg_id)
        await self._publish(items, replay=True)

    def replay_dead(self, seqs: Sequence[int] | None = None) -> int:
        return self._call(self._replay_dead(seqs))

    async def _replay_dead(self, seqs: Sequence[int] | None) -> int:
        wanted = None if seqs is None else set(seqs)
        n = 0
        for dl in await self._dead_letters.read(1_000_000):
            if wanted is None or dl.seq in wanted:
                await self._replay([Publish(dl.msg_id, dl.topic, dl.key, dl.body)])
                await self._dead_letters.delete(dl.seq)  # after the republish: no loss
                n += 1
        return n

    def pending(self) -> int:
        return self._call(self._pending())

    async def _pending(self) -> int:
        infos = [
            await self._js.consumer_info(self.stream, durable(self.stream, p))
            for p in range(self.partitions)
        ]
        return sum(int(i.num_pending or 0) + int(i.num_ack_pending or 0) for i in infos)

    def claim(self, name: str, owner: str, ttl_s: float, now: float) -> bool:
        return self._call(self._leases.claim(name, owner, ttl_s, now))

    def release(self, name: str, owner: str) -> None:
        self._call(self._leases.release(name, owner))

    def holders(self, prefix: str, now: float) -> int:
        return self._call(self._leases.holders(prefix, now))

    def close(self) -> None:
        if self._closed:
            return
        with contextlib.suppress(BusUnavailable):
            self._call(self._close())
        self._stop_loop()

    async def _close(self) -> None:
        for h in self._held.values():  # hand back what we hold: redelivered now, not later
            with contextlib.suppress(nats.errors.Error):
                await h.msg.nak()
        self._held.clear()
        await self._retries.stop()
        await self._nc.drain()
