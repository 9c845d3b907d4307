"""The delivery aggregate's port (issue 18): a destination's durable outbox, one delivery per
(destination, idempotency key), in order per ordering key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One delivery in a destination's durable outbox (issue 18, flows/delivery.py).

    Unique on (destination, idempotency_key): the same event routed twice to one destination
    is one delivery. `event_id` leads back to the source event (lineage); `answer_*` is what
    the destination said last (codes and reasons, never PHI). `sent_at` 0: not sent yet."""

    id: int
    destination: str
    key: str  # ordering key: one key's deliveries leave in id order
    idempotency_key: str
    event_id: str
    event_type: str
    route: str
    content_type: str
    body: bytes
    status: str  # pending | sent | dead
    attempts: int
    visible_at: float
    created_at: float
    sent_at: float
    answer_code: str
    answer_detail: str
    last_error: str


@dataclass(frozen=True, slots=True)
class DeliveryQuery:
    """Filters of `Store.deliveries`; None: any. Newest last (id order)."""

    destination: str | None = None
    status: str | None = None
    since: float | None = None  # created at or after
    event_ids: tuple[str, ...] | None = None
    ids: tuple[int, ...] | None = None
    after: int = 0  # keyset paging: ids above this one
    limit: int = 1000


ANY_DELIVERY = DeliveryQuery()


@dataclass(frozen=True, slots=True)
class DeliveryTotals:
    """Per destination: how many deliveries in each state, the oldest pending one's creation
    time (0: none), and the last answer with when it came (for `isthmus destinations`)."""

    destination: str
    pending: int
    sent: int
    dead: int
    oldest_pending: float
    last_answer: str
    last_answer_at: float


class DeliveriesTx(Protocol):
    """The delivery writes inside a store transaction: queue one."""

    def add_delivery(
        self,
        *,
        destination: str,
        key: str,
        idempotency_key: str,
        event_id: str,
        event_type: str,
        route: str,
        content_type: str,
        body: bytes,
        now: float,
    ) -> bool:
        """Queue a delivery in this transaction (it commits with the effects that caused
        it); False when (destination, idempotency_key) is queued already."""
        ...


class DeliveriesStore(Protocol):
    """A destination's durable outbox: due deliveries, their outcome, queries, totals and
    resend."""

    def deliveries_due(self, destination: str, now: float, limit: int) -> list[DeliveryRecord]:
        """Pending deliveries of `destination` that are visible at `now`, in id order,
        leaving out every delivery whose key has an earlier one still waiting for its retry
        (order per key; other keys go on)."""
        ...

    def settle_deliveries(
        self,
        ids: Sequence[int],
        *,
        status: str,
        now: float,
        visible_at: float = 0.0,
        error: str = "",
        answer_code: str = "",
        answer_detail: str = "",
    ) -> None:
        """Record one try of these deliveries: its outcome (`sent`, `dead`, or `pending`
        again, visible at `visible_at`), the answer and error; attempts + 1."""
        ...

    def deliveries(self, query: DeliveryQuery = ANY_DELIVERY) -> list[DeliveryRecord]: ...

    def delivery_totals(self) -> list[DeliveryTotals]:
        """One row per destination that has deliveries, by name."""
        ...

    def resend_deliveries(self, ids: Sequence[int], now: float) -> list[int]:
        """Put these (sent or dead) deliveries back in their outbox, visible now, with the
        same idempotency key; the ids that were put back."""
        ...
