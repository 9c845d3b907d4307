"""A FHIR Claim, ClaimResponse and ExplanationOfBenefit in the claim's life (issue 20).

A billing system that speaks FHIR sends its Claim to the hub (`flows.fhir_intake`, one
stored version per resource type + id + content; the FHIR Claim -> ``ClaimSubmitted``
mapping is `formats.fhir.events`), and its payer answers over FHIR too. What the 837 path
does with edits and acknowledgements, this does with those resources:

* a FHIR Claim creates the claim (:func:`on_claim`, key: ``Claim.identifier[0]``, else its
  id, the patient control number the answers name) in state ``created``, then the edits
  that apply to a FHIR Claim (:func:`edits`: total, service date, the provider's NPI
  check digit when it is an NPI, no claim of that number in flight) make it ``scrubbed``,
  or leave it ``created`` with a ``claim-edits`` item naming the FHIR elements. No 837
  leaves for it: the Claim went to its payer over FHIR, so the payer's first answer marks
  it ``submitted`` (:func:`answered`; :func:`answer` decides it without the store)
  before applying what the answer says.
* a ClaimResponse that adjudicated with nothing paid yet (outcome complete or partial) is
  a status A2 (`formats.fhir.remittance`): ``accepted`` (`flows.claim_acks`); one that
  pays is accepted, then paid as an 835 is; one that pays nothing (outcome error, or no
  payment with reasons) ``rejects`` the claim, with a ``claim-rejections`` item, rather
  than denying it (`flows.claim_remit`).
* an ExplanationOfBenefit with a payment moves the claim ``paid``, ``partially_paid`` or
  ``denied`` with the posting rules of an 835 (`flows.remittance.post_claim_payment`,
  which keeps the rule for a FHIR payment whose claim has no billing account).

Decisions over the caller's transaction, at the caller's ``now``: read, decided without
the store (:func:`claim_decision`, :func:`answer`), applied by `flows.decision.apply`
(issue 17).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from isthmus.flows import claim_life as life
from isthmus.flows.claim_life import ClaimMove
from isthmus.flows.claim_submission import KIND, QUEUE, RESENDABLE
from isthmus.flows.decision import Decision, WorkItem, Write, apply
from isthmus.flows.outcome import APPLIED
from isthmus.formats.x12.claim_edits import npi_valid
from isthmus.model import ClaimSubmitted
from isthmus.model.envelope import Envelope
from isthmus.store.ports import ClaimState, Tx

CHANNEL: Final = "fhir"
CLAIM_RESPONSE: Final = "ClaimResponse/"


def from_fhir(env: Envelope) -> bool:
    """Whether the event came in on the FHIR channel."""
    return env.source.channel == CHANNEL


def from_claim_response(env: Envelope) -> bool:
    """The event came from a FHIR ClaimResponse (its stored control id names the type)."""
    return from_fhir(env) and env.source.control_id.startswith(CLAIM_RESPONSE)


def edits(ev: ClaimSubmitted, existing: ClaimState | None) -> list[str]:
    """What a FHIR Claim fails of the edits that apply to it (FHIR R4 element paths, codes
    and amounts only, no PHI); [] when it is clean."""
    out = []  # Claim.insurer is optional in R4 (the payer may be named by its Coverage)
    if ev.total_charge <= 0:
        out.append(f"charge-total: Claim.total {ev.total_charge} {ev.currency} is not positive")
    if ev.service_date is None:
        out.append("required: Claim.billablePeriod.start (or Claim.created) is missing")
    npi = ev.billing_npi
    if len(npi) == 10 and npi.isdigit() and not npi_valid(npi):
        out.append("npi-check-digit: Claim.provider NPI check digit does not match")
    if existing is not None and existing.state not in RESENDABLE:
        out.append(f"duplicate: claim number already {existing.state}")
    return out


@dataclass(frozen=True, slots=True)
class CreateClaim:
    """Create (or recreate) the claim a FHIR Claim names, as `claim_life.create` writes it
    (its state row and its ``created`` event); `claim` is the row it writes."""

    claim: ClaimState
    causation_id: str

    def write(self, tx: Tx, now: float) -> bool:
        c = self.claim
        life.create(
            tx,
            claim_key=c.claim_key,
            payer_id=c.payer_id,
            total_charge=c.total_charge,
            currency=c.currency,
            now=now,
            causation_id=self.causation_id,
            frequency=c.frequency,
            account_number=c.account_number,
            payer_claim_id=c.payer_claim_id,
            actor=CHANNEL,
        )
        return True


def claim_decision(
    env: Envelope, ev: ClaimSubmitted, old: ClaimState | None, *, now: float
) -> tuple[str, Decision]:
    """:func:`on_claim` decided without the store, from the claim of that number already
    kept (`old`, None for a new one): the claim's state after it and the decision (the
    claim created, then its edits noted with a ``claim-edits`` item, or passed)."""
    key = ev.patient_control_number
    failures = edits(ev, old)
    writes: list[Write] = []
    if old is None or (old.state in RESENDABLE and old.state != life.CORRECTED):
        state = ClaimState(  # as `claim_life.create` writes it (`CreateClaim`)
            claim_key=key,
            state=life.CREATED,
            payer_id=ev.payer_id,
            total_charge=ev.total_charge,
            currency=ev.currency,
            created_at=old.created_at if old else now,
            updated_at=now,
            payer_claim_id=ev.payer_claim_control_number or (old.payer_claim_id if old else ""),
            account_number=key,
            frequency=ev.frequency or "1",
        )
        writes.append(CreateClaim(state, env.event_id))
    else:  # in flight (left as it is, the item says why), or corrected
        state = old
    if failures:
        detail = "; ".join(failures)
        state, m = life.noted(
            state, "edits_failed", now=now, causation_id=env.event_id, detail=detail
        )
        writes.append(m)
        item = WorkItem(KIND, QUEUE, key, f"claim-edits/{env.event_id}", env.correlation_id, detail)
        return state.state, Decision(APPLIED, open=(item,), writes=tuple(writes))
    state, m = life.move(
        state,
        "edits_passed",
        now=now,
        causation_id=env.event_id,
        correlation_id=env.correlation_id,
        actor=CHANNEL,
        detail=f"FHIR {env.source.control_id}: every applicable edit passed",
        total_charge=ev.total_charge,
        frequency=ev.frequency or "1",
    )
    writes.append(m)
    return state.state, Decision(APPLIED, writes=tuple(writes))


def on_claim(tx: Tx, env: Envelope, ev: ClaimSubmitted, *, now: float) -> str:
    """Create (or recreate, once corrected, rejected or denied) the claim a FHIR Claim
    names, and scrub it; returns its state."""
    state, decision = claim_decision(
        env, ev, tx.get_claim_state(ev.patient_control_number), now=now
    )
    apply(tx, decision, now)
    return state


def answered(tx: Tx, claim: ClaimState, env: Envelope, *, now: float) -> ClaimState:
    """A scrubbed FHIR claim its payer answers was submitted to it over FHIR: mark it so,
    once, before the answer applies."""
    new, m = answer(claim, env, now=now)
    if m is not None:
        m.write(tx, now)
    return new


def answer(claim: ClaimState, env: Envelope, *, now: float) -> tuple[ClaimState, ClaimMove | None]:
    """:func:`answered` decided without the store: the claim after it, and the move to
    write (None: not a scrubbed claim answered over FHIR)."""
    if claim.state != life.SCRUBBED or not from_fhir(env):
        return claim, None
    return life.move(
        claim,
        "submitted",
        now=now,
        causation_id=env.event_id,
        correlation_id=env.correlation_id,
        actor=CHANNEL,
        detail=f"sent to its payer over FHIR, answered by {env.source.control_id}",
        submitted_at=now,
    )
