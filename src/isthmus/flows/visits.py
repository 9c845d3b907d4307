"""ADT visit events and BAR account events -> the state of visits and billing accounts.

The store keeps one row per encounter (status, patient class) and per billing account; what
a hospital feed says beyond that is kept here as flow state (`Tx.load_state`), one record
per visit (`visit:<PV1-19>`) and per billing account (`account:<PID-18>`):
- the location history of a visit (its first location from ADT A01/A04, then A02
  transfer, A12 cancel transfer, A17 swap): a charge with no FT1-13 department lands on the
  cost center of the location the patient was in on its service date (`department_at`);
- its pending events (A14 pending admit, A15 pending transfer, A16 pending discharge):
  recorded, never posted; the A01, A02 or A03 that completes one, or the A27, A26 or A25
  that cancels it, takes it off the list;
- the charges posted on it, so that a cancelled visit (A11, A27, A38) with charges opens a
  `cancelled_visit_with_charges` work item: the hub never reverses them by itself, the
  source must send the credits (documented policy, README);
- the diagnoses and procedures (DG1, PR1; BAR P12), kept for claims;
- per billing account: the coverage (IN1) and whether BAR P06 ended it or P02 purged it
  (`flows.account_state`);
- when `flows.merges` merges or renumbers a visit (A42, A45, A50), the survivor's record
  takes what the old one held (`merged_visit`).

Every update is idempotent on the event id: a redelivered event changes nothing. A
visit's stops and pending events are also idempotent on what the message says (trigger and
MSH-7, as for `flows.merges`): a resend under a new control id changes nothing either.

Issue 17: starts and discharges, transfers, class changes, recorded events, codes and
cancellations are decided without the store (`decide_start_or_end`, `decide_transfer`,
`decide_class`, `decide_record`, `decide_codes`) on the visit's state and patient as read,
and `flows.decision.apply` writes the decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import msgspec

from isthmus.flows import lineage
from isthmus.flows.accounts import resolve
from isthmus.flows.decision import Decision, SaveState, Write, apply, hold
from isthmus.flows.outcome import APPLIED, DUPLICATE, Outcome, label
from isthmus.model.envelope import Envelope
from isthmus.model.events import (
    ClinicalCodesRecorded,
    CodedEntry,
    EncounterDischarged,
    EncounterStarted,
    EncounterTransferred,
    PatientClassChanged,
    VisitEventRecorded,
)
from isthmus.store.ports import Tx

PENDING = {"A14": "pending admit", "A15": "pending transfer", "A16": "pending discharge"}
CANCELS_PENDING = {"A25": "A16", "A26": "A15", "A27": "A14"}
COMPLETES_PENDING = {"A01": "A14", "A02": "A15", "A03": "A16"}  # HL7 v2.5.1 3.3.14-16
CANCELS_VISIT = {
    "A11": "cancel admit/visit",
    "A27": "cancel pending admit",
    "A38": "cancel pre-admit",
}
QUEUE = "patient-accounting"


class Stop(msgspec.Struct, frozen=True):
    """One place the visit was in, from `at` (ISO date/time) on."""

    event_id: str
    at: str
    location: str
    department: str
    trigger: str


class VisitState(msgspec.Struct):
    """A visit's flow state: patient, class, status, stops, pending triggers, coded entries."""

    patient_key: str = ""
    patient_class: str = ""
    status: str = ""
    stops: list[Stop] = msgspec.field(default_factory=list)
    pending: list[str] = msgspec.field(default_factory=list)  # triggers still pending
    # posted charge event ids, as releases before the lineage records kept them; a visit's
    # postings are now its lineage record's (`lineage.VisitLineage.accounts`)
    charges: list[str] = msgspec.field(default_factory=list)
    diagnoses: list[CodedEntry] = msgspec.field(default_factory=list)
    procedures: list[CodedEntry] = msgspec.field(default_factory=list)
    seen: list[str] = msgspec.field(default_factory=list)  # applied event ids, `_once` marks


_visit_dec = msgspec.json.Decoder(VisitState)
_enc = msgspec.json.Encoder()


def load_visit(tx: Tx, visit: str) -> VisitState:
    """A visit's flow state (a new one when none is stored)."""
    body = tx.load_state(f"visit:{visit}")
    return _visit_dec.decode(body) if body else VisitState()


def _at(env: Envelope, when: datetime | None) -> str:
    return (when or env.occurred_at).isoformat()


def _once(state: VisitState, env: Envelope, *what: object) -> bool:
    """True the first time the visit sees `what` (trigger, event time, location) in a
    message of this MSH-7: the same event resent under a new control id is no news. The
    mark joins `seen`, so a merged visit keeps it (`merged_visit`)."""
    mark = "@".join([*(str(w) for w in what), env.occurred_at.isoformat()])
    if mark in state.seen:
        return False
    state.seen.append(mark)
    return True


def _settle(state: VisitState, trigger: str) -> None:
    """The pending event `trigger` completes (A01, A02, A03) or cancels (A27, A26, A25)
    leaves the visit's pending list; nothing when none is pending."""
    target = COMPLETES_PENDING.get(trigger) or CANCELS_PENDING.get(trigger)
    if target:
        state.pending = [p for p in state.pending if p != target]


def _add_stop(state: VisitState, stop: Stop) -> None:
    """In time order: an admit known late still comes before the transfers after it."""
    i = len(state.stops)
    while i and state.stops[i - 1].at > stop.at:
        i -= 1
    state.stops.insert(i, stop)


@dataclass(frozen=True, slots=True)
class PutEncounter:
    """Keep a visit's row in the store (`Tx.put_encounter`): patient, facility, class,
    status, at."""

    visit: str
    patient_key: str
    facility: str
    patient_class: str
    status: str
    at: str

    def write(self, tx: Tx, now: float) -> bool:
        tx.put_encounter(
            self.visit, self.patient_key, self.facility, self.patient_class, self.status, self.at
        )
        return True


def _copy(state: VisitState) -> VisitState:
    """A copy whose lists a decision may change: the facts it was given stay as read."""
    return msgspec.structs.replace(
        state,
        stops=list(state.stops),
        pending=list(state.pending),
        seen=list(state.seen),
        charges=list(state.charges),
    )


def save_visit(visit: str, state: VisitState) -> SaveState:
    """The write that keeps `state` as the visit's (a `flows.decision` write)."""
    return SaveState(f"visit:{visit}", _enc.encode(state))


def decide_transfer(
    env: Envelope, ev: EncounterTransferred, patient_key: str, before: VisitState
) -> Decision:
    """A02 / A17: a new stop (an A02 completes a pending transfer, A15); A12: the last
    transfer is undone. The encounter row keeps its status; its facility follows the
    message. `before`: the visit's state, `patient_key` its patient's live key."""
    if env.event_id in before.seen:
        return Decision(DUPLICATE)
    state = _copy(before)
    state.seen.append(env.event_id)
    if not _once(state, env, ev.trigger, ev.at, ev.location, ev.department):
        pass  # resent under a new control id: applied already
    elif ev.cancelled:
        for i in range(len(state.stops) - 1, -1, -1):
            if state.stops[i].trigger in ("A02", "A17"):
                del state.stops[i]
                break
    else:
        _settle(state, ev.trigger)
        state.stops.append(
            Stop(env.event_id, _at(env, ev.at), ev.location, ev.department, ev.trigger)
        )
    state.patient_key = patient_key
    row = PutEncounter(
        ev.visit_number,
        patient_key,
        ev.facility,
        "",
        state.status or "active",
        env.occurred_at.isoformat(),
    )
    return Decision(APPLIED, writes=(save_visit(ev.visit_number, state), row))


def transfer(tx: Tx, secret: str, env: Envelope, ev: EncounterTransferred, now: float = 0.0) -> str:
    """`decide_transfer` on the visit's state, written at `now` (no write of it keeps a
    time); a message with no visit number is applied with nothing to do."""
    if not ev.visit_number:
        return "applied"
    p = resolve(tx, secret, ev.patient)
    decision = decide_transfer(env, ev, p.key, load_visit(tx, ev.visit_number))
    return label(apply(tx, decision, now))


def department_at(tx: Tx, visit: str, on: date) -> str:
    """The department of the location the visit was in on `on` (its last stop up to that
    day: the A01/A04 location, then transfers; the first stop when the charge precedes
    every stop); "" when none is known."""
    if not visit:
        return ""
    stops = load_visit(tx, visit).stops
    chosen = ""
    for stop in stops:
        if stop.at[:10] <= on.isoformat() or not chosen:
            chosen = stop.department
    return chosen


def decide_class(
    env: Envelope, ev: PatientClassChanged, patient_key: str, before: VisitState
) -> Decision:
    """A06 / A07: the visit's patient class (HL7 table 0004), which is its account type,
    kept in its state and its encounter row. `before`: its state, `patient_key` its
    patient's live key."""
    if not ev.visit_number:
        return Decision(APPLIED)
    state = msgspec.structs.replace(before, patient_class=ev.patient_class, patient_key=patient_key)
    row = PutEncounter(
        ev.visit_number,
        patient_key,
        ev.facility,
        ev.patient_class,
        state.status or "active",
        env.occurred_at.isoformat(),
    )
    return Decision(APPLIED, writes=(save_visit(ev.visit_number, state), row))


def class_change(
    tx: Tx, secret: str, env: Envelope, ev: PatientClassChanged, now: float
) -> Outcome:
    """`decide_class` on the visit's state, written at `now`."""
    p = resolve(tx, secret, ev.patient)
    before = load_visit(tx, ev.visit_number) if ev.visit_number else VisitState()
    return apply(tx, decide_class(env, ev, p.key, before), now)


def decide_record(
    env: Envelope, ev: VisitEventRecorded, patient_key: str, posted: bool, before: VisitState
) -> Decision:
    """Pending events and cancellations (module docstring). `posted`: whether anything
    posted on the visit (its lineage record names an account); `before`: its state."""
    if env.event_id in before.seen:
        return Decision(DUPLICATE)
    state = _copy(before)
    state.seen.append(env.event_id)
    state.patient_key = patient_key
    if (ev.trigger in PENDING or ev.trigger in CANCELS_PENDING) and _once(
        state, env, ev.trigger, ev.at
    ):  # not resent under a new control id
        if ev.trigger not in PENDING:
            _settle(state, ev.trigger)  # A25, A26, A27
        elif ev.trigger not in state.pending:
            state.pending.append(ev.trigger)
    held: Decision | None = None
    if ev.trigger == "A13":  # cancel discharge: the visit is active again
        state.status = "active"
    elif ev.trigger in CANCELS_VISIT:
        state.status = "cancelled"
        if state.charges or posted:
            held = hold(
                env,
                kind="cancelled_visit_with_charges",
                queue=QUEUE,
                detail=f"ADT^{ev.trigger} ({CANCELS_VISIT[ev.trigger]}) on a visit with "
                "posted charges: they are not reversed by the hub; credit them "
                "in the source system or resolve",
            )
    writes: tuple[Write, ...] = (save_visit(ev.visit_number, state),)
    if state.status:
        writes += (
            PutEncounter(
                ev.visit_number,
                patient_key,
                ev.facility,
                "",
                state.status,
                env.occurred_at.isoformat(),
            ),
        )
    if held is None:
        return Decision(APPLIED, writes=writes)
    return held._replace(writes=writes)


def record(tx: Tx, secret: str, env: Envelope, ev: VisitEventRecorded, now: float) -> str:
    """`decide_record` on the visit's state and postings, written at `now`."""
    p = resolve(tx, secret, ev.patient)
    if not ev.visit_number:
        return "applied"
    # whether anything posted on the visit, read before its state (a charge takes the lineage
    # record first too: one lock order on PostgreSQL)
    posted = ev.trigger in CANCELS_VISIT and bool(lineage.load_visit(tx, ev.visit_number).accounts)
    decision = decide_record(env, ev, p.key, posted, load_visit(tx, ev.visit_number))
    return label(apply(tx, decision, now))


def decide_start_or_end(
    env: Envelope, ev: EncounterStarted | EncounterDischarged, before: VisitState
) -> Decision:
    """A01/A04 (active) and A03 (discharged) as the visit's status, so later events keep it.
    A01/A04 also give the visit its first location (PV1-3: a charge with no FT1-13 lands on
    its cost center until a transfer); A01 completes a pending admit (A14), A03 a pending
    discharge (A16). Nothing to write when the state stays as it was (`before`)."""
    if not ev.visit_number:
        return Decision(APPLIED)
    state = _copy(before)
    if isinstance(ev, EncounterStarted):
        state.status = "active"
        if _once(state, env, ev.trigger or "start", ev.started_at, ev.location, ev.department):
            _settle(state, ev.trigger)
            if ev.department:
                trigger = ev.trigger or "start"
                at = _at(env, ev.started_at)
                _add_stop(state, Stop(env.event_id, at, ev.location, ev.department, trigger))
    else:
        state.status = "discharged"
        if _once(state, env, "A03", ev.discharged_at):
            _settle(state, "A03")
    if state.status == before.status and len(state.seen) == len(before.seen):
        return Decision(APPLIED)  # the same status, and the message was seen before
    return Decision(APPLIED, writes=(save_visit(ev.visit_number, state),))


def start_or_end(
    tx: Tx, env: Envelope, ev: EncounterStarted | EncounterDischarged, now: float
) -> Outcome:
    """`decide_start_or_end` on the visit's state, written at `now`."""
    before = load_visit(tx, ev.visit_number) if ev.visit_number else VisitState()
    return apply(tx, decide_start_or_end(env, ev, before), now)


def decide_codes(ev: ClinicalCodesRecorded, state: VisitState | None) -> Decision:
    """DG1 / PR1 kept with the visit (else the account number as visit) for claims; what
    a message leaves out stays as it was. `state`: the visit's (None: the message names no
    visit)."""
    visit = ev.visit_number or ev.account_number
    if state is None or not visit:
        return Decision(APPLIED)
    kept = msgspec.structs.replace(
        state,
        diagnoses=list(ev.diagnoses) or state.diagnoses,
        procedures=list(ev.procedures) or state.procedures,
    )
    return Decision(APPLIED, writes=(SaveState(f"visit:{visit}", _enc.encode(kept)),))


def codes(tx: Tx, env: Envelope, ev: ClinicalCodesRecorded, now: float) -> Outcome:
    """`decide_codes` on the visit's state, written at `now`."""
    visit = ev.visit_number or ev.account_number
    return apply(tx, decide_codes(ev, load_visit(tx, visit) if visit else None), now)


def merged_visit(into: VisitState, was: VisitState | None, patient_key: str) -> VisitState:
    """A42 / A45 / A50 (`flows.merges`): what the hub keeps of a visit (`was`) joins the
    survivor's (`into`): its stops (in time order), posted charges, pending events, codes;
    the survivor keeps its own status and class when it has them, and takes `patient_key`.
    With no other visit (`was` None: A45 keeps the number) only the patient changes. The
    store's encounter row keeps the patient it was opened under."""
    if was is None:
        return msgspec.structs.replace(into, patient_key=patient_key)
    known = {s.event_id for s in into.stops}
    return msgspec.structs.replace(
        into,
        stops=sorted(
            [*into.stops, *(s for s in was.stops if s.event_id not in known)], key=lambda s: s.at
        ),
        charges=into.charges + [c for c in was.charges if c not in into.charges],
        pending=into.pending + [p for p in was.pending if p not in into.pending],
        diagnoses=into.diagnoses + [d for d in was.diagnoses if d not in into.diagnoses],
        procedures=into.procedures + [p for p in was.procedures if p not in into.procedures],
        seen=into.seen + [e for e in was.seen if e not in into.seen],
        status=into.status or was.status,
        patient_class=into.patient_class or was.patient_class,
        patient_key=patient_key,
    )
