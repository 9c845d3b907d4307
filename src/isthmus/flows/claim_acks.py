"""What comes back about submitted claims: 999, 277CA and 277.

Issue 20.

* A 999 (005010X231A1) names the group (AK102 = our GS06) and each set (AK202 = our ST02)
  it acknowledges: every claim that went in that set is ``accepted`` (IK501 A or E) or
  ``rejected`` (R, M, W, X) if it is still ``submitted`` (else, a 277CA came first, kept as
  a fact), a rejection opening a ``claim_rejected`` work item in queue
  ``claim-rejections`` with the IK3/IK4 codes and positions (never IK404, a copy of the
  data). Claims are found by the control numbers kept on their state.
* A 277CA (005010X214) and a 277 (005010X212) name claims one by one (REF*EJ / REF*D9 /
  TRN02 = CLM01, REF*1K the payer's number, which is kept): category A1/A2/A5/A6
  ``accepted``, A3/A4/A7/A8/E* ``rejected`` (and a work item), P* ``pending``, F* and R*
  kept on the claim as a fact (the 835 decides paid or denied). Status category and code
  stay on the claim state; each application is an event of its timeline.
* A 277CA that rejects above the claims (STC at the information receiver level, 2200B,
  or the billing provider level, 2200C, with no claim level) applies to every claim of
  the batch it names (2200B TRN02 = the BHT03 our 837 carried, flow state
  `claims/batch/<BHT03>`), on level 19 only to those of the billing provider NPI it
  names: each still awaiting its acknowledgement is ``rejected`` with the status code,
  and one ``claim_batch_rejected`` item per batch names the reason
  (:func:`on_batch_status`).
* The 276 that asks about claims awaiting their payer past its turnaround is
  `flows.claim_inquiries` (:func:`request_status`, for `isthmus claims status-requests`).

999s, 277CAs and 277s dropped in the drop folder or taken by `isthmus ingest` arrive as
events (`formats.x12.responses`) routed here by `flows.processor` (:func:`on_acknowledged`,
:func:`on_status`, each applied once per event id); :func:`apply_999` and :func:`apply_277`
decode a file the same way and apply it in one transaction (`isthmus claims ack`). The
claims of a set are found by the flow state `claims/sent/<GS06>/<ST02>` written when the
set left. A status for a claim the hub does not know is counted and left (``unknown``); a status
that cannot move a claim in its state (a late 277CA after the 835) is kept as a fact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from isthmus.flows import claim_eligibility, claim_fhir
from isthmus.flows import claim_life as life
from isthmus.flows.claim_submission import sent_batch_state, sent_set_state
from isthmus.formats.fhir.remittance import CLAIM_RESPONSE
from isthmus.formats.x12 import check_envelope, read
from isthmus.formats.x12.claim_status import ACCEPTED_CATEGORIES, REJECTED_CATEGORIES
from isthmus.formats.x12.responses import response_events
from isthmus.model import (
    AcknowledgementReceived,
    ClaimBatchStatusReported,
    ClaimStatusReported,
    EligibilityReported,
)
from isthmus.model.envelope import Envelope, KeyedEvent
from isthmus.store.ports import ClaimState, Store, Tx

QUEUE: Final = "claim-rejections"
KIND: Final = "claim_rejected"
BATCH_KIND: Final = "claim_batch_rejected"
_APPLIED: Final = "claims/applied/"


@dataclass
class Applied:
    """Per claim what an acknowledgement or status did (CLM01 -> new state or fact)."""

    claims: dict[str, str] = field(default_factory=dict)
    unknown: int = 0


def _reject_item(tx: Tx, claim: ClaimState, *, source: str, detail: str, now: float) -> None:
    tx.add_work_item(
        kind=KIND,
        queue=QUEUE,
        key=claim.claim_key,
        event_id=f"claim-rejected/{claim.claim_key}/{source}",
        correlation_id=f"claims/{claim.claim_key}",
        detail=detail,
        envelope=b"",
        now=now,
    )


def _once(tx: Tx, event_id: str) -> bool:
    """True the first time an event is applied (a redelivery of it changes nothing)."""
    mark = _APPLIED + event_id
    if tx.load_state(mark):
        return False
    tx.save_state(mark, b"1")
    return True


def on_acknowledged(
    tx: Tx, ev: AcknowledgementReceived, *, now: float, source: str, event_id: str = ""
) -> Applied:
    """Accept or reject the claims of the set one received 999 loop 2000 names."""
    out = Applied()
    if event_id and not _once(tx, event_id):
        return out
    raw = tx.load_state(sent_set_state(ev.group_control, ev.set_control))
    named = [
        c for c in (tx.get_claim_state(k) for k in (raw or b"").decode().split()) if c is not None
    ]
    if not named:
        out.unknown += 1
        return out
    errors = "; ".join(
        f"IK3 {e.segment_id} position {e.position} loop {e.loop} code {e.code}"
        + "".join(f", IK4 {x}" for x in e.elements)
        for e in ev.errors
    )
    detail = (
        f"999 IK501 {ev.status or '-'} for set {ev.set_control}"
        + (f" ({', '.join(ev.codes)})" if ev.codes else "")
        + (f": {errors}" if errors else "")
    )
    kind = "ack_accepted" if ev.accepted else "ack_rejected"
    for c in named:
        if not life.can(c.state, kind):  # a 277CA came first: a fact now
            life.note(tx, c, "ack", now=now, causation_id=source, detail=detail)
            out.claims[c.claim_key] = c.state
            continue
        new = life.advance(tx, c, kind, now=now, causation_id=source, detail=detail)
        if not ev.accepted:
            _reject_item(tx, new, source=source, detail=detail, now=now)
        out.claims[c.claim_key] = new.state
    return out


def on_status(
    tx: Tx, ev: ClaimStatusReported, *, now: float, source: str, event_id: str = ""
) -> Applied:
    """Apply one claim status of a 277 or 277CA to the claim it names."""
    out = Applied()
    if event_id and not _once(tx, event_id):
        return out
    claim = life.find(tx, ev.patient_control_number or ev.trace, ev.payer_claim_control_number)
    if claim is None or not ev.statuses:
        out.unknown += 1
        return out
    out.claims[claim.claim_key] = _apply_status(tx, claim, ev, now=now, source=source)
    return out


def billing_npi(claim: ClaimState) -> str:
    """The billing provider NPI (2010AA NM109, NM108 XX) the claim was submitted with."""
    if not claim.body:
        return ""
    body = json.loads(claim.body)
    es = str(body["delimiters"][0])
    for seg in body.get("billing", ()):
        e = str(seg).split(es)
        if e[0] == "NM1" and len(e) > 9 and e[1] == "85" and e[8] == "XX":
            return e[9].strip()
    return ""


def on_batch_status(
    tx: Tx, ev: ClaimBatchStatusReported, *, now: float, source: str, event_id: str = ""
) -> Applied:
    """A 277CA rejection above the claims: every claim of the batch it names (2200B TRN02
    = our BHT03), of the billing provider it names on level 19 (NPI), still awaiting its
    acknowledgement moves to ``rejected`` with the status code; one work item per batch
    names the reason. An acceptance at these levels changes nothing (the claims' own
    statuses follow)."""
    out = Applied()
    if event_id and not _once(tx, event_id):
        return out
    first = ev.statuses[0] if ev.statuses else None
    if first is None or category(first.category) != "rejected":
        return out
    raw = tx.load_state(sent_batch_state(ev.batch)) if ev.batch else None
    named = [
        c
        for c in (tx.get_claim_state(k) for k in (raw or b"").decode().split())
        if c is not None and (ev.level != "19" or billing_npi(c) == ev.provider_npi)
    ]
    if not named:
        out.unknown += 1
        return out
    codes = ", ".join(
        f"{s.category}:{s.code}" + (f":{s.entity}" if s.entity else "") for s in ev.statuses
    )
    where = (
        "billing provider NPI " + ev.provider_npi if ev.level == "19" else "information receiver"
    )
    detail = f"{ev.report} rejected batch {ev.batch} at the {where} level: {codes}"
    moved: list[str] = []
    for c in named:
        changes = {"status_category": first.category, "status_code": first.code}
        if life.can(c.state, "ack_rejected"):
            new = life.advance(
                tx, c, "ack_rejected", now=now, causation_id=source, detail=detail, **changes
            )
            moved.append(c.claim_key)
        else:  # already adjudicated or rejected: a fact on its timeline
            new = life.note(tx, c, "status", now=now, causation_id=source, detail=detail, **changes)
        out.claims[c.claim_key] = new.state
    if moved:
        who = f"{ev.batch}/{ev.provider_npi}" if ev.level == "19" else ev.batch
        tx.add_work_item(
            kind=BATCH_KIND,
            queue=QUEUE,
            key=f"batch {who}",
            event_id=f"claim-batch-rejected/{who}/{source}",
            correlation_id=f"claims/batch/{ev.batch}",
            detail=f"{detail}; {len(moved)} claim(s) rejected: {', '.join(moved)}",
            envelope=b"",
            now=now,
        )
    return out


def on_response(
    tx: Tx,
    env: Envelope,
    ev: AcknowledgementReceived
    | ClaimStatusReported
    | ClaimBatchStatusReported
    | EligibilityReported,
) -> str:
    """The worker's entry (`flows.processor`): a received 999 set, 277/277CA claim status
    or 271 answer applied once per event id to the claims or the account it names
    (`flows.claim_eligibility`); outcome ``unknown`` when it names nothing the hub sent."""
    now, source = env.recorded_at.timestamp(), env.event_id
    if isinstance(ev, EligibilityReported):
        return (
            "applied"
            if claim_eligibility.on_eligibility(
                tx, ev, now=now, source=source, event_id=env.event_id
            )
            else "unknown"
        )
    if isinstance(ev, AcknowledgementReceived):
        got = on_acknowledged(tx, ev, now=now, source=source, event_id=env.event_id)
    elif isinstance(ev, ClaimBatchStatusReported):
        got = on_batch_status(tx, ev, now=now, source=source, event_id=env.event_id)
    else:
        if ev.report == CLAIM_RESPONSE:  # a FHIR claim's payer answers: it was submitted
            found = life.find(
                tx, ev.patient_control_number or ev.trace, ev.payer_claim_control_number
            )
            if found is not None:
                claim_fhir.answered(tx, found, env, now=now)
        got = on_status(tx, ev, now=now, source=source, event_id=env.event_id)
    return "applied" if got.claims else "unknown"


def _events(data: bytes | str) -> list[KeyedEvent]:
    """The response events of a file, as the intake decodes them (no 999 check of ours)."""
    ic = read(data)
    kinds = [t.id for g in check_envelope(ic).groups for t in g.transactions]
    return response_events(ic, kinds, interchange_id="direct")


def apply_999(store: Store, data: bytes | str, *, now: float, source: str) -> Applied:
    """Accept or reject the claims of each set a 999 names (a direct call; the intake
    routes the same events through `on_acknowledged`)."""
    out = Applied()
    with store.transaction() as tx:
        for k in _events(data):
            if isinstance(k.event, AcknowledgementReceived):
                _index_sent(store, tx, k.event)
                got = on_acknowledged(tx, k.event, now=now, source=source)
                out.claims.update(got.claims)
                out.unknown += got.unknown
    return out


def _index_sent(store: Store, tx: Tx, ev: AcknowledgementReceived) -> None:
    """A set that left before its claims were indexed by set: found by the controls kept
    on each claim (ISA13/GS06/ST02), and indexed now."""
    name = sent_set_state(ev.group_control, ev.set_control)
    if tx.load_state(name):
        return
    want = [ev.group_control.strip().lstrip("0") or "0", ev.set_control.strip()]
    keys = [
        c.claim_key
        for c in store.claim_states(limit=1_000_000)
        if c.controls
        and [x.lstrip("0") or "0" for x in c.controls.split("/")[1:2]] + c.controls.split("/")[2:]
        == want
    ]
    if keys:
        tx.save_state(name, " ".join(keys).encode())


def apply_277(store: Store, data: bytes | str, *, now: float, source: str) -> Applied:
    """Apply each claim status of a 277 or 277CA to the claim it names (a direct call; the
    intake routes the same events through `on_status`)."""
    out = Applied()
    with store.transaction() as tx:
        for k in _events(data):
            if isinstance(k.event, ClaimStatusReported):
                got = on_status(tx, k.event, now=now, source=source)
            elif isinstance(k.event, ClaimBatchStatusReported):
                got = on_batch_status(tx, k.event, now=now, source=source)
            else:
                continue
            out.claims.update(got.claims)
            out.unknown += got.unknown
    return out


def _apply_status(
    tx: Tx, claim: ClaimState, st: ClaimStatusReported, *, now: float, source: str
) -> str:
    first = st.statuses[0]
    codes = ", ".join(
        f"{s.category}:{s.code}" + (f":{s.entity}" if s.entity else "") for s in st.statuses
    )
    detail = f"{st.report} {codes}"
    changes: dict[str, Any] = {"status_category": first.category, "status_code": first.code}
    if st.payer_claim_control_number:
        changes["payer_claim_id"] = st.payer_claim_control_number
    kind = {
        "accepted": "ack_accepted",
        "rejected": "ack_rejected",
        "pending": "status_pending",
    }.get(category(first.category), "")
    if kind and life.can(claim.state, kind):
        new = life.advance(tx, claim, kind, now=now, causation_id=source, detail=detail, **changes)
        if kind == "ack_rejected":
            _reject_item(tx, new, source=source, detail=detail, now=now)
        return new.state
    life.note(tx, claim, "status", now=now, causation_id=source, detail=detail, **changes)
    return claim.state


def category(c: str) -> str:
    """As ``ClaimStatus.category``: A1/A2/A5/A6 accepted, A3/A4/A7/A8 and E* rejected
    (005010X214 1.10.2), P* pending, F* finalized, R* a request for information."""
    if c in ACCEPTED_CATEGORIES:
        return "accepted"
    if c in REJECTED_CATEGORIES or c.startswith("E"):
        return "rejected"
    return {"P": "pending", "F": "finalized", "R": "info"}.get(c[:1], "")


__all__ = [
    "BATCH_KIND",
    "KIND",
    "QUEUE",
    "Applied",
    "apply_277",
    "apply_999",
    "billing_npi",
    "category",
    "on_acknowledged",
    "on_batch_status",
    "on_response",
    "on_status",
]
