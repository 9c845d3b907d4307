"""The bus port: a durable, partitioned log with per-key order, retries and a dead-letter queue.

Contract (every adapter passes tests/bus/contract.py):
- `publish` is idempotent on `msg_id`: publishing the same id twice stores one message.
- `fetch(partition)` hands out visible messages of one partition in publish order, and never
  a message whose key has an earlier message still pending (waiting for a retry): per-key
  order survives retries.
- A delivery is settled by `ack` (the effect is committed), `nak` (retry later; the attempt
  count, next-visible time and last error are persisted) or `dead` (to the dead-letter queue
  with its reason). An unsettled delivery is handed out again: delivery is at least once.
- `replay` puts messages back at the end of the log under the same id, after a fix.
- Leases: `claim(name, owner, ttl_s, now)` takes or renews a named lease that expires unless
  renewed; one owner at a time. Workers lease partitions ("partition:N") so that one process
  at a time consumes a partition (per-key order across processes), and heartbeat
  ("worker:ID") so that they can share the partitions out; a killed worker's leases expire
  and the survivors take its partitions over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Publish:
    """A message to publish: its idempotency id, topic, ordering key and encoded body."""

    msg_id: str
    topic: str
    key: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message handed out by `fetch`, with its log position and how many attempts it has had;
    settle it with `ack`, `nak` or `dead`."""

    seq: int
    msg_id: str
    topic: str
    key: str
    body: bytes
    attempts: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message in the dead-letter queue: why it was dead-lettered, when, and after how many
    attempts."""

    seq: int
    msg_id: str
    topic: str
    key: str
    attempts: int
    reason: str
    failed_at: float
    body: bytes


def once_per_id(items: Sequence[Publish]) -> list[Publish]:
    """`items` with each msg_id once (the last one), in the order of those last ones."""
    last = {p.msg_id: i for i, p in enumerate(items)}
    return [p for i, p in enumerate(items) if last[p.msg_id] == i]


def partition_of(key: str, partitions: int) -> int:
    """Stable partition for a business key (FNV-1a, not Python's salted hash)."""
    h = 0x811C9DC5
    for b in key.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h % partitions


class Bus(Protocol):
    """The bus port (see the module docstring for the contract every adapter passes)."""

    partitions: int

    def publish(self, items: Sequence[Publish]) -> None: ...

    def fetch(self, partition: int, limit: int, now: float) -> list[Delivery]: ...

    def ack(self, deliveries: Sequence[Delivery]) -> None: ...

    def nak(self, delivery: Delivery, error: str, visible_at: float) -> None: ...

    def dead(self, delivery: Delivery, reason: str, now: float) -> None: ...

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...

    def replay(self, items: Sequence[Publish]) -> int:
        """Put `items` back at the end of the log under their ids; an id given twice (two
        source messages carrying the same event) goes back once, with its last body.
        Returns how many were put back."""
        ...

    def replay_dead(self, seqs: Sequence[int] | None = None) -> int: ...

    def pending(self) -> int: ...

    def claim(self, name: str, owner: str, ttl_s: float, now: float) -> bool: ...

    def release(self, name: str, owner: str) -> None: ...

    def holders(self, prefix: str, now: float) -> int: ...

    def close(self) -> None: ...
