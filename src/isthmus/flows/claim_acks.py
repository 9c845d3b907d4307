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

Issue 17: each response is read (its facts), decided without the store and applied by
`flows.decision.apply`, the worker's at its `now` (`flows.claim_responses`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from isthmus.flows import claim_eligibility
from isthmus.flows.claim_responses import (
    BATCH_KIND,
    KIND,
    QUEUE,
    Answer,
    ack_facts,
    batch_facts,
    billing_npi,
    category,
    decide_acknowledged,
    decide_batch_status,
    decide_status,
    status_facts,
)
from isthmus.flows.claim_submission import sent_set_state
from isthmus.flows.decision import apply
from isthmus.formats.x12 import check_envelope, read
from isthmus.formats.x12.responses import response_events
from isthmus.model import (
    AcknowledgementReceived,
    ClaimBatchStatusReported,
    ClaimStatusReported,
    EligibilityReported,
)
from isthmus.model.envelope import Envelope, KeyedEvent
from isthmus.store.ports import Store, Tx


@dataclass
class Applied:
    """Per claim what an acknowledgement or status did (CLM01 -> new state or fact)."""

    claims: dict[str, str] = field(default_factory=dict)
    unknown: int = 0


def _applied(tx: Tx, got: Answer, now: float) -> Applied:
    apply(tx, got.decision, now)
    return Applied(got.claims, got.unknown)


def on_acknowledged(
    tx: Tx, ev: AcknowledgementReceived, *, now: float, source: str, event_id: str = ""
) -> Applied:
    """Accept or reject the claims of the set one received 999 loop 2000 names."""
    facts = ack_facts(tx, ev, event_id)
    return _applied(tx, decide_acknowledged(ev, facts, source=source, now=now), now)


def on_status(
    tx: Tx, ev: ClaimStatusReported, *, now: float, source: str, event_id: str = ""
) -> Applied:
    """Apply one claim status of a 277 or 277CA to the claim it names."""
    facts = status_facts(tx, ev, event_id)
    return _applied(tx, decide_status(ev, facts, source=source, now=now), now)


def on_batch_status(
    tx: Tx, ev: ClaimBatchStatusReported, *, now: float, source: str, event_id: str = ""
) -> Applied:
    """A 277CA rejection above the claims: every claim of the batch it names (2200B TRN02
    = our BHT03), of the billing provider it names on level 19 (NPI), still awaiting its
    acknowledgement moves to ``rejected`` with the status code; one work item per batch
    names the reason. An acceptance at these levels changes nothing (the claims' own
    statuses follow)."""
    facts = batch_facts(tx, ev, event_id)
    return _applied(tx, decide_batch_status(ev, facts, source=source, now=now), now)


def on_response(
    tx: Tx,
    env: Envelope,
    ev: AcknowledgementReceived
    | ClaimStatusReported
    | ClaimBatchStatusReported
    | EligibilityReported,
    now: float,
) -> str:
    """The worker's entry (`flows.processor`): a received 999 set, 277/277CA claim status
    or 271 answer applied once per event id, at the worker's `now`, to the claims or the
    account it names (`flows.claim_eligibility`); outcome ``unknown`` when it names
    nothing the hub sent."""
    source = env.event_id
    if isinstance(ev, EligibilityReported):
        return (
            "applied"
            if claim_eligibility.on_eligibility(tx, ev, now=now, source=source, event_id=source)
            else "unknown"
        )
    if isinstance(ev, AcknowledgementReceived):
        got = decide_acknowledged(ev, ack_facts(tx, ev, source), source=source, now=now)
    elif isinstance(ev, ClaimBatchStatusReported):
        got = decide_batch_status(ev, batch_facts(tx, ev, source), source=source, now=now)
    else:
        facts = status_facts(tx, ev, source)
        got = decide_status(ev, facts, source=source, now=now, env=env)
    apply(tx, got.decision, now)
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
