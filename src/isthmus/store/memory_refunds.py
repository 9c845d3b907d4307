"""The refund and flow-state aggregates in memory (the fakes of ports_refunds and
ports_flow_state): the refund register in request order, a flow's named state and the
keys it applied. The store's one lock already serializes every decision and state holder.
"""

from __future__ import annotations

import dataclasses

from isthmus.store.memory_state import MemoryStoreBase, MemoryTxBase
from isthmus.store.ports import RefundRecord


class MemoryRefundsTx(MemoryTxBase):
    """The refund writes of a transaction in memory (mixin of MemoryTx)."""

    def lock_refunds(self, account_token: str) -> None:
        """Nothing to do: the store's lock is held for the whole transaction."""

    def add_refund(self, refund: RefundRecord) -> bool:
        if refund.id in self._s.refunds:
            return False
        self._s.refunds[refund.id] = refund
        return True

    def get_refund(self, refund_id: str) -> RefundRecord | None:
        return self._s.refunds.get(refund_id)

    def pending_refunds(self, account_token: str) -> list[RefundRecord]:
        return [
            r
            for r in self._s.refunds.values()
            if r.account_token == account_token and r.status == "pending"
        ]

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
        r = self._s.refunds.get(refund_id)
        if r is None or r.status != "pending":
            return False
        self._s.refunds[refund_id] = dataclasses.replace(
            r,
            status=status,
            decided_by=decided_by,
            decided_at=decided_at,
            note=note,
            entry_key=entry_key,
        )
        return True

    def load_state(self, name: str) -> bytes | None:
        return self._s.flow_state.get(name)

    def save_state(self, name: str, body: bytes) -> None:
        self._s.flow_state[name] = body

    def applied(self, key: str) -> bytes | None:
        return self._s.applied.get(key)

    def mark_applied(self, key: str, body: bytes) -> bool:
        if key in self._s.applied:
            return False
        self._s.applied[key] = body
        return True


class MemoryRefunds(MemoryStoreBase):
    """The refund register of the in-memory store (mixin of MemoryStore)."""

    def refunds(
        self, status: str | None = None, limit: int = 1000, after: str | None = None
    ) -> list[RefundRecord]:
        with self._lock:
            rows = list(self._state.refunds.values())
            if after is not None:
                ids = [r.id for r in rows]
                rows = rows[ids.index(after) + 1 :] if after in ids else []
            return [r for r in rows if status in (None, r.status)][:limit]

    def refund(self, refund_id: str) -> RefundRecord | None:
        with self._lock:
            return self._state.refunds.get(refund_id)
