"""The outbox aggregate's port: a sealed batch's files waiting for their destination, in
order per destination (a waiting retry holds back the later files).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One file of a sealed batch in the outbox, with its delivery state and retries."""

    id: int
    destination: str
    batch_id: str
    fmt: str
    payload: bytes
    status: str  # pending | sent | dead
    attempts: int
    visible_at: float
    last_error: str


class OutboxStore(Protocol):
    """The outbox of sealed batches: what is due for a destination, its outcome, the items."""

    def outbox_due(self, destination: str, now: float, limit: int) -> list[OutboxItem]: ...

    def outbox_settle(
        self, item_id: int, *, status: str, error: str = "", visible_at: float = 0.0
    ) -> None: ...

    def outbox_items(self, status: str | None = None) -> list[OutboxItem]: ...
