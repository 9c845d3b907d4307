"""The ERP port: post journal batches, see what is posted, read balances and master data.

Contract (tests/erp/contract.py runs it against the in-memory fake and against Tryton):
- `post_batch` turns a batch into one ERP move per (posted_on, company) group of its lines
  (`move_specs`), each carrying its source reference `isthmus:<batch_id>:<date>:<company>`.
  It is idempotent on that reference: moves already posted are skipped, so a retry after a
  timeout (the ERP may have posted before the answer was lost) never posts twice.
- `find_posted(batch_id)` returns the source references of the batch's posted moves.
- `balances(period)` reads back posted amounts per (account, cost center), debit positive.
- `master_data()` lists accounts, cost centers (analytic accounts) and parties by code.
- Errors are named by what the caller does: `ErpUnavailable` (retry later, the outbox keeps
  the batch), `ErpRejected(reason)` (business refusal: a work item for finance-gl).
- Balance is checked here, before anything leaves: a move that does not balance is refused
  (`ErpRejected`), whatever the ERP would do (Tryton on SQLite would accept it).

`ErpBatchSink` adapts a port to the outbox dispatcher: it posts the `jsonl` row of a batch
and skips the `csv` row (the same batch in another format, kept for the file export).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Protocol

from isthmus.flows.export import ErpRejected
from isthmus.ledger.batch import BatchLine, JournalBatch, batch_from_jsonl
from isthmus.ledger.errors import InvalidBatch
from isthmus.store.ports import OutboxItem

BalanceKey = tuple[str, str]  # (account code, cost center code or "")


@dataclass(frozen=True, slots=True)
class MoveSpec:
    """One ERP move: the batch lines of one (posted_on, company) group."""

    reference: str
    posted_on: date
    period: str
    company: str
    currency: str
    lines: tuple[BatchLine, ...]

    @property
    def debit(self) -> Decimal:
        return sum((x.debit for x in self.lines), Decimal(0))

    @property
    def credit(self) -> Decimal:
        return sum((x.credit for x in self.lines), Decimal(0))


@dataclass(frozen=True, slots=True)
class PostResult:
    batch_id: str
    posted: tuple[str, ...]  # references posted by this call
    existing: tuple[str, ...]  # references found already posted (a retry)
    lines: int  # move lines written by this call


@dataclass(frozen=True, slots=True)
class MasterData:
    accounts: dict[str, str]  # code -> name
    cost_centers: dict[str, str]  # analytic account code -> name
    parties: dict[str, str]  # code -> name


class ErpPort(Protocol):
    def post_batch(self, batch: JournalBatch) -> PostResult: ...

    def find_posted(self, batch_id: str = "") -> set[str]:
        """Source references of the batch's posted moves (every batch's when empty)."""
        ...

    def balances(self, period: str | None = None) -> dict[BalanceKey, Decimal]: ...

    def master_data(self) -> MasterData: ...

    def close(self) -> None: ...


def reference(batch_id: str, posted_on: date, company: str) -> str:
    return f"isthmus:{batch_id}:{posted_on.isoformat()}:{company}"


def move_specs(batch: JournalBatch) -> list[MoveSpec]:
    """Group a batch into moves; refuse (ErpRejected) a group that does not balance or that
    mixes currencies: one move is one balanced set of lines in one currency."""
    groups: dict[tuple[date, str], list[BatchLine]] = {}
    for line in batch.lines:
        groups.setdefault((line.posted_on, line.dims.company), []).append(line)
    specs = []
    for (posted_on, company), lines in sorted(groups.items()):
        ref = reference(batch.batch_id, posted_on, company)
        currencies = {x.currency for x in lines}
        if len(currencies) != 1:
            raise ErpRejected(f"{ref}: one move per currency expected, got {sorted(currencies)}")
        spec = MoveSpec(reference=ref, posted_on=posted_on, period=lines[0].period,
                        company=company, currency=lines[0].currency, lines=tuple(lines))
        if spec.debit != spec.credit:
            raise ErpRejected(f"{ref}: move does not balance (debit {spec.debit} != credit "
                              f"{spec.credit})")
        specs.append(spec)
    return specs


def expected_balances(batches: Iterable[JournalBatch],
                      period: str | None = None) -> dict[BalanceKey, Decimal]:
    """What the ERP should show for these batches: net per (account, cost center)."""
    out: dict[BalanceKey, Decimal] = {}
    for batch in batches:
        for x in batch.lines:
            if period is None or x.period == period:
                key = (x.account, x.dims.cost_center)
                out[key] = out.get(key, Decimal(0)) + x.debit - x.credit
    return out


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
                    raise ErpRejected(f"{spec.reference}: cost center {x.dims.cost_center} "
                                      "is unknown")
        for spec in todo:
            self.moves[spec.reference] = spec
        return PostResult(batch.batch_id, tuple(s.reference for s in todo), existing,
                          sum(len(s.lines) for s in todo))

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
    """Outbox sink for an ERP with an API: posts the batch held by the `jsonl` row."""

    def __init__(self, erp: ErpPort) -> None:
        self.erp = erp
        self.last: PostResult | None = None
        self.moves_posted = 0

    def deliver(self, item: OutboxItem) -> None:
        if item.fmt != "jsonl":
            return  # the csv row is the same batch for file-based ERPs
        try:
            batch = batch_from_jsonl(item.payload.decode())
        except (InvalidBatch, UnicodeDecodeError) as exc:
            raise ErpRejected(f"outbox row {item.id} holds no readable batch: {exc}") from exc
        self.last = self.erp.post_batch(batch)
        self.moves_posted += len(self.last.posted)


def batches_of(items: Sequence[OutboxItem]) -> list[JournalBatch]:
    """The batches held by outbox rows (their jsonl rows), in outbox order."""
    return [batch_from_jsonl(i.payload.decode()) for i in items if i.fmt == "jsonl"]
