"""The claim-life port (issue 20) on the in-memory store: mixins for MemoryTx and
MemoryStore that keep immutable rows in the store's state, so a rolled back transaction
undoes them (the SQL adapters run `claim_sql`'s mixins)."""

from __future__ import annotations

import threading
from typing import Any, cast

from isthmus.store.ports import ClaimEvent, ClaimState


def _tx_state(tx: object) -> Any:
    """The `_State` of the MemoryTx this is mixed into (not declared here: mypy would take
    the mixin's declaration over the adapter's own types)."""
    return cast(Any, tx)._s


def _store_state(store: object) -> tuple[threading.RLock, Any]:
    s = cast(Any, store)
    return s._lock, s._state


class MemoryClaimTx:
    """The claim-life writes of a transaction on the in-memory store (mixin of MemoryTx)."""

    def get_claim_state(self, claim_key: str) -> ClaimState | None:
        got: ClaimState | None = _tx_state(self).claim_states.get(claim_key)
        return got

    def claim_by_payer_id(self, payer_claim_id: str) -> ClaimState | None:
        found = [
            s
            for s in _tx_state(self).claim_states.values()
            if payer_claim_id and s.payer_claim_id == payer_claim_id
        ]
        return max(found, key=lambda s: s.updated_at) if found else None

    def put_claim_state(self, state: ClaimState) -> None:
        _tx_state(self).claim_states[state.claim_key] = state

    def add_claim_event(self, event: ClaimEvent) -> bool:
        if event.event_id in _tx_state(self).claim_events:
            return False
        _tx_state(self).claim_events[event.event_id] = event
        return True


class MemoryClaims:
    """The claim-life reads of the in-memory store (mixin of MemoryStore)."""

    def claim_states(self, state: str | None = None, limit: int = 1000) -> list[ClaimState]:
        lock, st = _store_state(self)
        with lock:
            rows = [s for s in st.claim_states.values() if state is None or s.state == state]
        return sorted(rows, key=lambda s: (s.updated_at, s.claim_key))[:limit]

    def claim_events(self, claim_key: str) -> list[ClaimEvent]:
        lock, st = _store_state(self)
        with lock:
            rows = [e for e in st.claim_events.values() if e.claim_key == claim_key]
        return sorted(rows, key=lambda e: e.seq)
