"""The retry state of the NATS bus: a JetStream key-value bucket, mirrored by a KV watch.

`NatsBus.nak` asks the broker to redeliver after a delay (JetStream keeps the delay and
the delivery count) and writes {seq, key, attempts, visible_at, due, last_error} to the
bucket `<stream>_RETRY`, keyed by the message id (hex). Every instance mirrors the bucket
with a KV watch, so the per-key barrier (a message is held while its key has an earlier
one waiting for its retry) survives restarts and fail-over. The bucket is the authority;
another worker's fresh nak reaches this instance's copy after the watch's latency
(milliseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass

import nats.errors
from nats.js.kv import KeyValue


@dataclass(frozen=True)
class Retry:
    """One message's retry state, as the bucket keeps it."""

    seq: int
    key: str
    attempts: int
    visible_at: float
    due: float  # real-clock time the broker redelivers
    last_error: str


class RetryBucket:
    """The `<stream>_RETRY` bucket and this instance's copy of it (`state`, by KV key)."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv
        self.state: dict[str, Retry] = {}  # KV key -> mirrored retry state

    async def start(self) -> None:
        """Read the bucket's values, then follow its changes in a task."""
        self._watcher = await self.kv.watchall()
        async for entry in self._watcher:  # the initial values, up to the None marker
            if entry is None:
                break
            self._mirror(entry)
        self._watch_task = asyncio.ensure_future(self._watch())

    def _mirror(self, entry: KeyValue.Entry) -> None:
        if entry.operation in ("DEL", "PURGE") or not entry.value:
            self.state.pop(entry.key, None)
        else:
            self.state[entry.key] = Retry(**json.loads(entry.value))

    async def _watch(self) -> None:
        async for entry in self._watcher:
            if entry is not None:
                self._mirror(entry)

    @staticmethod
    def key(msg_id: str) -> str:
        """The KV key of a message id."""
        return msg_id.encode().hex()

    def attempts(self, msg_id: str, seq: int) -> int:
        """Failed attempts (naks) recorded for this copy of the message; 0 when none."""
        r = self.state.get(self.key(msg_id))
        return r.attempts if r is not None and r.seq == seq else 0

    async def put(self, msg_id: str, state: Retry) -> None:
        """Record a message's retry state, here and in the bucket."""
        kv_key = self.key(msg_id)
        self.state[kv_key] = state
        await self.kv.put(kv_key, json.dumps(state.__dict__).encode())

    async def forget(self, msg_id: str) -> None:
        """Drop a message's retry state (acked, dead or replayed), if it has one."""
        if self.state.pop(self.key(msg_id), None) is not None:
            await self.kv.delete(self.key(msg_id))

    async def delete(self, kv_key: str) -> None:
        """Drop the retry state under a KV key (a stale barrier)."""
        self.state.pop(kv_key, None)
        await self.kv.delete(kv_key)

    async def stop(self) -> None:
        """Stop following the bucket."""
        self._watch_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, nats.errors.Error):
            await self._watcher.stop()  # type: ignore[no-untyped-call]
            await self._watch_task
