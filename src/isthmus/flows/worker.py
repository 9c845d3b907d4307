"""The bus consumer: apply events in per-key order, commit effects, then settle deliveries.

A batch of deliveries from one partition runs in one store transaction, each message inside
its own savepoint, so one bad message never undoes its neighbours. The deliveries are acked
only after the commit (at least once); effects are keyed, so a redelivery after a crash
changes nothing. A failed message is nak'ed with persisted backoff, and the later messages
of its key wait behind it; when its attempts run out it goes to the dead-letter queue with
the reason, and the key moves on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from isthmus.bus.ports import Bus, Delivery
from isthmus.flows.errors import PermanentError, TransientError
from isthmus.flows.processor import Processor
from isthmus.flows.retry import RetryPolicy
from isthmus.model.envelope import decode_envelope
from isthmus.store.ports import Store

log = logging.getLogger(__name__)


@dataclass
class WorkerStats:
    applied: int = 0
    retried: int = 0
    dead: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


class Worker:
    def __init__(self, bus: Bus, store: Store, processor: Processor, policy: RetryPolicy,
                 *, partitions: Sequence[int], batch: int = 256) -> None:
        self._bus, self._store, self._proc, self._policy = bus, store, processor, policy
        self._parts = list(partitions)
        self._batch = batch
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, partition: int, now: float | None = None) -> int:
        """Process one batch of one partition; returns how many deliveries were settled."""
        now = time.time() if now is None else now
        deliveries = self._bus.fetch(partition, self._batch, now)
        if not deliveries:
            return 0
        done: list[Delivery] = []
        failed: list[tuple[Delivery, Exception]] = []
        blocked: set[str] = set()
        with self._store.transaction() as tx:
            for d in deliveries:
                if d.key in blocked:
                    continue
                try:
                    env = decode_envelope(d.body)
                    with tx.savepoint():
                        outcome = self._proc.handle(tx, env)
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
            log.warning("dead-lettering %s after %d attempts: %s", d.msg_id, attempts, reason)
            self._bus.dead(d, reason, now)
            self.stats.dead += 1
            return
        delay = exc.retry_after if isinstance(exc, TransientError) and \
            exc.retry_after is not None else self._policy.delay(attempts)
        self._bus.nak(d, reason, now + delay)
        self.stats.retried += 1

    def drain(self, max_rounds: int = 1_000_000) -> int:
        """Process until no partition has visible work (tests, demo, CLI replay)."""
        total = 0
        for _ in range(max_rounds):
            n = sum(self.run_once(p) for p in self._parts)
            total += n
            if n == 0:
                break
        return total

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="worker", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        idle = 0.005
        while not self._stop.is_set():
            try:
                n = sum(self.run_once(p) for p in self._parts)
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
