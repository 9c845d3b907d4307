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
- per billing account: the coverage (IN1: payer, plan, plan type, PV1-20 financial class)
  and whether BAR P06 ended it or P02 purged it (a later charge is held);
- when `flows.merges` merges or renumbers a visit (A42, A45, A50) or an account (A41,
  A49), the survivor's record takes what the old one held (`merge_visit_state`,
  `merge_account_state`).

Every update is idempotent on the event id: a redelivered event changes nothing. A
visit's stops and pending events are also idempotent on what the message says (trigger and
MSH-7, as for `flows.merges`): a resend under a new control id changes nothing either.
"""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from isthmus.flows import lineage
from isthmus.flows.accounts import resolve
from isthmus.flows.decision import Decision, SaveState, apply
from isthmus.flows.outcome import APPLIED, Outcome
from isthmus.model.envelope import Envelope, encode_envelope
from isthmus.model.events import (
    BillingAccountClosed,
    ClinicalCodesRecorded,
    CodedEntry,
    Coverage,
    CoverageRecorded,
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


class AccountState(msgspec.Struct):
    """A billing account's flow state: open, ended or purged, and its coverage plans."""

    status: str = "open"  # open | ended | purged
    plans: list[Coverage] = msgspec.field(default_factory=list)
    seen: list[str] = msgspec.field(default_factory=list)


_visit_dec = msgspec.json.Decoder(VisitState)
_account_dec = msgspec.json.Decoder(AccountState)
_enc = msgspec.json.Encoder()


def load_visit(tx: Tx, visit: str) -> VisitState:
    """A visit's flow state (a new one when none is stored)."""
    body = tx.load_state(f"visit:{visit}")
    return _visit_dec.decode(body) if body else VisitState()


def load_account(tx: Tx, number: str) -> AccountState:
    """A billing account's flow state (a new one when none is stored)."""
    body = tx.load_state(f"account:{number}")
    return _account_dec.decode(body) if body else AccountState()


def _save_visit(tx: Tx, visit: str, state: VisitState) -> None:
    tx.save_state(f"visit:{visit}", _enc.encode(state))


def _hold(tx: Tx, env: Envelope, kind: str, detail: str, now: float) -> str:
    tx.add_work_item(
        kind=kind,
        queue=QUEUE,
        key=env.key,
        event_id=env.event_id,
        correlation_id=env.correlation_id,
        detail=detail,
        envelope=encode_envelope(env),
        now=now,
    )
    return "held"


def _at(env: Envelope, when: datetime | None) -> str:
    return (when or env.occurred_at).isoformat()


def _once(state: VisitState, env: Envelope, *what: object) -> bool:
    """True the first time the visit sees `what` (trigger, event time, location) in a
    message of this MSH-7: the same event resent under a new control id is no news. The
    mark joins `seen`, so a merged visit keeps it (`merge_visit_state`)."""
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


def transfer(tx: Tx, secret: str, env: Envelope, ev: EncounterTransferred) -> str:
    """A02 / A17: a new stop (an A02 completes a pending transfer, A15); A12: the last
    transfer is undone. The encounter row keeps its status; its facility follows the
    message."""
    if not ev.visit_number:
        return "applied"
    p = resolve(tx, secret, ev.patient)
    state = load_visit(tx, ev.visit_number)
    if env.event_id in state.seen:
        return "duplicate"
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
    state.patient_key = p.key
    _save_visit(tx, ev.visit_number, state)
    tx.put_encounter(
        ev.visit_number,
        p.key,
        ev.facility,
        "",
        state.status or "active",
        env.occurred_at.isoformat(),
    )
    return "applied"


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


def class_change(tx: Tx, secret: str, env: Envelope, ev: PatientClassChanged) -> str:
    """A06 / A07: the visit's patient class (HL7 table 0004), which is its account type."""
    p = resolve(tx, secret, ev.patient)
    if ev.visit_number:
        state = load_visit(tx, ev.visit_number)
        state.patient_class, state.patient_key = ev.patient_class, p.key
        _save_visit(tx, ev.visit_number, state)
        tx.put_encounter(
            ev.visit_number,
            p.key,
            ev.facility,
            ev.patient_class,
            state.status or "active",
            env.occurred_at.isoformat(),
        )
    return "applied"


def record(tx: Tx, secret: str, env: Envelope, ev: VisitEventRecorded, now: float) -> str:
    """Pending events and cancellations (module docstring)."""
    p = resolve(tx, secret, ev.patient)
    if not ev.visit_number:
        return "applied"
    # whether anything posted on the visit, read before its state (a charge takes the lineage
    # record first too: one lock order on PostgreSQL)
    posted = ev.trigger in CANCELS_VISIT and bool(lineage.load_visit(tx, ev.visit_number).accounts)
    state = load_visit(tx, ev.visit_number)
    if env.event_id in state.seen:
        return "duplicate"
    state.seen.append(env.event_id)
    state.patient_key = p.key
    outcome = "applied"
    if (ev.trigger in PENDING or ev.trigger in CANCELS_PENDING) and _once(
        state, env, ev.trigger, ev.at
    ):  # not resent under a new control id
        if ev.trigger not in PENDING:
            _settle(state, ev.trigger)  # A25, A26, A27
        elif ev.trigger not in state.pending:
            state.pending.append(ev.trigger)
    if ev.trigger == "A13":  # cancel discharge: the visit is active again
        state.status = "active"
    elif ev.trigger in CANCELS_VISIT:
        state.status = "cancelled"
        if state.charges or posted:
            outcome = _hold(
                tx,
                env,
                "cancelled_visit_with_charges",
                f"ADT^{ev.trigger} ({CANCELS_VISIT[ev.trigger]}) on a visit with "
                "posted charges: they are not reversed by the hub; credit them "
                "in the source system or resolve",
                now,
            )
    _save_visit(tx, ev.visit_number, state)
    if state.status:
        tx.put_encounter(
            ev.visit_number, p.key, ev.facility, "", state.status, env.occurred_at.isoformat()
        )
    return outcome


def start_or_end(tx: Tx, env: Envelope, ev: EncounterStarted | EncounterDischarged) -> None:
    """A01/A04 (active) and A03 (discharged) as the visit's status, so later events keep it.
    A01/A04 also give the visit its first location (PV1-3: a charge with no FT1-13 lands on
    its cost center until a transfer); A01 completes a pending admit (A14), A03 a pending
    discharge (A16)."""
    if not ev.visit_number:
        return
    state = load_visit(tx, ev.visit_number)
    changed = state.status != ("active" if isinstance(ev, EncounterStarted) else "discharged")
    if isinstance(ev, EncounterStarted):
        state.status = "active"
        if _once(state, env, ev.trigger or "start", ev.started_at, ev.location, ev.department):
            changed = True
            _settle(state, ev.trigger)
            if ev.department:
                _add_stop(
                    state,
                    Stop(
                        env.event_id,
                        _at(env, ev.started_at),
                        ev.location,
                        ev.department,
                        ev.trigger or "start",
                    ),
                )
    else:
        state.status = "discharged"
        if _once(state, env, "A03", ev.discharged_at):
            changed = True
            _settle(state, "A03")
    if changed:
        _save_visit(tx, ev.visit_number, state)


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


def decide_coverage(ev: CoverageRecorded, state: AccountState) -> Decision:
    """IN1: the account's payers and plans, as the latest message states them."""
    kept = msgspec.structs.replace(state, plans=list(ev.plans))
    return Decision(APPLIED, writes=(SaveState(f"account:{ev.account_number}", _enc.encode(kept)),))


def coverage(tx: Tx, ev: CoverageRecorded, now: float) -> Outcome:
    """`decide_coverage` on the account's state, written at `now`."""
    return apply(tx, decide_coverage(ev, load_account(tx, ev.account_number)), now)


def close_account(tx: Tx, secret: str, ev: BillingAccountClosed) -> str:
    """P06 end account / P02 purge: later charges to it are held (`closed_status`)."""
    p = resolve(tx, secret, ev.patient)
    if tx.get_billing_account(ev.account_number) is None:
        tx.put_billing_account(ev.account_number, p.key, "")
    state = load_account(tx, ev.account_number)
    state.status = "purged" if ev.purged else "ended"
    tx.save_state(f"account:{ev.account_number}", _enc.encode(state))
    return "applied"


def reopen(tx: Tx, account_number: str) -> None:
    """BAR P01 / P05 for an account P06 ended or P02 purged: it is open again."""
    if account_number and closed_status(tx, account_number):
        state = load_account(tx, account_number)
        state.status = "open"
        tx.save_state(f"account:{account_number}", _enc.encode(state))


def closed_status(tx: Tx, account_number: str) -> str:
    """ "ended" or "purged" when BAR P06 / P02 closed the account, else ""."""
    if not account_number:
        return ""
    status = load_account(tx, account_number).status
    return "" if status == "open" else status


def merge_visit_state(tx: Tx, old: str, new: str, patient_key: str) -> None:
    """A42 / A45 / A50 (`flows.merges`): what the hub keeps of visit `old` joins visit
    `new`: its stops (in time order), posted charges, pending events, codes; `new` keeps
    its own status and class when it has them. `old` stays as it was (never edited away).
    With `old == new` (A45 keeps the number) only the patient changes. The store's
    encounter row keeps the patient it was opened under."""
    into = load_visit(tx, new)
    if old == new:
        into.patient_key = patient_key
        _save_visit(tx, new, into)
        return
    was = load_visit(tx, old)
    known = {s.event_id for s in into.stops}
    into.stops = sorted(
        [*into.stops, *(s for s in was.stops if s.event_id not in known)], key=lambda s: s.at
    )
    into.charges += [c for c in was.charges if c not in into.charges]
    into.pending += [p for p in was.pending if p not in into.pending]
    into.diagnoses += [d for d in was.diagnoses if d not in into.diagnoses]
    into.procedures += [p for p in was.procedures if p not in into.procedures]
    into.seen += [e for e in was.seen if e not in into.seen]
    into.status = into.status or was.status
    into.patient_class = into.patient_class or was.patient_class
    into.patient_key = patient_key
    _save_visit(tx, new, into)


def merge_account_state(tx: Tx, old: str, new: str) -> None:
    """A41 / A49 (`flows.merges`): a survivor account the hub knows nothing of takes the
    coverage of the account merged into it; a known one keeps its own coverage and status."""
    if old == new or tx.load_state(f"account:{new}") is not None:
        return
    was = load_account(tx, old)
    tx.save_state(f"account:{new}", _enc.encode(AccountState(plans=list(was.plans))))
