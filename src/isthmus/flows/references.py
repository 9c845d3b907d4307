"""Late references: a posting whose patient is not known yet waits for it, then posts.

FHIR names a posting's patient by reference (``ChargeItem.subject``,
``ExplanationOfBenefit.patient``, ``Encounter.subject``, ``Account.subject``). When the
Patient is neither in the Bundle nor stored, the intake cannot know its MRN, so it cannot
derive the patient's account token; it gives the event the `pending` patient
(`formats.fhir.identity`). Posting that to an account token of its own would leave A/R on
an account no patient is ever linked to. Instead the worker, before any flow:

* `admit`: an event naming a pending ``Patient/<id>`` is held in the flow state
  ``fhir-reference:Patient/<id>`` (its envelope, in order), and an ``awaiting_patient`` work
  item opens at once in the queue that owns its money (`flows.identity.queue_of`: a charge
  in revenue-integrity, a payment in cash-posting). Outcome "held". If the Patient came
  first (its registration raced the intake), the event is linked and goes on at once. A
  claim payment that does not need its patient (a denial, or one matched to a billing
  account by CLP01 or its claim: `flows.remittance.match_account`) is not held.
* `release`: when that Patient is registered (a ``PatientRegistered`` from channel
  ``fhir`` whose control id is ``Patient/<id>``), the link is kept in the same state, and
  the held envelopes come back rewritten to the patient it names (same event ids, so
  every effect stays keyed as before); the processor posts them in the same transaction
  as the registration, and the awaiting item closes itself.

The wait: the work item is the waiting state, open from the first moment, so nothing held
is invisible. It closes by itself when the Patient arrives; how long it may stay open
before a person must act (ask the sender for the Patient) is the owning queue's
``[sla] queue_age_hours`` (else ``workitem_age_hours``), which the SLA KPIs and the
``queue_age``/``sla_breach`` alerts enforce. A resubmit of the item runs `admit` again:
linked if the Patient has arrived since, held again otherwise.

Accounts the same way: a ChargeItem names its billing account ``Account/<id>``, a
logical id, while the number the Account registers (and lineage, closed-status checks,
merges and A/R by account know) is its business identifier. The intake resolves the
reference from the Bundle or the stored Account; when the Account has not arrived, the
charge carries `pending_account` and `admit` holds it in ``fhir-reference:Account/<id>``
with an ``awaiting_account`` work item (after any wait for its Patient); the Account's
``BillingAccountOpened`` (control id ``Account/<id>``) links the reference to its number
and `release` gives the held charges back with that account number.

HL7 v2 needs none of this: a DFT names its patient by PID-3 (MRN and assigning
authority), so its account token is derived before the A04 arrives and is the same after.
"""

from __future__ import annotations

from typing import Final

import msgspec

from isthmus.flows.denial_codes import is_denial
from isthmus.flows.identity import queue_of
from isthmus.flows.remittance import match_account
from isthmus.formats.fhir.events import CHANNEL
from isthmus.formats.fhir.identity import (
    account_reference,
    account_waiting_for,
    patient_reference,
    waiting_for,
)
from isthmus.model.envelope import Envelope, encode_envelope
from isthmus.model.events import (
    BillingAccountOpened,
    Charge,
    ClaimRemitted,
    Event,
    PatientRef,
    PatientRegistered,
)
from isthmus.store.ports import Tx

STATE_PREFIX: Final = "fhir-reference:"
KIND: Final = "awaiting_patient"
ACCOUNT_KIND: Final = "awaiting_account"
HELD: Final = "held"


class Waiting(msgspec.Struct):
    """The flow state of one reference: the patient (or, for an ``Account/<id>``, the
    account number) it names once known, and the envelopes held for it until then."""

    patient: PatientRef | None = None
    held: list[Envelope] = []
    account: str = ""


_enc = msgspec.json.Encoder(decimal_format="string")
_dec = msgspec.json.Decoder(Waiting)


def reference_of(env: Envelope) -> str | None:
    """The ``Patient/<id>`` an event waits for, or None when its patient is known."""
    patient = getattr(env.payload, "patient", None)
    return waiting_for(patient) if isinstance(patient, PatientRef) else None


def account_of(env: Envelope) -> str | None:
    """The ``Account/<id>`` a charge waits for, or None when its account is known."""
    ev = env.payload
    return account_waiting_for(ev.account_number) if isinstance(ev, Charge) else None


def linked_account(env: Envelope, number: str) -> Envelope:
    """`env` (a charge) with its pending account number replaced by `number`."""
    return msgspec.structs.replace(
        env, payload=msgspec.structs.replace(env.payload, account_number=number)
    )


def linked(env: Envelope, patient: PatientRef) -> Envelope:
    """`env` with its pending patient replaced by `patient` (and the partition key, when
    it was the pending patient's)."""
    old = getattr(env.payload, "patient", None)
    payload = msgspec.structs.replace(env.payload, patient=patient)
    key = patient.key if isinstance(old, PatientRef) and env.key == old.key else env.key
    return msgspec.structs.replace(env, payload=payload, key=key)


def _needs_patient(tx: Tx, ev: Event) -> bool:
    """False for a claim payment that does not use its patient: a denial, or one its
    patient control number (or claim) matches to a billing account (`match_account`)."""
    if not isinstance(ev, ClaimRemitted):
        return True
    return (
        not is_denial(ev)
        and match_account(tx, msgspec.structs.replace(ev, patient=None))[0] is None
    )


def _load(tx: Tx, reference: str) -> Waiting:
    body = tx.load_state(STATE_PREFIX + reference)
    return _dec.decode(body) if body else Waiting()


def _hold(
    tx: Tx, env: Envelope, reference: str, state: Waiting, kind: str, whose: str, now: float
) -> None:
    if all(h.event_id != env.event_id for h in state.held):
        state.held.append(env)
        tx.save_state(STATE_PREFIX + reference, _enc.encode(state))
    tx.add_work_item(
        kind=kind,
        queue=queue_of(env.payload),
        key=env.key,
        event_id=env.event_id,
        correlation_id=env.correlation_id,
        detail=(
            f"{env.type} from {env.source.control_id} names {reference}, which has not "
            f"arrived: held, not posted. It posts by itself to {whose} when {reference} "
            "arrives (FHIR create/update, a Bundle or a file); if it does not, ask the "
            "sender for it"
        ),
        envelope=encode_envelope(env),
        now=now,
    )


def admit(tx: Tx, env: Envelope, now: float) -> Envelope | None:
    """The envelope to handle (linked when its Patient and Account are known), or None:
    held, for its Patient first, then for its Account."""
    reference = reference_of(env)
    if reference is not None and _needs_patient(tx, env.payload):
        state = _load(tx, reference)
        if state.patient is None:
            _hold(tx, env, reference, state, KIND, "that patient's account", now)
            return None
        env = linked(env, state.patient)
    account = account_of(env)
    if account is None:
        return env
    state = _load(tx, account)
    if state.account:
        return linked_account(env, state.account)
    _hold(tx, env, account, state, ACCOUNT_KIND, "that account's number", now)
    return None


def release(
    tx: Tx, env: Envelope, ev: PatientRegistered | BillingAccountOpened, now: float
) -> list[Envelope]:
    """Link the FHIR Patient `env` registers to `ev.patient` (the FHIR Account to
    `ev.account_number`); the envelopes held for it, linked, in arrival order (the caller
    handles them in this transaction: `admit` again, for a charge whose Patient came and
    whose Account has not)."""
    if env.source.channel != CHANNEL:
        return []
    if isinstance(ev, BillingAccountOpened):
        reference = account_reference(env.source.control_id)
        now_linked = Waiting(account=ev.account_number)
    else:
        reference = patient_reference(env.source.control_id)
        now_linked = Waiting(ev.patient)
    if reference is None:
        return []
    state = _load(tx, reference)
    if (state.patient, state.account) == (
        now_linked.patient,
        now_linked.account,
    ) and not state.held:
        return []
    tx.save_state(STATE_PREFIX + reference, _enc.encode(now_linked))
    for h in state.held:
        tx.close_work_items(h.event_id, f"{reference} arrived: linked and posted", now)
    if isinstance(ev, BillingAccountOpened):
        return [linked_account(h, ev.account_number) for h in state.held]
    return [linked(h, ev.patient) for h in state.held]


__all__ = [
    "ACCOUNT_KIND",
    "HELD",
    "KIND",
    "STATE_PREFIX",
    "Waiting",
    "account_of",
    "admit",
    "linked",
    "linked_account",
    "reference_of",
    "release",
]
