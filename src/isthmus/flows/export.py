"""ERP export v1: seal unbatched journal entries into balanced batches, queue them durably.

A batch is sealed in one transaction with its outbox row (transactional outbox), so a
batch is either fully queued for the ERP or not at all. The batch id is a hash of its entry
keys, so sealing the same entries twice is a no-op. The row stands for the typed batch,
encoded once (`ledger.batch_codec`) and stored once (the store keeps the body, the row
no copy: `BATCH_BODY`); the dispatcher decodes each row once and hands the batch to
the sink, which renders it for its ERP (files, JSON-RPC, REST), with persisted retries and
a circuit breaker; on recovery it drains in order.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from isthmus.flows.retry import RetryPolicy
from isthmus.ledger import batch_codec
from isthmus.ledger.batch import JournalBatch, build_batch
from isthmus.ledger.errors import InvalidBatch
from isthmus.ledger.supply import MIRROR_CHANNELS
from isthmus.observe import tracing
from isthmus.ports.erp import BatchSink, ErpRejected, ErpUnavailable
from isthmus.store.ports import OutboxItem, Store
from isthmus.store.ports_journal import BATCH_BODY

log = logging.getLogger(__name__)
DESTINATION = "erp_file"


def batch_id_for(channel: str, entry_keys: list[str]) -> str:
    """A journal batch id that is the same for the same channel and entry keys (a SHA-256
    prefix)."""
    digest = hashlib.sha256("\n".join(entry_keys).encode()).hexdigest()[:12]
    return f"JB-{channel}-{digest}"


def seal_batches(
    store: Store, *, policy_of: Callable[[str], str], max_entries: int = 20_000, now: float
) -> list[JournalBatch]:
    """Seal every channel's unbatched entries into batches; returns the batches made.

    Entries on a mirror channel (`ledger.supply.MIRROR_CHANNELS`: what the ERP posts
    itself, like the supplier invoices it owns) stay in the hub's ledger and are never
    sent: exporting them would post them twice."""
    made: list[JournalBatch] = []
    for channel in store.unbatched_channels():
        if channel in MIRROR_CHANNELS:
            continue
        while entries := store.entries(unbatched_channel=channel, limit=max_entries):
            keys = [e.entry_key for e in entries]
            batch = build_batch(
                batch_id_for(channel, keys),
                entries,
                policy=policy_of(channel),  # type: ignore[arg-type]
                channel=channel,
            )
            row = (DESTINATION, batch_codec.BATCH_FORMAT, BATCH_BODY)  # the stored body
            if store.record_batch(batch, [row], now):
                made.append(batch)
            else:
                break
    return made


@dataclass
class CircuitBreaker:
    """Open after `threshold` consecutive failures; try again after `cooldown_s`."""

    threshold: int = 5
    cooldown_s: float = 30.0
    failures: int = 0
    opened_at: float = 0.0

    def allows(self, now: float) -> bool:
        return self.failures < self.threshold or now - self.opened_at >= self.cooldown_s

    def success(self) -> None:
        self.failures = 0

    def failure(self, now: float) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.opened_at = now

    @property
    def state(self) -> str:
        return "open" if self.failures >= self.threshold else "closed"


def breaker_state(pending: Sequence[OutboxItem], threshold: int = CircuitBreaker.threshold) -> str:
    """The breaker as another process sees it (`isthmus status`): the dispatcher stops at
    the first failure, so the head row's attempts count the consecutive failures."""
    return "open" if any(o.attempts >= threshold and o.last_error for o in pending) else "closed"


class Dispatcher:
    """Deliver outbox rows in order; stop at the first failure so order holds.

    An ERP that is down (`ErpUnavailable`) is retried without end, backing off up to
    `unavailable_max_s`: an outage never turns a batch dead. Any other failure counts
    against the retry policy's attempts.
    """

    def __init__(
        self,
        store: Store,
        sink: BatchSink,
        policy: RetryPolicy,
        breaker: CircuitBreaker | None = None,
        *,
        unavailable_max_s: float = 60.0,
    ) -> None:
        self._store, self._sink, self._policy = store, sink, policy
        self.breaker = breaker or CircuitBreaker()
        self.unavailable_max_s = unavailable_max_s
        self.sent = 0

    @property
    def sink(self) -> BatchSink:
        return self._sink

    def run_once(self, now: float) -> int:
        if not self.breaker.allows(now):
            return 0
        delivered = 0
        for item in self._store.outbox_due(DESTINATION, now, 100):
            try:
                queued = batch_codec.decode(item.fmt, item.payload)
            except InvalidBatch as exc:  # no sink can send it: a person must look
                self._reject(item, f"outbox row {item.id} holds no readable batch: {exc}", now)
                continue
            try:
                with tracing.span(
                    "isthmus.export",
                    batch_id=item.batch_id,
                    fmt=item.fmt,
                    destination=item.destination,
                    attempt=item.attempts + 1,
                ):
                    self._sink.deliver(queued)
            except ErpRejected as exc:  # the ERP answered: it is up, but a person must act
                self.breaker.success()
                self._reject(item, exc.reason, now)
                continue
            except Exception as exc:  # noqa: BLE001 - persisted as retry state
                attempts = item.attempts + 1
                self.breaker.failure(now)
                if isinstance(exc, ErpUnavailable):
                    self._store.outbox_settle(
                        item.id,
                        status="pending",
                        error=str(exc),
                        visible_at=now + min(self._policy.delay(attempts), self.unavailable_max_s),
                    )
                elif self._policy.exhausted(attempts):
                    self._store.outbox_settle(item.id, status="dead", error=str(exc))
                else:
                    self._store.outbox_settle(
                        item.id,
                        status="pending",
                        error=str(exc),
                        visible_at=now + self._policy.delay(attempts),
                    )
                log.warning("ERP delivery of %s failed: %s", item.batch_id, exc)
                break
            self.breaker.success()
            self._store.outbox_settle(item.id, status="sent", visible_at=now)
            if item.attempts:  # it may have been rejected and resubmitted: close its item
                with self._store.transaction() as tx:
                    tx.close_work_items(rejection_event_id(item.id), "posted", now)
            delivered += 1
        self.sent += delivered
        return delivered

    def _reject(self, item: OutboxItem, reason: str, now: float) -> None:
        """Dead outbox row + an `erp_rejected` work item for finance (reopened if it was
        resubmitted and rejected again)."""
        with self._store.transaction() as tx:
            tx.add_work_item(
                kind=REJECTED_KIND,
                queue=REJECTED_QUEUE,
                key=item.batch_id,
                event_id=rejection_event_id(item.id),
                correlation_id=item.batch_id,
                detail=reason[:2000],
                envelope=b"",
                now=now,
            )
        self._store.outbox_settle(item.id, status="dead", error=reason)
        log.warning("ERP rejected %s: %s", item.batch_id, reason)


REJECTED_KIND, REJECTED_QUEUE = "erp_rejected", "finance-gl"


def rejection_event_id(outbox_id: int) -> str:
    """The work-item event id of a rejected outbox row: `outbox:<id>`."""
    return f"outbox:{outbox_id}"


def resubmit_rejected(store: Store, event_id: str, now: float) -> int:
    """Put the outbox row of an `erp_rejected` work item back in the queue; its id."""
    outbox_id = int(event_id.removeprefix("outbox:"))
    store.outbox_settle(outbox_id, status="pending", error="resubmitted", visible_at=now)
    return outbox_id
