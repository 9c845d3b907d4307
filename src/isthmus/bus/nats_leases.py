"""Leases on a NATS JetStream key-value bucket: compare-and-set on the entry revision.

A lease is an entry {owner, expires_at}; taking it writes with the revision last read
(`create` when absent, `update(last=...)` otherwise), so two claimants cannot both win.
An expired lease is taken over the same way. Used by `NatsBus.claim/release/holders`.
"""

from __future__ import annotations

import json

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue


class JetStreamLeases:
    """Named leases kept in a JetStream key-value bucket, taken by compare-and-set on the
    entry revision."""

    def __init__(self, kv: KeyValue, js: JetStreamContext, bucket: str) -> None:
        self._kv, self._js, self._bucket = kv, js, bucket

    async def _keys(self) -> list[str]:
        """The bucket's keys as the server lists them (its stream's subjects). Not
        `kv.keys()`: its watcher can end the listing before entries already on their way
        are seen (nats-io/nats.py#842), and on a busy machine `holders` then missed live
        leases."""
        prefix = f"$KV.{self._bucket}."
        info = await self._js.stream_info(f"KV_{self._bucket}", subjects_filter=f"{prefix}>")
        return [subject[len(prefix) :] for subject in info.state.subjects or {}]

    @staticmethod
    def _key(name: str) -> str:
        return name.encode().hex()

    async def claim(self, name: str, owner: str, ttl_s: float, now: float) -> bool:
        key, value = (
            self._key(name),
            json.dumps({"owner": owner, "expires_at": now + ttl_s}).encode(),
        )
        try:
            entry = await self._kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            entry = None
        try:
            if entry is None or not entry.value:
                if entry is None:
                    await self._kv.create(key, value)
                else:  # deleted marker: take it at its revision
                    await self._kv.update(key, value, last=entry.revision)
                return True
            held = json.loads(entry.value)
            if held["owner"] != owner and held["expires_at"] > now:
                return False
            await self._kv.update(key, value, last=entry.revision)
            return True
        except nats.js.errors.KeyWrongLastSequenceError:
            return False  # someone else wrote it first

    async def release(self, name: str, owner: str) -> None:
        key = self._key(name)
        try:
            entry = await self._kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return
        if entry.value and json.loads(entry.value)["owner"] == owner:
            await self._kv.delete(key)

    async def holders(self, prefix: str, now: float) -> int:
        count = 0
        for key in await self._keys():
            if not bytes.fromhex(key).decode().startswith(prefix):
                continue
            try:
                entry = await self._kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                continue
            if entry.value and json.loads(entry.value)["expires_at"] > now:
                count += 1
        return count
