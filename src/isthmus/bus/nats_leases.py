"""Leases on a NATS JetStream key-value bucket: compare-and-set on the entry revision.

A lease is an entry {owner, expires_at}; taking it writes with the revision last read
(`create` when absent, `update(last=...)` otherwise), so two claimants cannot both win.
An expired lease is taken over the same way. Used by `NatsBus.claim/release/holders`.
"""

from __future__ import annotations

import json

import nats.js.errors
from nats.js.kv import KeyValue


class JetStreamLeases:
    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @staticmethod
    def _key(name: str) -> str:
        return name.encode().hex()

    async def claim(self, name: str, owner: str, ttl_s: float, now: float) -> bool:
        key, value = self._key(name), json.dumps(
            {"owner": owner, "expires_at": now + ttl_s}).encode()
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
        try:
            keys = await self._kv.keys()
        except nats.js.errors.NoKeysError:
            return 0
        count = 0
        for key in keys:
            if not bytes.fromhex(key).decode().startswith(prefix):
                continue
            try:
                entry = await self._kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                continue
            if entry.value and json.loads(entry.value)["expires_at"] > now:
                count += 1
        return count
