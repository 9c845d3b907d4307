"""Scale-out bus: the event log as a NATS JetStream stream, behind the same port as SQLite.

Why: in scale-out mode listeners and workers run on several machines, and consumer groups,
replication and redelivery must be the broker's (DESIGN.md, "Two runtime modes"). This
adapter is a synchronous facade (the port is synchronous) over nats-py's asyncio client,
which runs on a private event loop in a daemon thread. Every nats error leaves as
`BusUnavailable` ("retry later"), raised from the original.

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
- The retry bucket is the authority; each instance's copy follows it through a KV watch,
  so another worker's fresh nak reaches it after the watch's latency (milliseconds).
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
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, unquote

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.kv import KeyValue

from isthmus.bus.nats_leases import JetStreamLeases
from isthmus.bus.ports import DeadLetter, Delivery, Publish, once_per_id, partition_of
from isthmus.errors import TransientError

T = TypeVar("T")
_TIMEOUT = 10.0


class BusUnavailable(TransientError, RuntimeError):
    """The broker cannot be reached or refused the call: retry later."""


def _q(text: str) -> str:
    return quote(text, safe="")


def _dead_letters(raws: Sequence[Any]) -> list[DeadLetter]:
    out = []
    for raw in raws:
        h = raw.headers or {}
        out.append(
            DeadLetter(
                raw.seq,
                unquote(h["Isthmus-Msg-Id"]),
                unquote(h["Isthmus-Topic"]),
                unquote(h["Isthmus-Key"]),
                int(h["Isthmus-Attempts"]),
                unquote(h["Isthmus-Reason"]),
                float(h["Isthmus-Failed-At"]),
                raw.data or b"",
            )
        )
    return out


@dataclass
class _Held:
    msg: Msg
    partition: int
    msg_id: str
    topic: str
    key: str
    delivered: int
    touched: float


@dataclass(frozen=True)
class _Retry:
    seq: int
    key: str
    attempts: int
    visible_at: float
    due: float  # real-clock time the broker redelivers
    last_error: str


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
        self._held: dict[int, _Held] = {}  # stream seq -> message this instance holds
        self._retry: dict[str, _Retry] = {}  # KV key -> mirrored retry state
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
        await self._ensure_stream(
            StreamConfig(
                name=self.stream,
                subjects=[f"{self._prefix}.*.*"],
                storage=StorageType.FILE,
                retention=RetentionPolicy.WORK_QUEUE,
                duplicate_window=self._dedupe,
                num_replicas=self._replicas,
            )
        )
        await self._ensure_stream(
            StreamConfig(
                name=self.dlq,
                subjects=[self._dlq_subject],
                storage=StorageType.FILE,
                duplicate_window=self._dedupe,
                num_replicas=self._replicas,
            )
        )
        for p in range(self.partitions):
            await self._js.add_consumer(
                self.stream,
                ConsumerConfig(
                    durable_name=self._durable(p),
                    filter_subject=f"{self._prefix}.{p}.*",
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=self._ack_wait,
                    max_deliver=-1,
                ),
            )
        try:
            self._kv: KeyValue = await self._js.key_value(self.bucket)
        except nats.js.errors.BucketNotFoundError:
            self._kv = await self._js.create_key_value(
                bucket=self.bucket, history=1, storage=StorageType.FILE, replicas=self._replicas
            )
        try:
            lease_kv = await self._js.key_value(f"{self.stream}_LEASES")
        except nats.js.errors.BucketNotFoundError:
            lease_kv = await self._js.create_key_value(
                bucket=f"{self.stream}_LEASES",
                history=1,
                storage=StorageType.FILE,
                replicas=self._replicas,
            )
        self._leases = JetStreamLeases(lease_kv, self._js, f"{self.stream}_LEASES")
        self._watcher = await self._kv.watchall()
        async for entry in self._watcher:  # the initial values, up to the None marker
            if entry is None:
                break
            self._mirror(entry)
        self._watch_task = asyncio.ensure_future(self._watch())

    async def _ensure_stream(self, config: StreamConfig) -> None:
        assert config.name is not None
        try:
            await self._js.stream_info(config.name)
        except nats.js.errors.NotFoundError:
            await self._js.add_stream(config)

    def _mirror(self, entry: KeyValue.Entry) -> None:
        if entry.operation in ("DEL", "PURGE") or not entry.value:
            self._retry.pop(entry.key, None)
        else:
            self._retry[entry.key] = _Retry(**json.loads(entry.value))

    async def _watch(self) -> None:
        async for entry in self._watcher:
            if entry is not None:
                self._mirror(entry)

    def _durable(self, partition: int) -> str:
        return f"{self.stream}_p{partition}"

    def _subject(self, key: str) -> str:
        return f"{self._prefix}.{partition_of(key, self.partitions)}.{key.encode().hex()}"

    @staticmethod
    def _kv_key(msg_id: str) -> str:
        return msg_id.encode().hex()

    async def _gather(self, futures: Sequence[Awaitable[T]]) -> list[T]:
        return list(await asyncio.wait_for(asyncio.gather(*futures), _TIMEOUT))

    async def _publish(self, items: Sequence[Publish], replay: bool) -> None:
        acks = []
        for p in items:
            broker_id = f"{_q(p.msg_id)}#replay-{uuid.uuid4().hex}" if replay else _q(p.msg_id)
            headers = {
                "Nats-Msg-Id": broker_id,
                "Isthmus-Msg-Id": _q(p.msg_id),
                "Isthmus-Key": _q(p.key),
                "Isthmus-Topic": _q(p.topic),
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
                f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self._durable(partition)}",
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

    def _select(self, partition: int, limit: int, now: float) -> tuple[list[_Held], list[int]]:
        by_seq = {r.seq: r for r in self._retry.values()}
        absent: dict[str, int] = {}
        for r in self._retry.values():
            if r.seq not in self._held:
                absent[r.key] = min(r.seq, absent.get(r.key, r.seq))
        out: list[_Held] = []
        waiting: list[int] = []
        blocked: set[str] = set()
        for seq in sorted(s for s, h in self._held.items() if h.partition == partition):
            h = self._held[seq]
            retry = by_seq.get(seq)
            if (
                h.key in blocked
                or absent.get(h.key, seq) < seq
                or (retry is not None and retry.visible_at > now)
            ):
                blocked.add(h.key)
                waiting.append(seq)
            elif len(out) < limit:
                out.append(h)
        return out, waiting

    async def _fetch(self, partition: int, limit: int, now: float) -> list[Delivery]:
        ready, _ = self._select(partition, limit, now)
        if len(ready) < limit:
            for msg in await self._pull(partition, limit - len(ready)):
                await self._take(msg, partition)
            await self._drop_stale_barriers()
            ready, _ = self._select(partition, limit, now)
        _, waiting = self._select(partition, len(self._held), now)
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
                Delivery(seq, h.msg_id, h.topic, h.key, h.msg.data, self._attempts(h.msg_id, seq))
            )
        return out

    def _attempts(self, msg_id: str, seq: int) -> int:
        """Failed attempts (naks) recorded for this copy of the message; 0 when none."""
        r = self._retry.get(self._kv_key(msg_id))
        return r.attempts if r is not None and r.seq == seq else 0

    async def _take(self, msg: Msg, partition: int) -> None:
        hdr = msg.headers or {}
        meta = msg.metadata
        h = _Held(
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
            state = self._retry.get(self._kv_key(h.msg_id))
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
        for kv_key, r in list(self._retry.items()):
            if r.seq in self._held or real < r.due + self._ack_wait:
                continue
            try:
                await self._js.get_msg(self.stream, r.seq)
            except nats.js.errors.NotFoundError:
                self._retry.pop(kv_key, None)
                await self._kv.delete(kv_key)

    def _pop(self, seq: int) -> _Held:
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
            await self._forget(h.msg_id)
        await self._gather([h.msg.ack_sync(timeout=5) for h in held])

    async def _forget(self, msg_id: str) -> None:
        if self._retry.pop(self._kv_key(msg_id), None) is not None:
            await self._kv.delete(self._kv_key(msg_id))

    def nak(self, delivery: Delivery, error: str, visible_at: float) -> None:
        self._call(self._nak(delivery.seq, error, visible_at))

    async def _nak(self, seq: int, error: str, visible_at: float) -> None:
        h = self._pop(seq)
        kv_key = self._kv_key(h.msg_id)
        attempts = self._attempts(h.msg_id, seq) + 1
        delay = max(0.0, visible_at - time.time())
        state = _Retry(seq, h.key, attempts, visible_at, time.time() + delay, error[:2000])
        self._retry[kv_key] = state
        await self._kv.put(kv_key, json.dumps(state.__dict__).encode())
        await h.msg.nak(delay=delay)
        await self._nc.flush()

    def dead(self, delivery: Delivery, reason: str, now: float) -> None:
        self._call(self._dead(delivery.seq, reason, now, None))

    async def _dead(self, seq: int, reason: str, now: float, attempts: int | None) -> None:
        h = self._pop(seq)
        if attempts is None:
            attempts = self._attempts(h.msg_id, seq) + 1
        headers = {
            "Nats-Msg-Id": f"{_q(h.msg_id)}#dead-{seq}",
            "Isthmus-Msg-Id": _q(h.msg_id),
            "Isthmus-Key": _q(h.key),
            "Isthmus-Topic": _q(h.topic),
            "Isthmus-Reason": _q(reason[:2000]),
            "Isthmus-Attempts": str(attempts),
            "Isthmus-Failed-At": repr(now),
        }
        await self._js.publish(self._dlq_subject, h.msg.data, headers=headers)
        await self._forget(h.msg_id)
        await h.msg.term()
        await self._nc.flush()

    async def _dead_msgs(self, limit: int) -> list[Any]:
        out: list[Any] = []
        seq = 1
        while len(out) < limit:
            try:
                raw = await self._js.get_msg(self.dlq, seq, subject=self._dlq_subject, next=True)
            except nats.js.errors.NotFoundError:
                break
            out.append(raw)
            seq = (raw.seq or seq) + 1
        return out

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return _dead_letters(self._call(self._dead_msgs(limit)))

    def replay(self, items: Sequence[Publish]) -> int:
        items = once_per_id(items)
        self._call(self._replay(items))
        return len(items)

    async def _replay(self, items: Sequence[Publish]) -> None:
        for p in items:
            await self._forget(p.msg_id)
        await self._publish(items, replay=True)

    def replay_dead(self, seqs: Sequence[int] | None = None) -> int:
        return self._call(self._replay_dead(seqs))

    async def _replay_dead(self, seqs: Sequence[int] | None) -> int:
        wanted = None if seqs is None else set(seqs)
        n = 0
        for dl in _dead_letters(await self._dead_msgs(1_000_000)):
            if wanted is None or dl.seq in wanted:
                await self._replay([Publish(dl.msg_id, dl.topic, dl.key, dl.body)])
                await self._js.delete_msg(self.dlq, dl.seq)  # after the republish: no loss
                n += 1
        return n

    def pending(self) -> int:
        return self._call(self._pending())

    async def _pending(self) -> int:
        infos = [
            await self._js.consumer_info(self.stream, self._durable(p))
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
        self._watch_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, nats.errors.Error):
            await self._watcher.stop()  # type: ignore[no-untyped-call]
            await self._watch_task
        await self._nc.drain()
