"""The delivery engine (issue 18): each destination's durable outbox, drained in order per
key, with persisted retries, a circuit breaker, dead letters and their work items.

Guarantee (README, "Destinations and routes"): at least once, in order per key, with an
idempotency key stable across retries and resends. A delivery is settled only after the
destination answered, so a crash between the answer and the settle sends it again (the
idempotency key lets the destination see it twice as once).

- `DestinationUnavailable` (connection refused, timeout, HTTP 5xx/429, no ACK): the run
  goes back pending with a persisted backoff (without end: an outage never dead-letters),
  the breaker counts it, and its key waits behind it (`Store.deliveries_due`); the round
  stops, since the destination is down.
- `DestinationRejected` (MLLP AE/AR, HTTP 4xx): the destination is up but refuses the
  content. The deliveries go dead with a `delivery_rejected` work item in the
  `integration` queue (the answer code and text, no PHI), and their key moves on, as the
  worker's dead letters do. A resend (`resend`) puts them back; delivered, the item closes.
- Any other error (a bug in an adapter) counts against `max_attempts`, then dead-letters
  the same way.

Runs of up to `batch` deliveries go together (a file holds many); a run never holds two
keys' order hostage: it takes due deliveries in id order, skipping a key that failed in
this round. One engine per destination and site runs at a time (a bus lease, runtime/loops.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from isthmus.config import DestinationSettings
from isthmus.flows.export import CircuitBreaker
from isthmus.flows.retry import RetryPolicy
from isthmus.observe import tracing
from isthmus.ports.destination import (
    Answer,
    Destination,
    DestinationRejected,
    DestinationUnavailable,
    Outgoing,
)
from isthmus.store.ports import DeliveryQuery, DeliveryRecord, Store

log = logging.getLogger(__name__)
REJECTED_KIND, REJECTED_QUEUE = "delivery_rejected", "integration"
BREAKER_THRESHOLD = CircuitBreaker.threshold


def work_item_ref(delivery_id: int) -> str:
    """The event id (and correlation id) of a rejected delivery's work item."""
    return f"delivery:{delivery_id}"


@dataclass
class RoundStats:
    """Counts of deliveries sent, retried and dead-lettered (one round, or all rounds so far)."""

    sent: int = 0
    retried: int = 0
    dead: int = 0


class DeliveryEngine:
    """Deliver one destination's outbox; see the module docstring."""

    def __init__(
        self,
        store: Store,
        destination: Destination,
        settings: DestinationSettings,
        *,
        breaker: CircuitBreaker | None = None,
        clock: Callable[[], float] = time.time,
        window: int = 200,
        round_s: float = 5.0,
    ) -> None:
        self._store, self.destination, self.settings = store, destination, settings
        self.policy = RetryPolicy(
            settings.max_attempts, settings.backoff_base_s, settings.backoff_max_s
        )
        self.breaker = breaker or CircuitBreaker(cooldown_s=settings.breaker_cooldown_s)
        self._clock = clock
        self._window = max(window, settings.batch)
        self._round_s = round_s  # a round stops taking runs after this (the lease: runtime/loops)
        self.totals = RoundStats()

    @property
    def name(self) -> str:
        return self.settings.name

    def run_once(self, now: float | None = None) -> RoundStats:
        """One round: send what is due, in order per key; what happened."""
        now = self._clock() if now is None else now
        stats = RoundStats()
        if not self.breaker.allows(now):
            return stats
        failed: set[str] = set()
        due = self._store.deliveries_due(self.name, now, self._window)
        batch = max(1, self.destination.batch)
        started = time.monotonic()
        while due and time.monotonic() - started < self._round_s:
            run = [d for d in due if d.key not in failed][:batch]
            if not run:
                break
            taken = {d.id for d in run}
            due = [d for d in due if d.id not in taken]
            outcome = self._send(run, now, stats)
            if outcome == "down":
                break
            if outcome == "failed":
                failed.update(d.key for d in run)
        self.totals.sent += stats.sent
        self.totals.retried += stats.retried
        self.totals.dead += stats.dead
        return stats

    def _send(self, run: Sequence[DeliveryRecord], now: float, stats: RoundStats) -> str:
        items = [
            Outgoing(
                delivery_id=d.id,
                destination=d.destination,
                key=d.key,
                idempotency_key=d.idempotency_key,
                event_type=d.event_type,
                content_type=d.content_type,
                body=d.body,
                attempt=d.attempts + 1,
            )
            for d in run
        ]
        ids = [d.id for d in run]
        attempts = max(d.attempts for d in run) + 1
        try:
            with tracing.span(
                "isthmus.deliver", destination=self.name, deliveries=len(run), attempt=attempts
            ):
                answer = self.destination.send(items)
        except DestinationRejected as exc:  # up, but a person must act
            self.breaker.success()
            self._dead(run, exc.answer, now)
            stats.dead += len(run)
            return "rejected"
        except DestinationUnavailable as exc:
            self.breaker.failure(now)
            delay = min(self.policy.delay(attempts), self.settings.backoff_max_s)
            self._store.settle_deliveries(
                ids, status="pending", now=now, visible_at=now + delay, error=_error(exc)
            )
            stats.retried += len(run)
            log.warning(
                "destination %s unavailable (%d deliveries wait %.1f s): %s",
                self.name,
                len(run),
                delay,
                exc,
            )
            return "down"
        except Exception as exc:  # noqa: BLE001 - an adapter's bug: persisted, counted
            self.breaker.failure(now)
            if self.policy.exhausted(attempts):
                self._dead(run, Answer("error", _error(exc)), now)
                stats.dead += len(run)
            else:
                self._store.settle_deliveries(
                    ids,
                    status="pending",
                    now=now,
                    visible_at=now + self.policy.delay(attempts),
                    error=_error(exc),
                )
                stats.retried += len(run)
            log.warning("delivery to %s failed: %s", self.name, _error(exc))
            return "failed"
        self.breaker.success()
        self._store.settle_deliveries(
            ids,
            status="sent",
            now=now,
            visible_at=now,
            answer_code=answer.code,
            answer_detail=answer.detail,
        )
        again = [d.id for d in run if d.attempts]
        if again:  # retried or resent: a rejection's work item may be open
            with self._store.transaction() as tx:
                for i in again:
                    tx.close_work_items(work_item_ref(i), f"delivered: {answer.code}", now)
        stats.sent += len(run)
        return "sent"

    def _dead(self, run: Sequence[DeliveryRecord], answer: Answer, now: float) -> None:
        with self._store.transaction() as tx:
            for d in run:
                tx.add_work_item(
                    kind=REJECTED_KIND,
                    queue=REJECTED_QUEUE,
                    key=self.name,
                    event_id=work_item_ref(d.id),
                    correlation_id=work_item_ref(d.id),
                    envelope=b"",
                    now=now,
                    detail=(
                        f"destination {self.name} refused delivery {d.id} ({d.event_type},"
                        f" route {d.route}): {answer.code} {answer.detail}"
                    )[:2000],
                )
        self._store.settle_deliveries(
            [d.id for d in run],
            status="dead",
            now=now,
            answer_code=answer.code,
            answer_detail=answer.detail,
            error=f"rejected: {answer.code}",
        )
        log.warning("destination %s rejected %d deliveries: %s", self.name, len(run), answer.code)

    def close(self) -> None:
        self.destination.close()


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def resend(store: Store, ids: Sequence[int], now: float, *, by: str) -> list[int]:
    """Put deliveries (sent or dead) back in their outbox, same body and idempotency key;
    a dead one's work item becomes `resubmitted` (it closes once delivered, reopens if
    refused again). The ids put back."""
    done = store.resend_deliveries(ids, now)
    for i in done:
        for w in store.work_items_for(work_item_ref(i)):
            if w.status == "open":
                store.set_work_item_status(w.id, "resubmitted", f"resent by {by}", now)
    return done


def select(
    store: Store,
    *,
    destination: str | None,
    status: str | None,
    since: float | None,
    limit: int = 10_000,
) -> list[int]:
    """The ids a bulk resend takes: every delivery of these filters, oldest first."""
    return [
        d.id
        for d in store.deliveries(
            DeliveryQuery(destination=destination, status=status, since=since, limit=limit)
        )
    ]


def breaker_state(store: Store, destination: str) -> str:
    """The breaker as another process sees it (`isthmus destinations`): open when a due
    delivery failed as many times in a row as the breaker allows, retrying when one
    waits for a retry, else closed."""
    head = store.deliveries(DeliveryQuery(destination=destination, status="pending", limit=50))
    if any(d.attempts >= BREAKER_THRESHOLD and d.last_error for d in head):
        return "open"
    if any(d.attempts and d.last_error and d.last_error != "resent" for d in head):
        return "retrying"
    return "closed"
