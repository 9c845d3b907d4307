"""The refund aggregate's port: the refund register (flows/refunds.py), decisions serialized
per account token.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RefundRecord:
    """One refund in the refund register (flows/refunds.py), keyed by its id.

    `status`: pending (waits for an approver), posted (approved and posted in the same
    transaction, `entry_key` names the journal entry) or rejected. `account_number` is ""
    when the refund was asked for by account token. `reason` is the requester's free text:
    it stays in the register, never in the journal or the ERP files.
    """

    id: str
    idempotency_key: str
    account_number: str
    account_token: str
    company: str
    amount: Decimal
    currency: str
    reason: str
    status: str  # pending | posted | rejected
    requested_by: str
    requested_at: float
    decided_by: str = ""
    decided_at: float = 0.0
    note: str = ""
    entry_key: str = ""


class RefundsTx(Protocol):
    """The refund register's writes inside a store transaction, under a lock per account."""

    def lock_refunds(self, account_token: str) -> None:
        """Hold refund decisions on this account token until the transaction ends, so two
        requests or approvals for one account never check its credit at the same time."""
        ...

    def add_refund(self, refund: RefundRecord) -> bool:
        """Add a refund to the register; False (no change) when its id is known."""
        ...

    def get_refund(self, refund_id: str) -> RefundRecord | None: ...

    def pending_refunds(self, account_token: str) -> list[RefundRecord]:
        """The refunds of this account token still waiting for a decision."""
        ...

    def decide_refund(
        self,
        refund_id: str,
        *,
        status: str,
        decided_by: str,
        decided_at: float,
        note: str,
        entry_key: str = "",
    ) -> bool:
        """Move a pending refund to `status` (posted | rejected); False (no change) when it
        is not pending any more: someone else decided first."""
        ...


class RefundsStore(Protocol):
    """The refund register's reads."""

    def refunds(
        self, status: str | None = None, limit: int = 1000, after: str | None = None
    ) -> list[RefundRecord]:
        """The refund register, oldest first, optionally of one status, those recorded
        after refund `after` when given (keyset paging on the register's order)."""
        ...

    def refund(self, refund_id: str) -> RefundRecord | None: ...
