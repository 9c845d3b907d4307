"""The journal aggregate's port: entries posted once by entry key, their lines, and the
batches that seal them with their outbox files (the outbox itself: ports_outbox.py).

A sealed batch is stored once, as its body (the `ledger.batch_codec` encoding). An outbox
row queued with the payload `BATCH_BODY` is the batch itself: it holds no copy, and the
outbox reads (`outbox_due`, `outbox_items`) give it the batch's body as its payload.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Final, Protocol

from isthmus.ledger.batch import JournalBatch
from isthmus.ledger.journal import JournalEntry, JournalLine

BATCH_BODY: Final = b""  # an outbox row's payload that stands for its batch's stored body


class JournalTx(Protocol):
    """The journal writes inside a store transaction: insert an entry once, read A/R
    balances."""

    def insert_entry(self, entry: JournalEntry) -> bool: ...

    def ar_balances(self, ar_account: str, token: str) -> dict[tuple[str, str], Decimal]:
        """A/R balance of one account token per (company, currency), debit positive."""
        ...


class JournalStore(Protocol):
    """The journal outside a transaction: entries and their lines in posting order, and the
    batches that seal them with their outbox files."""

    def journal_after(self, after: int, limit: int = 10_000) -> list[tuple[int, JournalEntry]]:
        """(position, entry) of journal entries posted after position `after`, in posting
        order, only as far as every entry below is committed: the analytics watermark."""
        ...

    def journal_lines(self) -> Iterator[JournalLine]: ...

    def entries(
        self,
        *,
        correlation_id: str | None = None,
        unbatched_channel: str | None = None,
        limit: int = 100_000,
    ) -> list[JournalEntry]: ...

    def entry_batches(self, entry_keys: Sequence[str]) -> dict[str, str]: ...

    def unbatched_channels(self) -> list[str]: ...

    def record_batch(
        self, batch: JournalBatch, outbox: Sequence[tuple[str, str, bytes]], now: float
    ) -> bool:
        """Seal a batch with its outbox rows, all or nothing. False (nothing stored) when
        the batch id exists or any of its entries is sealed by another batch already. A row
        whose payload is `BATCH_BODY` reads back with the batch's body (stored once)."""
        ...

    def batches(self) -> list[tuple[str, str, int, float]]: ...

    def batch_body(self, batch_id: str) -> bytes | None:
        """The sealed batch, as `ledger.batch_codec` encodes it; None for no such batch."""
        ...
