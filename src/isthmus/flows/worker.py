"""The bus consumer: apply events in per-key order, commit effects, then settle deliveries.

A batch of deliveries from one partition runs in one store transaction, each message inside
its own savepoint, so one bad message never undoes its neighbours. The deliveries are acked
only after the commit (at least once); effects are keyed, so a redelivery after a crash
changes nothing. A failed message is nak'ed with persisted backoff, and the later messages
of its key wait behind it; when its attempts run out it goes to the dead-letter queue with
the reason, and the key moves on.

Before its flow, an event with a business key passes the gate of `flows.identity`, in the
same savepoint: the same fact from another envelope is a duplicate and changes nothing,
other content for it is a conflict work item; both are outcomes, counted like the others.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from isthmus.bus.ports import Bus, Delivery
from isthmus.flows import identity
from isthmus.flows.errors import PermanentError, TransientError
from isthmus.flows.processor import Processor
from isthmus.flows.retry import RetryPolicy
from isthmus.model.envelope import decode_envelope
from isthmus.observe import logs, tracing
from isthmus.store.ports import Store, Tx

log = logging.getLogger(__name__)


class _BatchTx:
    """The store transaction of one batch, remembering mapping overrides it has read: the
    charge flow asks for three per charge, and they change only by operator action."""

    def __init__(self, tx: Tx) -> None:
        self._tx = tx
        self._overrides: dict[tuple[str, str], str | None] = {}

    def mapping_override(self, table: str, code: str) -> str | None:
        key = (table, code)
        if key not in self._overrides:
            self._overrides[key] = self._tx.mapping_override(table, code)
        return self._overrides[key]

    def set_mapping_override(self, table: str, code: str, value: str) -> None:
        self._tx.set_mapping_override(table, code, value)
        self._overrides[(table, code)] = value

    def __getattr__(self, name: str) -> Any:
        # kept on the instance: the next use of the method skips this lookup
        found = getattr(self._tx, name)
        setattr(self, name, found)
        return found


@dataclass
class WorkerStats:
    applied: int = 0
    retried: int = 0
    dead: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


class Worker:
    """Consumes the partitions it holds a lease on (see `Bus.claim`).

    Workers in several processes share the partitions out: each heartbeats a "worker:ID"
    lease, takes at most ceil(partitions / live workers) partition leases, and gives extras
    back when another worker joins. A killed worker stops renewing; its leases expire after
    `lease_ttl_s` and the survivors take its partitions over, so one process at a time
    consumes a partition and per-key order holds across processes.
    """

    def __init__(self, bus: Bus, store: Store, processor: Processor, policy: RetryPolicy,
                 *, partitions: Sequence[int], batch: int = 256, lease_ttl_s: float = 15.0,
                 owner: str | None = None) -> None:
        self._bus, self._store, self._proc, self._policy = bus, store, processor, policy
        self._parts = list(partitions)
        self._batch = batch
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.owner = owner or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._ttl = lease_ttl_s
        self.owned: set[int] = set()
        self._renewed = 0.0

    def rebalance(self, now: float) -> set[int]:
        """Renew, give back or take partition leases; returns the partitions held now."""
        bus, me, ttl = self._bus, self.owner, self._ttl
        bus.claim(f"worker:{me}", me, ttl, now)
        cap = -(-len(self._parts) // max(1, bus.holders("worker:", now)))
        self.owned = {p for p in self.owned if bus.claim(f"partition:{p}", me, ttl, now)}
        for p in sorted(self.owned, reverse=True)[:max(0, len(self.owned) - cap)]:
            bus.release(f"partition:{p}", me)
            self.owned.discard(p)
        start = zlib.crc32(me.encode()) % max(1, len(self._parts))
        for p in self._parts[start:] + self._parts[:start]:
            if len(self.owned) >= cap:
                break
            if p not in self.owned and bus.claim(f"partition:{p}", me, ttl, now):
                self.owned.add(p)
        self._renewed = now
        return self.owned

    def release_all(self) -> None:
        for p in sorted(self.owned):
            self._bus.release(f"partition:{p}", self.owner)
        self.owned.clear()
        self._bus.release(f"worker:{self.owner}", self.owner)
        self._renewed = 0.0

    def run_once(self, partition: int, now: float | None = None) -> int:
        """Process one batch of one partition; returns how many deliveries were settled."""
        now = time.time() if now is None else now
        deliveries = self._bus.fetch(partition, self._batch, now)
        if not deliveries:
            return 0
        done: list[Delivery] = []
        failed: list[tuple[Delivery, Exception]] = []
        blocked: set[str] = set()
        with self._store.transaction() as raw_tx:
            tx = _BatchTx(raw_tx)
            for d in deliveries:
                if d.key in blocked:
                    continue
                try:
                    env = decode_envelope(d.body)
                    with logs.bound(correlation=env.correlation_id, event=env.event_id,
                                    control=env.source.control_id), \
                            tracing.span("isthmus.apply", correlation=env.correlation_id,
                                         event_id=env.event_id, event_type=env.type,
                                         partition=partition) as sp, tx.savepoint():
                        outcome = identity.gate(tx, env) or self._proc.handle(tx, env)
                        if sp is not None:
                            sp.set_attribute("isthmus.outcome", outcome)
                        if log.isEnabledFor(logging.DEBUG):
                            log.debug("%s %s", env.type, outcome)
                    self.stats.outcomes[outcome] = self.stats.outcomes.get(outcome, 0) + 1
                    done.append(d)
                except msgspec.DecodeError as exc:
                    failed.append((d, PermanentError(f"undecodable envelope: {exc}")))
                    blocked.add(d.key)
                except Exception as exc:  # noqa: BLE001 - classified below, never lost
                    failed.append((d, exc))
                    blocked.add(d.key)
        self._bus.ack(done)
        self.stats.applied += len(done)
        for d, error in failed:
            self._settle_failure(d, error, now)
        return len(done) + len(failed)

    def _settle_failure(self, d: Delivery, exc: Exception, now: float) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        attempts = d.attempts + 1
        if isinstance(exc, PermanentError) or self._policy.exhausted(attempts):
            with logs.bound(event=d.msg_id):
                log.warning("dead-lettering %s after %d attempts: %s", d.msg_id, attempts,
                            reason)
            self._bus.dead(d, reason, now)
            self.stats.dead += 1
            return
        delay = exc.retry_after if isinstance(exc, TransientError) and \
            exc.retry_after is not None else self._policy.delay(attempts)
        self._bus.nak(d, reason, now + delay)
        self.stats.retried += 1

    def drain(self, max_rounds: int = 1_000_000) -> int:
        """Process the leased partitions until none has visible work (tests, demo, CLI
        replay); partitions another live worker holds are left to it."""
        total = 0
        try:
            for _ in range(max_rounds):
                if time.time() - self._renewed > self._ttl / 3:
                    self.rebalance(time.time())
                n = sum(self.run_once(p) for p in sorted(self.owned))
                total += n
                if n == 0:
                    break
        finally:
            self.release_all()
        return total

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="worker", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        idle = 0.005
        while not self._stop.is_set():
            try:
                if time.time() - self._renewed > self._ttl / 5:
                    self.rebalance(time.time())
                n = sum(self.run_once(p) for p in sorted(self.owned))
            except Exception as exc:  # noqa: BLE001 - storage hiccup: back off, keep going
                log.error("worker round failed: %s", exc)
                n = 0
                self._stop.wait(1.0)
            idle = 0.005 if n else min(idle * 2, 0.2)
            if not n:
                self._stop.wait(idle)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        try:
            self.release_all()
        except Exception as exc:  # noqa: BLE001 - leases expire by themselves
            log.warning("could not release leases: %s", exc)
