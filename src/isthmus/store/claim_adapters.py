"""The claim-life port (issue 20) on each store: mixins for the Tx and Store classes of the
memory, SQLite and PostgreSQL adapters, running `claim_sql`'s statements (the memory ones
keep immutable rows in the store's state, so a rolled back transaction undoes them)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, cast

from isthmus.store import claim_sql as q
from isthmus.store.ports import ClaimEvent, ClaimState

_PG = {name: q.postgres(getattr(q, name)) for name in
       ("PUT_STATE", "GET_STATE", "BY_PAYER_ID", "ADD_EVENT", "STATES", "STATES_IN", "EVENTS")}


class SqlClaimTx:
    """For SqliteTx ("?") and PostgresTx (`_pg` True: "%s"): `_c` is their connection."""

    _c: Any
    _pg: bool = False

    def _q(self, name: str) -> str:
        return _PG[name] if self._pg else str(getattr(q, name))

    def get_claim_state(self, claim_key: str) -> ClaimState | None:
        r = self._c.execute(self._q("GET_STATE"), (claim_key,)).fetchone()
        return q.state(tuple(r)) if r else None

    def claim_by_payer_id(self, payer_claim_id: str) -> ClaimState | None:
        if not payer_claim_id:
            return None
        r = self._c.execute(self._q("BY_PAYER_ID"), (payer_claim_id,)).fetchone()
        return q.state(tuple(r)) if r else None

    def put_claim_state(self, state: ClaimState) -> None:
        self._c.execute(self._q("PUT_STATE"), q.state_args(state))

    def add_claim_event(self, event: ClaimEvent) -> bool:
        return bool(self._c.execute(self._q("ADD_EVENT"), q.event_args(event)).rowcount == 1)


class PostgresClaimTx(SqlClaimTx):
    _pg = True


class SqliteClaims:
    if TYPE_CHECKING:
        def _conn(self) -> Any: ...

    def claim_states(self, state: str | None = None, limit: int = 1000) -> list[ClaimState]:
        c = self._conn()
        rows = (c.execute(q.STATES_IN, (state, limit)) if state
                else c.execute(q.STATES, (limit,)))
        return [q.state(tuple(r)) for r in rows]

    def claim_events(self, claim_key: str) -> list[ClaimEvent]:
        return [q.event(tuple(r)) for r in self._conn().execute(q.EVENTS, (claim_key,))]


class PostgresClaims:
    if TYPE_CHECKING:
        def _rows(self, query: str, args: Any = ()) -> list[tuple[Any, ...]]: ...

    def claim_states(self, state: str | None = None, limit: int = 1000) -> list[ClaimState]:
        rows = (self._rows(_PG["STATES_IN"], (state, limit)) if state
                else self._rows(_PG["STATES"], (limit,)))
        return [q.state(r) for r in rows]

    def claim_events(self, claim_key: str) -> list[ClaimEvent]:
        return [q.event(r) for r in self._rows(_PG["EVENTS"], (claim_key,))]


def _tx_state(tx: object) -> Any:
    """The `_State` of the MemoryTx this is mixed into (not declared here: mypy would take
    the mixin's declaration over the adapter's own types)."""
    return cast(Any, tx)._s


def _store_state(store: object) -> tuple[threading.RLock, Any]:
    s = cast(Any, store)
    return s._lock, s._state


class MemoryClaimTx:
    def get_claim_state(self, claim_key: str) -> ClaimState | None:
        got: ClaimState | None = _tx_state(self).claim_states.get(claim_key)
        return got

    def claim_by_payer_id(self, payer_claim_id: str) -> ClaimState | None:
        found = [s for s in _tx_state(self).claim_states.values()
                 if payer_claim_id and s.payer_claim_id == payer_claim_id]
        return max(found, key=lambda s: s.updated_at) if found else None

    def put_claim_state(self, state: ClaimState) -> None:
        _tx_state(self).claim_states[state.claim_key] = state

    def add_claim_event(self, event: ClaimEvent) -> bool:
        if event.event_id in _tx_state(self).claim_events:
            return False
        _tx_state(self).claim_events[event.event_id] = event
        return True


class MemoryClaims:
    def claim_states(self, state: str | None = None, limit: int = 1000) -> list[ClaimState]:
        lock, st = _store_state(self)
        with lock:
            rows = [s for s in st.claim_states.values()
                    if state is None or s.state == state]
        return sorted(rows, key=lambda s: (s.updated_at, s.claim_key))[:limit]

    def claim_events(self, claim_key: str) -> list[ClaimEvent]:
        lock, st = _store_state(self)
        with lock:
            rows = [e for e in st.claim_events.values() if e.claim_key == claim_key]
        return sorted(rows, key=lambda e: e.seq)
