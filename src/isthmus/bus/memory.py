"""In-memory bus for fast unit tests: the same contract as the SQLite and NATS adapters."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from isthmus.bus.ports import DeadLetter, Delivery, Publish, once_per_id, partition_of


@dataclass
class _Row:
    seq: int
    item: Publish
    part: int
    status: int = 0
    attempts: int = 0
    visible_at: float = 0.0
    last_error: str = ""
    settled_at: float = 0.0


class MemoryBus:
    """The bus port in process memory, for tests and single-process runs: nothing survives a
    restart."""

    def __init__(self, *, partitions: int = 2) -> None:
        self.partitions = partitions
        self._rows: dict[int, _Row] = {}
        self._ids: dict[str, int] = {}
        self._seq = 0
        self._lock = threading.Lock()
        self._leases: dict[str, tuple[str, float]] = {}

    def _append(self, p: Publish) -> None:
        self._seq += 1
        self._rows[self._seq] = _Row(self._seq, p, partition_of(p.key, self.partitions))
        self._ids[p.msg_id] = self._seq

    def publish(self, items: Sequence[Publish]) -> None:
        with self._lock:
            for p in items:
                if p.msg_id not in self._ids:
                    self._append(p)

    def fetch(self, partition: int, limit: int, now: float) -> list[Delivery]:
        out: list[Delivery] = []
        blocked: set[str] = set()
        with self._lock:
            for r in sorted(self._rows.values(), key=lambda r: r.seq):
                if r.part != partition or r.status != 0 or r.item.key in blocked:
                    continue
                if r.visible_at > now:
                    blocked.add(r.item.key)
                    continue
                p = r.item
                out.append(Delivery(r.seq, p.msg_id, p.topic, p.key, p.body, r.attempts))
                if len(out) >= limit:
                    break
        return out

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        with self._lock:
            for d in deliveries:
                if d.seq in self._rows:
                    self._rows[d.seq].status = 1

    def nak(self, delivery: Delivery, error: str, visible_at: float) -> None:
        with self._lock:
            r = self._rows[delivery.seq]
            r.attempts += 1
            r.visible_at = visible_at
            r.last_error = error

    def dead(self, delivery: Delivery, reason: str, now: float) -> None:
        with self._lock:
            r = self._rows[delivery.seq]
            r.status, r.attempts, r.last_error, r.settled_at = 2, r.attempts + 1, reason, now

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        with self._lock:
            dead = [r for r in sorted(self._rows.values(), key=lambda r: r.seq) if r.status == 2]
        return [
            DeadLetter(
                r.seq,
                r.item.msg_id,
                r.item.topic,
                r.item.key,
                r.attempts,
                r.last_error,
                r.settled_at,
                r.item.body,
            )
            for r in dead[:limit]
        ]

    def replay(self, items: Sequence[Publish]) -> int:
        items = once_per_id(items)
        with self._lock:
            for p in items:
                old = self._ids.pop(p.msg_id, None)
                if old is not None:
                    del self._rows[old]
                self._append(p)
        return len(items)

    def replay_dead(self, seqs: Sequence[int] | None = None) -> int:
        with self._lock:
            dead = [
                r.item
                for r in self._rows.values()
                if r.status == 2 and (seqs is None or r.seq in seqs)
            ]
        return self.replay(dead) if dead else 0

    def pending(self) -> int:
        with self._lock:
            return sum(1 for r in self._rows.values() if r.status == 0)

    def claim(self, name: str, owner: str, ttl_s: float, now: float) -> bool:
        with self._lock:
            held = self._leases.get(name)
            if held is not None and held[0] != owner and held[1] > now:
                return False
            self._leases[name] = (owner, now + ttl_s)
            return True

    def release(self, name: str, owner: str) -> None:
        with self._lock:
            if self._leases.get(name, ("", 0.0))[0] == owner:
                del self._leases[name]

    def holders(self, prefix: str, now: float) -> int:
        with self._lock:
            return sum(
                1 for n, (_, exp) in self._leases.items() if n.startswith(prefix) and exp > now
            )

    def close(self) -> None:
        self._rows.clear()
