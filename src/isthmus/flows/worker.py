"""The bus consumer: apply events in per-key order, commit effects, then settle deliveries.

A batch of deliveries from one partition runs in one store transaction; when one of its
messages fails, the batch runs again with each message inside its own savepoint, so one bad
message never undoes its neighbours (`Worker.run_once`). The deliveries are acked
only after the commit (at least once); effects are keyed, so a redelivery after a crash
changes nothing. A failed message is nak'ed with persisted backoff, and the later messages
of its key wait behind it; when its attempts run out it goes to the dead-letter queue with
the reason, and the key moves on.

Before its flow, an event with a business key passes the gate of `flows.identity`, in the
same transaction (and savepoint, when isolated): the same fact from another envelope is a
duplicate and changes nothing, other content for it is a conflict work item; both are
outcomes, counted like the others.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
import zlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from isthmus.bus.ports import Bus, Delivery
from isthmus.flows import identity
from isthmus.flows.clock import Clock
from isthmus.flows.errors import PermanentError, TransientError
from isthmus.flows.processor import Processor
from isthmus.flows.retry import RetryPolicy
from isthmus.model.envelope import Envelope, decode_envelope
from isthmus.observe import logs, tracing
from isthmus.store.ports import HeldEvent, Store, Tx

log = logging.getLogger(__name__)


class _BatchTx:
    """The store transaction of one batch, remembering mapping overrides it has read (the
    charge flow asks for three per charge, and they change only by operator action), and
    which of the batch's events have a work item or a released hold to settle when they
    post (`Tx.pending_events`, read once): for the others, `close_work_items` and
    `held_posted` have nothing to change and write nothing."""

    def __init__(
        self, tx: Tx, event_ids: Collection[str] = (), *, keep_states: bool = False
    ) -> None:
        self._tx = tx
        self._overrides: dict[tuple[str, str], str | None] = {}
        self._batch = frozenset(event_ids)
        self._pending: set[str] | None = None
        # Flow state read or written in this batch, served again from memory, and written
        # once at its end (`flush`): the FT1 lines of one message name the same account
        # and visit. Only when no savepoint can undo a write behind it (`keep_states`: the
        # batch's first pass, all or nothing).
        self._states: dict[str, bytes | None] | None = {} if keep_states else None
        self._dirty: dict[str, None] = {}  # names saved in this batch, in first-save order

    def load_state(self, name: str) -> bytes | None:
        if self._states is None:
            return self._tx.load_state(name)
        if name not in self._states:
            self._states[name] = self._tx.load_state(name)
        return self._states[name]

    def save_state(self, name: str, body: bytes) -> None:
        if self._states is None:
            self._tx.save_state(name, body)
            return
        self._states[name] = body
        self._dirty[name] = None

    def flush(self) -> None:
        """Write the flow state this batch saved, each name once, before the commit."""
        if self._states is not None:
            for name in self._dirty:
                body = self._states[name]
                assert body is not None  # only saved names are dirty
                self._tx.save_state(name, body)
            self._dirty.clear()

    def _settles_nothing(self, event_id: str) -> bool:
        if event_id not in self._batch:
            return False
        if self._pending is None:
            self._pending = self._tx.pending_events(self._batch)
        return event_id not in self._pending

    def close_work_items(self, event_id: str, resolution: str, now: float) -> int:
        if self._settles_nothing(event_id):
            return 0
        return self._tx.close_work_items(event_id, resolution, now)

    def held_posted(self, event_id: str, entry_key: str) -> int:
        if self._settles_nothing(event_id):
            return 0
        return self._tx.held_posted(event_id, entry_key)

    def add_work_item(self, **item: Any) -> Any:
        """A work item opened in this batch is one its event may close."""
        self._note(str(item["event_id"]))
        return self._tx.add_work_item(**item)

    def hold_event(self, held: HeldEvent) -> bool:
        self._note(held.event_id)
        return self._tx.hold_event(held)

    def _note(self, event_id: str) -> None:
        if self._pending is None:
            self._pending = self._tx.pending_events(self._batch)
        self._pending.add(event_id)

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


class _Undo(Exception):
    """Internal: an event of a batch applied without savepoints failed; roll it back whole."""

    def __init__(self, delivery: Delivery, error: Exception) -> None:
        super().__init__(str(error))
        self.delivery, self.error = delivery, error


@dataclass
class WorkerStats:
    """What a worker did: events applied, retried, dead-lettered, and counts by outcome."""

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

    # issue 18: queues the deliveries the routes ask for, with the event's effects
    on_applied: Callable[[Tx, Envelope, str], None] | None = None

    def __init__(
        self,
        bus: Bus,
        store: Store,
        processor: Processor,
        policy: RetryPolicy,
        *,
        partitions: Sequence[int],
        batch: int = 256,
        lease_ttl_s: float = 15.0,
        owner: str | None = None,
        clock: Clock,
    ) -> None:
        self._bus, self._store, self._proc, self._policy = bus, store, processor, policy
        self._clock = clock  # the time each batch is applied at (`run_once`)
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
        for p in sorted(self.owned, reverse=True)[: max(0, len(self.owned) - cap)]:
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
        """Process one batch of one partition; returns how many deliveries were settled.

        The batch is first applied without a savepoint per event: most batches hold no
        failure, and a savepoint costs two statements an event. If any event fails, that
        transaction is rolled back whole and the batch applied again with a savepoint
        around each event (`isolate`), so only the failed one and the later events of its
        key are held back."""
        now = self._clock.now() if now is None else now
        deliveries = self._bus.fetch(partition, self._batch, now)
        if not deliveries:
            return 0
        try:
            done, failed, outcomes = self._apply(deliveries, partition, now)
        except _Undo as undo:
            done, failed, outcomes = self._apply(deliveries, partition, now, failed=undo)
        self._bus.ack(done)
        self.stats.applied += len(done)
        for outcome, count in outcomes.items():
            self.stats.outcomes[outcome] = self.stats.outcomes.get(outcome, 0) + count
        for d, error in failed:
            self._settle_failure(d, error, now)
        return len(done) + len(failed)

    def _apply(
        self,
        deliveries: Sequence[Delivery],
        partition: int,
        now: float,
        *,
        failed: _Undo | None = None,
    ) -> tuple[list[Delivery], list[tuple[Delivery, Exception]], dict[str, int]]:
        """Apply the batch in one transaction: (applied, failed with why, outcome counts).
        The first pass raises `_Undo` at the first failure, which rolls it back; the second
        (`failed`: that failure) isolates each event in a savepoint and does not run the one
        that failed again: it is settled with its first failure, as a failed event is."""
        isolate = failed is not None
        done: list[Delivery] = []
        bad: list[tuple[Delivery, Exception]] = []
        outcomes: dict[str, int] = {}
        blocked: set[str] = set()
        traced = tracing.enabled()
        debug = log.isEnabledFor(logging.DEBUG)
        with self._store.transaction() as raw_tx:
            tx = _BatchTx(raw_tx, [d.msg_id for d in deliveries], keep_states=not isolate)
            for d in deliveries:
                if d.key in blocked:
                    continue
                if failed is not None and d is failed.delivery:
                    bad.append((d, failed.error))
                    blocked.add(d.key)
                    continue
                try:
                    env = decode_envelope(d.body)
                except msgspec.DecodeError as exc:  # nothing written for it: no undo
                    bad.append((d, PermanentError(f"undecodable envelope: {exc}")))
                    blocked.add(d.key)
                    continue
                try:
                    with logs.bound(
                        correlation=env.correlation_id,
                        event=env.event_id,
                        control=env.source.control_id,
                    ):
                        if traced:
                            with (
                                tracing.span(
                                    "isthmus.apply",
                                    correlation=env.correlation_id,
                                    event_id=env.event_id,
                                    event_type=env.type,
                                    partition=partition,
                                ) as sp,
                                tx.savepoint(),
                            ):
                                outcome = self._applied(tx, env, now)
                                if sp is not None:
                                    sp.set_attribute("isthmus.outcome", outcome)
                        elif isolate:
                            with tx.savepoint():
                                outcome = self._applied(tx, env, now)
                        else:
                            outcome = self._applied(tx, env, now)
                        if debug:
                            log.debug("%s %s", env.type, outcome)
                except Exception as exc:  # classified by _settle_failure, never lost
                    if not isolate:
                        raise _Undo(d, exc) from exc
                    bad.append((d, exc))
                    blocked.add(d.key)
                    continue
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                done.append(d)
            tx.flush()
        return done, bad, outcomes

    def _applied(self, tx: Tx, env: Envelope, now: float) -> str:
        """Gate, flow, and the deliveries the routes ask for (when any route exists)."""
        outcome = identity.gate(tx, env, now) or self._proc.handle(tx, env, now)
        if self.on_applied is not None:  # routes exist (flows/outbound.py)
            self.on_applied(tx, env, outcome)
        return outcome

    def _settle_failure(self, d: Delivery, exc: Exception, now: float) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        attempts = d.attempts + 1
        if isinstance(exc, PermanentError) or self._policy.exhausted(attempts):
            with logs.bound(event=d.msg_id):
                log.warning("dead-lettering %s after %d attempts: %s", d.msg_id, attempts, reason)
            self._bus.dead(d, reason, now)
            self.stats.dead += 1
            return
        delay = (
            exc.retry_after
            if isinstance(exc, TransientError) and exc.retry_after is not None
            else self._policy.delay(attempts)
        )
        self._bus.nak(d, reason, now + delay)
        self.stats.retried += 1

    def drain(self, max_rounds: int = 1_000_000) -> int:
        """Process the leased partitions until none has visible work (tests, demo, CLI
        replay); partitions another live worker holds are left to it."""
        total = 0
        try:
            for _ in range(max_rounds):
                now = self._clock.now()
                if now - self._renewed > self._ttl / 3:
                    self.rebalance(now)
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
                now = self._clock.now()
                if now - self._renewed > self._ttl / 5:
                    self.rebalance(now)
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
