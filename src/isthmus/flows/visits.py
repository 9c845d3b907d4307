"""ADT visit events and BAR account events -> the state of visits and billing accounts.

The store keeps one row per encounter (status, patient class) and per billing account; what
a hospital feed says beyond that is kept here as flow state (`Tx.load_state`), one record
per visit (`visit:<PV1-19>`) and per billing account (`account:<PID-18>`):
- the location history of a visit (ADT A02 transfer, A12 cancel transfer, A17 swap): a
  charge with no FT1-13 department lands on the cost center of the location the patient was
  in on its service date (`department_at`);
- its pending events (A14, A15, A16; A25 and A26 cancel them): recorded, never posted;
- the charges posted on it, so that a cancelled visit (A11, A27, A38) with charges opens a
  `cancelled_visit_with_charges` work item: the hub never reverses them by itself, the
  source must send the credits (documented policy, README);
- the diagnoses and procedures (DG1, PR1; BAR P12), kept for claims;
- per billing account: the coverage (IN1: payer, plan, plan type, PV1-20 financial class)
  and whether BAR P06 ended it or P02 purged it (a later charge is held).

Every update is idempotent on the event id: a redelivered event changes nothing.
"""

from __future__ import annotations

import time
from datetime import date, datetime

import msgspec

from isthmus.flows.accounts import resolve
from isthmus.model.envelope import Envelope, encode_envelope
from isthmus.model.events import (
    BillingAccountClosed,
    ClinicalCodesRecorded,
    CodedEntry,
    Coverage,
    CoverageRecorded,
    EncounterTransferred,
    PatientClassChanged,
    VisitEventRecorded,
)
from isthmus.store.ports import Tx

PENDING = {"A14": "pending admit", "A15": "pending transfer", "A16": "pending discharge"}
CANCELS_PENDING = {"A25": "A16", "A26": "A15"}
CANCELS_VISIT = {"A11": "cancel admit/visit", "A27": "cancel pending admit",
                 "A38": "cancel pre-admit"}
QUEUE = "patient-accounting"


class Stop(msgspec.Struct, frozen=True):
    """One place the visit was in, from `at` (ISO date/time) on."""

    event_id: str
    at: str
    location: str
    department: str
    trigger: str


class VisitState(msgspec.Struct):
    patient_key: str = ""
    patient_class: str = ""
    status: str = ""
    stops: list[Stop] = msgspec.field(default_factory=list)
    pending: list[str] = msgspec.field(default_factory=list)  # triggers still pending
    charges: list[str] = msgspec.field(default_factory=list)  # posted charge event ids
    diagnoses: list[CodedEntry] = msgspec.field(default_factory=list)
    procedures: list[CodedEntry] = msgspec.field(default_factory=list)
    seen: list[str] = msgspec.field(default_factory=list)  # applied event ids


class AccountState(msgspec.Struct):
    status: str = "open"  # open | ended | purged
    plans: list[Coverage] = msgspec.field(default_factory=list)
    seen: list[str] = msgspec.field(default_factory=list)


_visit_dec = msgspec.json.Decoder(VisitState)
_account_dec = msgspec.json.Decoder(AccountState)
_enc = msgspec.json.Encoder()


def load_visit(tx: Tx, visit: str) -> VisitState:
    body = tx.load_state(f"visit:{visit}")
    return _visit_dec.decode(body) if body else VisitState()


def load_account(tx: Tx, number: str) -> AccountState:
    body = tx.load_state(f"account:{number}")
    return _account_dec.decode(body) if body else AccountState()


def _save_visit(tx: Tx, visit: str, state: VisitState) -> None:
    tx.save_state(f"visit:{visit}", _enc.encode(state))


def _hold(tx: Tx, env: Envelope, kind: str, detail: str) -> str:
    tx.add_work_item(kind=kind, queue=QUEUE, key=env.key, event_id=env.event_id,
                     correlation_id=env.correlation_id, detail=detail,
                     envelope=encode_envelope(env), now=time.time())
    return "held"


def _at(env: Envelope, when: datetime | None) -> str:
    return (when or env.occurred_at).isoformat()


def transfer(tx: Tx, secret: str, env: Envelope, ev: EncounterTransferred) -> str:
    """A02 / A17: a new stop; A12: the last transfer is undone. The encounter row keeps
    its status; its facility follows the message."""
    if not ev.visit_number:
        return "applied"
    p = resolve(tx, secret, ev.patient)
    state = load_visit(tx, ev.visit_number)
    if env.event_id in state.seen:
        return "duplicate"
    state.seen.append(env.event_id)
    if ev.cancelled:
        for i in range(len(state.stops) - 1, -1, -1):
            if state.stops[i].trigger in ("A02", "A17"):
                del state.stops[i]
                break
    else:
        state.stops.append(Stop(env.event_id, _at(env, ev.at), ev.location, ev.department,
                                ev.trigger))
    state.patient_key = p.key
    _save_visit(tx, ev.visit_number, state)
    tx.put_encounter(ev.visit_number, p.key, ev.facility, "", state.status or "active",
                     env.occurred_at.isoformat())
    return "applied"


def department_at(tx: Tx, visit: str, on: date) -> str:
    """The department of the location the visit was in on `on` (its last stop up to that
    day; the first stop when the charge precedes every transfer); "" when none is known."""
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
        tx.put_encounter(ev.visit_number, p.key, ev.facility, ev.patient_class,
                         state.status or "active", env.occurred_at.isoformat())
    return "applied"


def record(tx: Tx, secret: str, env: Envelope, ev: VisitEventRecorded) -> str:
    """Pending events and cancellations (module docstring)."""
    p = resolve(tx, secret, ev.patient)
    if not ev.visit_number:
        return "applied"
    state = load_visit(tx, ev.visit_number)
    if env.event_id in state.seen:
        return "duplicate"
    state.seen.append(env.event_id)
    state.patient_key = p.key
    outcome = "applied"
    if ev.trigger in PENDING:
        state.pending.append(ev.trigger)
    elif ev.trigger in CANCELS_PENDING:
        target = CANCELS_PENDING[ev.trigger]
        if target in state.pending:
            state.pending.remove(target)
    elif ev.trigger == "A13":  # cancel discharge: the visit is active again
        state.status = "active"
    elif ev.trigger in CANCELS_VISIT:
        state.status = "cancelled"
        if state.charges:
            outcome = _hold(tx, env, "cancelled_visit_with_charges",
                            f"ADT^{ev.trigger} ({CANCELS_VISIT[ev.trigger]}) on a visit with "
                            f"{len(state.charges)} posted charge(s): they are not reversed "
                            "by the hub; credit them in the source system or resolve")
    _save_visit(tx, ev.visit_number, state)
    if state.status:
        tx.put_encounter(ev.visit_number, p.key, ev.facility, "", state.status,
                         env.occurred_at.isoformat())
    return outcome


def set_status(tx: Tx, visit: str, status: str) -> None:
    """A01/A04 (active) and A03 (discharged) as the visit's status, so later events keep it."""
    if visit:
        state = load_visit(tx, visit)
        if state.status != status:
            state.status = status
            _save_visit(tx, visit, state)


def charge_posted(tx: Tx, visit: str, event_id: str) -> None:
    """Count a posted charge on its visit (a later cancel of the visit opens a work item)."""
    if not visit:
        return
    state = load_visit(tx, visit)
    if event_id not in state.charges:
        state.charges.append(event_id)
        _save_visit(tx, visit, state)


def codes(tx: Tx, env: Envelope, ev: ClinicalCodesRecorded) -> str:
    """DG1 / PR1 kept with the visit (else the account number as visit) for claims."""
    visit = ev.visit_number or ev.account_number
    if not visit:
        return "applied"
    state = load_visit(tx, visit)
    state.diagnoses = list(ev.diagnoses) or state.diagnoses
    state.procedures = list(ev.procedures) or state.procedures
    _save_visit(tx, visit, state)
    return "applied"


def coverage(tx: Tx, ev: CoverageRecorded) -> str:
    """IN1: the account's payers and plans, as the latest message states them."""
    state = load_account(tx, ev.account_number)
    state.plans = list(ev.plans)
    tx.save_state(f"account:{ev.account_number}", _enc.encode(state))
    return "applied"


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
    """"ended" or "purged" when BAR P06 / P02 closed the account, else ""."""
    if not account_number:
        return ""
    status = load_account(tx, account_number).status
    return "" if status == "open" else status
