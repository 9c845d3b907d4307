"""The claim-life tables (issue 20): DDL and statements shared by SQLite and PostgreSQL.

`claim_states` holds where each claim stands (one row per patient control number, the
payer's claim control number indexed beside it); `claim_events` its timeline, every
transition with its lineage. Revision 0004 creates both (its DDL is also in the head DDL of
each dialect, tests/store/test_migrations.py holds them equal). Statements are written once
(sql_dialect.py compiles them per dialect); the Tx/Store mixins at the end run them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from isthmus.store.ports_accounts import ClaimEvent, ClaimState
from isthmus.store.sql_dialect import StoreBase, TxBase

STATE_COLS: Final = (
    "claim_key, state, payer_id, total_charge, currency, created_at, "
    "updated_at, payer_claim_id, account_number, paid, frequency, controls, "
    "status_category, status_code, denial_category, appeal_due, "
    "submitted_at, body"
)
EVENT_COLS: Final = (
    "event_id, claim_key, seq, kind, from_state, to_state, at, causation_id, "
    "correlation_id, actor, detail"
)
_UPDATE: Final = ", ".join(f"{c} = excluded.{c}" for c in STATE_COLS.split(", ")[1:])
PUT_STATE: Final = (
    f"INSERT INTO claim_states ({STATE_COLS}) VALUES "
    f"({', '.join('?' * 18)}) ON CONFLICT (claim_key) DO UPDATE SET {_UPDATE}"
)
GET_STATE: Final = f"SELECT {STATE_COLS} FROM claim_states WHERE claim_key = ?"
BY_PAYER_ID: Final = (
    f"SELECT {STATE_COLS} FROM claim_states WHERE payer_claim_id = ? "
    "ORDER BY updated_at DESC LIMIT 1"
)
ADD_EVENT: Final = (
    f"INSERT INTO claim_events ({EVENT_COLS}) VALUES ({', '.join('?' * 11)}) "
    "ON CONFLICT (event_id) DO NOTHING"
)
STATES: Final = f"SELECT {STATE_COLS} FROM claim_states ORDER BY updated_at, claim_key LIMIT ?"
STATES_IN: Final = (
    f"SELECT {STATE_COLS} FROM claim_states WHERE state = ? ORDER BY updated_at, claim_key LIMIT ?"
)
EVENTS: Final = f"SELECT {EVENT_COLS} FROM claim_events WHERE claim_key = ? ORDER BY seq"


SQL: Final = {
    "claim_put_state": PUT_STATE,
    "claim_get_state": GET_STATE,
    "claim_by_payer_id": BY_PAYER_ID,
    "claim_add_event": ADD_EVENT,
    "claim_states": STATES,
    "claim_states_in": STATES_IN,
    "claim_events": EVENTS,
}


def state_args(s: ClaimState) -> tuple[Any, ...]:
    """The parameters of `claim_put_state`, in STATE_COLS order (money as text)."""
    return (
        s.claim_key,
        s.state,
        s.payer_id,
        str(s.total_charge),
        s.currency,
        s.created_at,
        s.updated_at,
        s.payer_claim_id,
        s.account_number,
        str(s.paid),
        s.frequency,
        s.controls,
        s.status_category,
        s.status_code,
        s.denial_category,
        s.appeal_due,
        s.submitted_at,
        s.body,
    )


def state(r: tuple[Any, ...]) -> ClaimState:
    """A ClaimState from a `claim_states` row (STATE_COLS order)."""
    return ClaimState(
        claim_key=r[0],
        state=r[1],
        payer_id=r[2],
        total_charge=Decimal(str(r[3])),
        currency=r[4],
        created_at=float(r[5]),
        updated_at=float(r[6]),
        payer_claim_id=r[7],
        account_number=r[8],
        paid=Decimal(str(r[9])),
        frequency=r[10],
        controls=r[11],
        status_category=r[12],
        status_code=r[13],
        denial_category=r[14],
        appeal_due=r[15],
        submitted_at=float(r[16]),
        body=bytes(r[17]),
    )


def event_args(e: ClaimEvent) -> tuple[Any, ...]:
    """The parameters of `claim_add_event`, one claim event."""
    return (
        e.event_id,
        e.claim_key,
        e.seq,
        e.kind,
        e.from_state,
        e.to_state,
        e.at,
        e.causation_id,
        e.correlation_id,
        e.actor,
        e.detail,
    )


def event(r: tuple[Any, ...]) -> ClaimEvent:
    """A ClaimEvent from a `claim_events` row."""
    return ClaimEvent(
        event_id=r[0],
        claim_key=r[1],
        seq=int(r[2]),
        kind=r[3],
        from_state=r[4],
        to_state=r[5],
        at=float(r[6]),
        causation_id=r[7],
        correlation_id=r[8],
        actor=r[9],
        detail=r[10],
    )


class SqlClaimTx(TxBase):
    """The claim-life writes of a transaction on SQL (mixin of SqlTx)."""

    def get_claim_state(self, claim_key: str) -> ClaimState | None:
        r = self._c.execute(self._q["claim_get_state"], (claim_key,)).fetchone()
        return state(tuple(r)) if r else None

    def claim_by_payer_id(self, payer_claim_id: str) -> ClaimState | None:
        if not payer_claim_id:
            return None
        r = self._c.execute(self._q["claim_by_payer_id"], (payer_claim_id,)).fetchone()
        return state(tuple(r)) if r else None

    def put_claim_state(self, state: ClaimState) -> None:
        self._c.execute(self._q["claim_put_state"], state_args(state))

    def add_claim_event(self, event: ClaimEvent) -> bool:
        return bool(self._c.execute(self._q["claim_add_event"], event_args(event)).rowcount == 1)


class SqlClaims(StoreBase):
    """The claim-life reads on SQL (mixin of SqlStore)."""

    def claim_states(self, state: str | None = None, limit: int = 1000) -> list[ClaimState]:
        rows = (
            self._rows(self._q["claim_states_in"], (state, limit))
            if state
            else self._rows(self._q["claim_states"], (limit,))
        )
        return [_state(r) for r in rows]

    def claim_events(self, claim_key: str) -> list[ClaimEvent]:
        return [event(r) for r in self._rows(self._q["claim_events"], (claim_key,))]


_state = state
