"""A claim's life as a state machine: every transition decided purely, kept as an event.

Issue 20. The states, in the order a claim usually goes through them:

    created -> scrubbed -> submitted -> accepted | rejected        (999, 277CA)
            -> pending                                             (277 P*)
            -> paid | partially_paid | denied                      (835 CLP, or a FHIR EOB)
            -> appealed | corrected -> submitted again (CLM05-3 7 or 8)
            -> closed | written_off

A claim is keyed by its patient control number (CLM01); the payer's claim control number
(CLP07, 277 REF*1K) is kept beside it and finds it too. :func:`decide` is the whole table:
a pure function of (state, what happened) that returns the next state or raises
:class:`InvalidTransition` (the caller turns that into an answer or a work item, never a
crash). :func:`advance` applies a decision in the caller's transaction: the new state row
and a :class:`ClaimEvent` with the cause (the file or event id), the correlation id, who
did it and when, so the console can show a claim's timeline. A fact that does not move the
claim (a 277 finalized status while the 835 is awaited, an edit failure) is kept as an
event with from = to (:func:`note`). :func:`move` and :func:`noted` decide the same
without the store, as a :class:`ClaimMove` that `flows.decision.apply` writes (issue 17).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Final

from isthmus.errors import ConflictError
from isthmus.store.ports import ClaimEvent, ClaimState, Tx

CREATED, SCRUBBED, SUBMITTED = "created", "scrubbed", "submitted"
ACCEPTED, REJECTED, PENDING = "accepted", "rejected", "pending"
PAID, PARTIALLY_PAID, DENIED = "paid", "partially_paid", "denied"
APPEALED, CORRECTED = "appealed", "corrected"
CLOSED, WRITTEN_OFF = "closed", "written_off"
STATES: Final = (
    CREATED,
    SCRUBBED,
    SUBMITTED,
    ACCEPTED,
    REJECTED,
    PENDING,
    PAID,
    PARTIALLY_PAID,
    DENIED,
    APPEALED,
    CORRECTED,
    CLOSED,
    WRITTEN_OFF,
)
OPEN_STATES: Final = frozenset(STATES) - {CLOSED, WRITTEN_OFF}
AWAITING_PAYER: Final = frozenset({SUBMITTED, ACCEPTED, PENDING, APPEALED})

_ADJUDICABLE: Final = frozenset(
    {SUBMITTED, ACCEPTED, PENDING, APPEALED, REJECTED, PAID, PARTIALLY_PAID, DENIED}
)
# what happened -> (the states it may happen in, the state it leads to)
TRANSITIONS: Final[dict[str, tuple[frozenset[str], str]]] = {
    "edits_passed": (frozenset({CREATED, CORRECTED}), SCRUBBED),
    "submitted": (frozenset({SCRUBBED, CORRECTED}), SUBMITTED),
    "ack_accepted": (frozenset({SUBMITTED}), ACCEPTED),
    "ack_rejected": (frozenset({SUBMITTED, ACCEPTED}), REJECTED),
    "status_pending": (frozenset({SUBMITTED, ACCEPTED, PENDING, APPEALED}), PENDING),
    "remit_paid": (_ADJUDICABLE, PAID),
    "remit_partial": (_ADJUDICABLE, PARTIALLY_PAID),
    "remit_denied": (_ADJUDICABLE, DENIED),
    "appealed": (frozenset({DENIED, PARTIALLY_PAID}), APPEALED),
    "corrected": (frozenset({DENIED, REJECTED, PARTIALLY_PAID}), CORRECTED),
    "written_off": (frozenset({DENIED, PARTIALLY_PAID, REJECTED}), WRITTEN_OFF),
    "closed": (frozenset({PAID, PARTIALLY_PAID}), CLOSED),
}


class InvalidTransition(ConflictError):
    """What happened cannot happen to a claim in its state; names both (no PHI)."""

    def __init__(self, claim_key: str, state: str, kind: str) -> None:
        self.claim_key, self.state, self.kind = claim_key, state, kind
        allowed = sorted(TRANSITIONS[kind][0]) if kind in TRANSITIONS else []
        super().__init__(
            f"claim {claim_key}: {kind!r} cannot happen in state {state!r}"
            + (f" (only in {', '.join(allowed)})" if allowed else " (unknown transition)")
        )


def decide(claim_key: str, state: str, kind: str) -> str:
    """The state after ``kind`` happens to a claim in ``state``; raises InvalidTransition."""
    rule = TRANSITIONS.get(kind)
    if rule is None or state not in rule[0]:
        raise InvalidTransition(claim_key, state, kind)
    return rule[1]


def can(state: str, kind: str) -> bool:
    """Whether `TRANSITIONS` lets a claim in `state` take the transition `kind`."""
    rule = TRANSITIONS.get(kind)
    return rule is not None and state in rule[0]


def _event(
    tx: Tx,
    claim: ClaimState,
    kind: str,
    to: str,
    *,
    now: float,
    causation_id: str,
    correlation_id: str,
    actor: str,
    detail: str,
    event_id: str,
) -> ClaimEvent:
    seq = _next_seq(tx, claim.claim_key)
    return ClaimEvent(
        event_id=event_id or f"claim-{uuid.uuid4().hex}",
        claim_key=claim.claim_key,
        seq=seq,
        kind=kind,
        from_state=claim.state,
        to_state=to,
        at=now,
        causation_id=causation_id,
        correlation_id=correlation_id or f"claims/{claim.claim_key}",
        actor=actor,
        detail=detail,
    )


_SEQ_STATE = "claim-seq/"


def _next_seq(tx: Tx, claim_key: str) -> int:
    """The next sequence number of a claim's timeline (kept in flow state, in the same
    transaction as the event, so concurrent writers of one claim serialize on it)."""
    raw = tx.load_state(_SEQ_STATE + claim_key)
    n = int(raw.decode()) + 1 if raw else 1
    tx.save_state(_SEQ_STATE + claim_key, str(n).encode())
    return n


def create(
    tx: Tx,
    *,
    claim_key: str,
    payer_id: str,
    total_charge: Decimal,
    currency: str,
    now: float,
    causation_id: str,
    account_number: str = "",
    frequency: str = "1",
    payer_claim_id: str = "",
    body: bytes = b"",
    actor: str = "hub",
) -> ClaimState:
    """A new claim in state created (or a replacement, frequency 7/8, of one that exists:
    its row is reused, state ``created`` again, the history kept)."""
    old = tx.get_claim_state(claim_key)
    claim = ClaimState(
        claim_key=claim_key,
        state=CREATED,
        payer_id=payer_id,
        total_charge=total_charge,
        currency=currency,
        created_at=old.created_at if old else now,
        updated_at=now,
        payer_claim_id=payer_claim_id or (old.payer_claim_id if old else ""),
        account_number=account_number,
        frequency=frequency,
        body=body,
    )
    prior = old.state if old else ""
    tx.put_claim_state(claim)
    tx.add_claim_event(
        ClaimEvent(
            event_id=f"claim-{uuid.uuid4().hex}",
            claim_key=claim_key,
            seq=_next_seq(tx, claim_key),
            kind="created",
            from_state=prior,
            to_state=CREATED,
            at=now,
            causation_id=causation_id,
            correlation_id=f"claims/{claim_key}",
            actor=actor,
            detail=f"frequency {frequency}, charge {total_charge} {currency}",
        )
    )
    return claim


@dataclass(frozen=True, slots=True)
class ClaimMove:
    """A claim-life transition (or a fact kept with from = to) as a `flows.decision` write:
    the claim's next sequence number, its state row (when it moved or a field changed) and
    its event, in that order (the order :func:`advance` always wrote them)."""

    claim: ClaimState  # the claim before the move
    kind: str
    to: str
    changes: dict[str, Any] = field(default_factory=dict)
    causation_id: str = ""
    correlation_id: str = ""
    actor: str = "hub"
    detail: str = ""
    event_id: str = ""
    moves: bool = True  # False: a fact (:func:`noted`), the row written only with changes

    def after(self, now: float) -> ClaimState:
        """The claim after the move at `now`."""
        if not self.moves and not self.changes:
            return self.claim
        return replace(self.claim, state=self.to, updated_at=now, **self.changes)

    def write(self, tx: Tx, now: float) -> bool:
        ev = _event(
            tx,
            self.claim,
            self.kind,
            self.to,
            now=now,
            causation_id=self.causation_id,
            correlation_id=self.correlation_id,
            actor=self.actor,
            detail=self.detail,
            event_id=self.event_id,
        )
        if self.moves or self.changes:
            tx.put_claim_state(self.after(now))
        tx.add_claim_event(ev)
        return True


def move(
    claim: ClaimState,
    kind: str,
    *,
    now: float,
    causation_id: str = "",
    correlation_id: str = "",
    actor: str = "hub",
    detail: str = "",
    event_id: str = "",
    **changes: Any,
) -> tuple[ClaimState, ClaimMove]:
    """Decide moving ``claim`` by ``kind`` (raises InvalidTransition), without the store:
    the claim after it at ``now`` and the write that records it."""
    to = decide(claim.claim_key, claim.state, kind)
    m = ClaimMove(claim, kind, to, changes, causation_id, correlation_id, actor, detail, event_id)
    return m.after(now), m


def noted(
    claim: ClaimState,
    kind: str,
    *,
    now: float,
    causation_id: str = "",
    actor: str = "hub",
    detail: str = "",
    **changes: Any,
) -> tuple[ClaimState, ClaimMove]:
    """Decide keeping a fact on the claim without moving it (an event with from = to)."""
    m = ClaimMove(
        claim, kind, claim.state, changes, causation_id, "", actor, detail, "", moves=False
    )
    return m.after(now), m


def advance(
    tx: Tx,
    claim: ClaimState,
    kind: str,
    *,
    now: float,
    causation_id: str = "",
    correlation_id: str = "",
    actor: str = "hub",
    detail: str = "",
    event_id: str = "",
    **changes: Any,
) -> ClaimState:
    """Move ``claim`` by ``kind`` (raises InvalidTransition), with field ``changes``; the
    state row and its event are written in ``tx``. Returns the new state."""
    new, m = move(
        claim,
        kind,
        now=now,
        causation_id=causation_id,
        correlation_id=correlation_id,
        actor=actor,
        detail=detail,
        event_id=event_id,
        **changes,
    )
    m.write(tx, now)
    return new


def note(
    tx: Tx,
    claim: ClaimState,
    kind: str,
    *,
    now: float,
    causation_id: str = "",
    actor: str = "hub",
    detail: str = "",
    **changes: Any,
) -> ClaimState:
    """Keep a fact on the claim without moving it (an event with from = to)."""
    new, m = noted(
        claim, kind, now=now, causation_id=causation_id, actor=actor, detail=detail, **changes
    )
    m.write(tx, now)
    return new


def find(tx: Tx, patient_control_number: str = "", payer_claim_id: str = "") -> ClaimState | None:
    """A claim by its CLM01, else by the payer's claim control number."""
    got = tx.get_claim_state(patient_control_number) if patient_control_number else None
    return got or tx.claim_by_payer_id(payer_claim_id)
