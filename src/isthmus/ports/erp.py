"""The ERP port: post journal batches, see what is posted, read balances and master data;
and the outbox sink port the ERP dispatcher (`flows/export.py`) delivers batches through.

Contract (tests/connectors/erp/contract.py runs it against the in-memory fake and against Tryton):
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

The adapters (Tryton JSON-RPC, REST, the file drop, the in-memory fake) live in
`connectors/erp_*.py`; the flows and `recon/` speak to them through this module only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

from isthmus.errors import PermanentError, TransientError
from isthmus.ledger.batch import BatchLine, JournalBatch
from isthmus.ledger.batch_codec import QueuedBatch

BalanceKey = tuple[str, str]  # (account code, cost center code or "")


class ErpUnavailable(TransientError):
    """The ERP or its drop folder can't take the batch now; retry later."""


class ErpRejected(PermanentError):
    """The ERP refused the batch on business grounds (closed period, unknown account...).

    Retrying as is cannot help: the dispatcher marks the outbox row dead and opens a work
    item (kind `erp_rejected`, queue `finance-gl`) carrying the ERP's message; after the fix,
    `isthmus workitems resubmit ID` puts the row back in the outbox.
    """

    queue = "finance-gl"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BatchSink(Protocol):
    """Where the ERP dispatcher delivers a sealed batch, decoded once from its outbox row
    (`ledger.batch_codec`): a file drop or an ERP's API, each rendering the typed batch as
    its ERP wants it. Raises `ErpUnavailable` (retried) or `ErpRejected` (a work item)."""

    def deliver(self, queued: QueuedBatch) -> None: ...


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
    """What one `post_batch` call did: the source references it posted, those found already
    posted (a retry), and the move lines it wrote."""

    batch_id: str
    posted: tuple[str, ...]  # references posted by this call
    existing: tuple[str, ...]  # references found already posted (a retry)
    lines: int  # move lines written by this call


@dataclass(frozen=True, slots=True)
class MasterData:
    """The ERP's accounts, cost centers (analytic accounts) and parties, each code -> name."""

    accounts: dict[str, str]  # code -> name
    cost_centers: dict[str, str]  # analytic account code -> name
    parties: dict[str, str]  # code -> name


class ErpPort(Protocol):
    """An ERP as the hub posts to and reads from it (contract in the module docstring)."""

    def post_batch(self, batch: JournalBatch) -> PostResult: ...

    def find_posted(self, batch_id: str = "") -> set[str]:
        """Source references of the batch's posted moves (every batch's when empty)."""
        ...

    def balances(self, period: str | None = None) -> dict[BalanceKey, Decimal]: ...

    def master_data(self) -> MasterData: ...

    def close(self) -> None: ...


def reference(batch_id: str, posted_on: date, company: str) -> str:
    """The source reference of a batch's ERP move: `isthmus:<batch_id>:<date>:<company>`."""
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
        spec = MoveSpec(
            reference=ref,
            posted_on=posted_on,
            period=lines[0].period,
            company=company,
            currency=lines[0].currency,
            lines=tuple(lines),
        )
        if spec.debit != spec.credit:
            raise ErpRejected(
                f"{ref}: move does not balance (debit {spec.debit} != credit {spec.credit})"
            )
        specs.append(spec)
    return specs


def expected_balances(
    batches: Iterable[JournalBatch], period: str | None = None
) -> dict[BalanceKey, Decimal]:
    """What the ERP should show for these batches: net per (account, cost center)."""
    out: dict[BalanceKey, Decimal] = {}
    for batch in batches:
        for x in batch.lines:
            if period is None or x.period == period:
                key = (x.account, x.dims.cost_center)
                out[key] = out.get(key, Decimal(0)) + x.debit - x.credit
    return out
