"""The ERP adapters every site shares: the in-memory fake of the ERP port and the outbox
sink that posts through a port.

The port itself (`ErpPort`, `MoveSpec`, `PostResult`, `MasterData`, `move_specs`, the
errors) is `ports/erp.py`; its names are re-exported here for the adapters and tests that
know them by this module.

`MemoryErp` behaves as the port's contract says (tests/connectors/erp/contract.py), Tryton's
messages aside. `ErpBatchSink` adapts a port to the outbox dispatcher: it posts the typed batch the
dispatcher decoded (of the previous version's two rows per batch, only the `jsonl` one:
the `csv` row is the same batch again, kept for a file export).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from isthmus.ledger import batch_codec
from isthmus.ledger.batch import JournalBatch
from isthmus.ledger.batch_codec import QueuedBatch
from isthmus.ports.erp import (
    BalanceKey,
    ErpPort,
    ErpRejected,
    MasterData,
    MoveSpec,
    PostResult,
    expected_balances,
    move_specs,
    reference,
)
from isthmus.store.ports import OutboxItem

__all__ = [
    "BalanceKey",
    "ErpBatchSink",
    "ErpPort",
    "MasterData",
    "MemoryErp",
    "MoveSpec",
    "PostResult",
    "batches_of",
    "expected_balances",
    "move_specs",
    "reference",
]


@dataclass
class MemoryErp:
    """In-memory ERP for unit tests; behaves as the contract says, Tryton's messages aside."""

    accounts: dict[str, str] = field(default_factory=dict)
    cost_centers: dict[str, str] = field(default_factory=dict)
    parties: dict[str, str] = field(default_factory=dict)
    closed_periods: set[str] = field(default_factory=set)
    moves: dict[str, MoveSpec] = field(default_factory=dict)
    calls: int = 0

    def post_batch(self, batch: JournalBatch) -> PostResult:
        self.calls += 1
        specs = move_specs(batch)
        existing = tuple(s.reference for s in specs if s.reference in self.moves)
        todo = [s for s in specs if s.reference not in self.moves]
        for spec in todo:  # all or nothing, like one RPC transaction
            if spec.period in self.closed_periods:
                raise ErpRejected(f"{spec.reference}: period {spec.period} is closed")
            for x in spec.lines:
                if x.account not in self.accounts:
                    raise ErpRejected(f"{spec.reference}: account {x.account} is unknown")
                if x.dims.cost_center and x.dims.cost_center not in self.cost_centers:
                    raise ErpRejected(
                        f"{spec.reference}: cost center {x.dims.cost_center} is unknown"
                    )
        for spec in todo:
            self.moves[spec.reference] = spec
        return PostResult(
            batch.batch_id,
            tuple(s.reference for s in todo),
            existing,
            sum(len(s.lines) for s in todo),
        )

    def find_posted(self, batch_id: str = "") -> set[str]:
        prefix = f"isthmus:{batch_id}:" if batch_id else "isthmus:"
        return {r for r in self.moves if r.startswith(prefix)}

    def balances(self, period: str | None = None) -> dict[BalanceKey, Decimal]:
        out: dict[BalanceKey, Decimal] = {}
        for spec in self.moves.values():
            if period is None or spec.period == period:
                for x in spec.lines:
                    key = (x.account, x.dims.cost_center)
                    out[key] = out.get(key, Decimal(0)) + x.debit - x.credit
        return out

    def master_data(self) -> MasterData:
        return MasterData(dict(self.accounts), dict(self.cost_centers), dict(self.parties))

    def close(self) -> None:
        return None


class ErpBatchSink:
    """Outbox sink for an ERP with an API: posts the batch (the adapter renders it)."""

    def __init__(self, erp: ErpPort) -> None:
        self.erp = erp
        self.last: PostResult | None = None
        self.moves_posted = 0

    def deliver(self, queued: QueuedBatch) -> None:
        if not queued.post:
            return  # a previous version's csv row: its jsonl row posts the same batch
        self.last = self.erp.post_batch(queued.batch)
        self.moves_posted += len(self.last.posted)


def batches_of(items: Sequence[OutboxItem]) -> list[JournalBatch]:
    """The batches held by outbox rows (one per batch), in outbox order."""
    return [
        batch_codec.decode(i.fmt, i.payload).batch
        for i in items
        if i.fmt in batch_codec.POSTING_FORMATS
    ]
