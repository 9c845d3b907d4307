"""A 999, 277CA or 277 decided without the store (issue 17): facts first, then a decision.

`flows.claim_acks` applied a response by reading a claim, moving it and opening its work
item, interleaved. Here the same is two steps: `ack_facts`, `status_facts` and
`batch_facts` read what the event names (whether it was applied before, the claims of the
set, the claim, the claims of the batch), then `decide_acknowledged`, `decide_status` and
`decide_batch_status` return an `Answer`: per claim what it did, whether it named nothing
the hub sent, and the `flows.decision.Decision` that writes it (the mark that applies the
event once, the claim-life moves as `claim_life.ClaimMove` writes in their order, the
``claim-rejections`` work items). `flows.decision.apply` writes it at the worker's time.
The rules themselves are `flows.claim_acks`'s module docstring.
"""

from __future__ import annotations

import json
from typing import Any, Final, NamedTuple

from isthmus.flows import claim_fhir
from isthmus.flows import claim_life as life
from isthmus.flows.claim_submission import sent_batch_state, sent_set_state
from isthmus.flows.decision import Decision, SaveState, WorkItem, Write
from isthmus.flows.outcome import APPLIED
from isthmus.formats.fhir.remittance import CLAIM_RESPONSE
from isthmus.formats.x12.claim_status import ACCEPTED_CATEGORIES, REJECTED_CATEGORIES
from isthmus.model import AcknowledgementReceived, ClaimBatchStatusReported, ClaimStatusReported
from isthmus.model.envelope import Envelope
from isthmus.store.ports import ClaimState, Tx

QUEUE: Final = "claim-rejections"
KIND: Final = "claim_rejected"
BATCH_KIND: Final = "claim_batch_rejected"
_APPLIED: Final = "claims/applied/"


class ResponseFacts(NamedTuple):
    """What the store knows about one response: whether it is applied for the first time
    (a redelivery changes nothing), the flow state that marks it applied ("" for a direct
    call, applied every time) and the claims it names."""

    first: bool = True
    mark: str = ""
    claims: tuple[ClaimState, ...] = ()


class Answer(NamedTuple):
    """A response decided: per claim what it did (CLM01 -> new state or fact), how many
    named nothing the hub sent, and the decision that writes it."""

    claims: dict[str, str]
    unknown: int
    decision: Decision


def _once(tx: Tx, event_id: str) -> tuple[bool, str]:
    if not event_id:
        return True, ""
    mark = _APPLIED + event_id
    return not tx.load_state(mark), mark


def _named(tx: Tx, raw: bytes | None) -> tuple[ClaimState, ...]:
    got = (tx.get_claim_state(k) for k in (raw or b"").decode().split())
    return tuple(c for c in got if c is not None)


def ack_facts(tx: Tx, ev: AcknowledgementReceived, event_id: str = "") -> ResponseFacts:
    """The claims of the set a 999 loop 2000 names (none read for a redelivery)."""
    first, mark = _once(tx, event_id)
    if not first:
        return ResponseFacts(False, mark)
    return ResponseFacts(
        True, mark, _named(tx, tx.load_state(sent_set_state(ev.group_control, ev.set_control)))
    )


def status_facts(tx: Tx, ev: ClaimStatusReported, event_id: str = "") -> ResponseFacts:
    """The claim one 277/277CA status names (read for a redelivery too: a FHIR
    ClaimResponse marks its claim submitted before the once check)."""
    first, mark = _once(tx, event_id)
    claim = life.find(tx, ev.patient_control_number or ev.trace, ev.payer_claim_control_number)
    return ResponseFacts(first, mark, () if claim is None else (claim,))


def batch_facts(tx: Tx, ev: ClaimBatchStatusReported, event_id: str = "") -> ResponseFacts:
    """Every claim of the batch a 277CA rejection above the claims names."""
    first, mark = _once(tx, event_id)
    if not first or not ev.batch:
        return ResponseFacts(first, mark)
    return ResponseFacts(True, mark, _named(tx, tx.load_state(sent_batch_state(ev.batch))))


class _Draft:
    """One decision as it is made (local to one decide call)."""

    def __init__(self, facts: ResponseFacts, source: str, now: float) -> None:
        self.source, self.now = source, now
        self.writes: list[Write] = [SaveState(facts.mark, b"1")] if facts.mark else []
        self.items: list[WorkItem] = []
        self.claims: dict[str, str] = {}
        self.unknown = 0

    def move(self, claim: ClaimState, kind: str, detail: str, **changes: Any) -> ClaimState:
        new, m = life.move(
            claim, kind, now=self.now, causation_id=self.source, detail=detail, **changes
        )
        self.writes.append(m)
        return new

    def note(self, claim: ClaimState, kind: str, detail: str, **changes: Any) -> ClaimState:
        new, m = life.noted(
            claim, kind, now=self.now, causation_id=self.source, detail=detail, **changes
        )
        self.writes.append(m)
        return new

    def reject(self, claim: ClaimState, detail: str) -> None:
        key = claim.claim_key
        self.items.append(
            WorkItem(
                KIND, QUEUE, key, f"claim-rejected/{key}/{self.source}", f"claims/{key}", detail
            )
        )

    def done(self) -> Answer:
        return Answer(
            self.claims,
            self.unknown,
            Decision(APPLIED, open=tuple(self.items), writes=tuple(self.writes)),
        )


def decide_acknowledged(
    ev: AcknowledgementReceived, facts: ResponseFacts, *, source: str, now: float
) -> Answer:
    """Accept or reject the claims of the set one received 999 loop 2000 names."""
    d = _Draft(facts, source, now)
    if not facts.first:
        return Answer({}, 0, Decision(APPLIED))
    if not facts.claims:
        d.unknown += 1
        return d.done()
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
    for c in facts.claims:
        if not life.can(c.state, kind):  # a 277CA came first: a fact now
            d.note(c, "ack", detail)
            d.claims[c.claim_key] = c.state
            continue
        new = d.move(c, kind, detail)
        if not ev.accepted:
            d.reject(new, detail)
        d.claims[c.claim_key] = new.state
    return d.done()


def _codes(ev: ClaimStatusReported | ClaimBatchStatusReported) -> str:
    return ", ".join(
        f"{s.category}:{s.code}" + (f":{s.entity}" if s.entity else "") for s in ev.statuses
    )


def decide_status(
    ev: ClaimStatusReported,
    facts: ResponseFacts,
    *,
    source: str,
    now: float,
    env: Envelope | None = None,
) -> Answer:
    """One claim status of a 277 or 277CA on the claim it names; with the worker's `env`,
    a FHIR ClaimResponse first marks a scrubbed FHIR claim submitted (`claim_fhir.answer`)."""
    d = _Draft(facts, source, now)
    claim = facts.claims[0] if facts.claims else None
    if env is not None and ev.report == CLAIM_RESPONSE and claim is not None:
        claim, m = claim_fhir.answer(claim, env, now=now)
        if m is not None:  # written before the once check, as it always was
            if not facts.first:
                return Answer({}, 0, Decision(APPLIED, writes=(m,)))
            d.writes.insert(0, m)
    if not facts.first:
        return Answer({}, 0, Decision(APPLIED))
    if claim is None or not ev.statuses:
        d.unknown += 1
        return d.done()
    first = ev.statuses[0]
    detail = f"{ev.report} {_codes(ev)}"
    changes: dict[str, Any] = {"status_category": first.category, "status_code": first.code}
    if ev.payer_claim_control_number:
        changes["payer_claim_id"] = ev.payer_claim_control_number
    kind = {
        "accepted": "ack_accepted",
        "rejected": "ack_rejected",
        "pending": "status_pending",
    }.get(category(first.category), "")
    if kind and life.can(claim.state, kind):
        new = d.move(claim, kind, detail, **changes)
        if kind == "ack_rejected":
            d.reject(new, detail)
        d.claims[claim.claim_key] = new.state
    else:
        d.note(claim, "status", detail, **changes)
        d.claims[claim.claim_key] = claim.state
    return d.done()


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


def decide_batch_status(
    ev: ClaimBatchStatusReported, facts: ResponseFacts, *, source: str, now: float
) -> Answer:
    """A 277CA rejection above the claims (`claim_acks.on_batch_status`)."""
    d = _Draft(facts, source, now)
    if not facts.first:
        return Answer({}, 0, Decision(APPLIED))
    first = ev.statuses[0] if ev.statuses else None
    if first is None or category(first.category) != "rejected":
        return d.done()
    named = [c for c in facts.claims if ev.level != "19" or billing_npi(c) == ev.provider_npi]
    if not named:
        d.unknown += 1
        return d.done()
    where = (
        "billing provider NPI " + ev.provider_npi if ev.level == "19" else "information receiver"
    )
    detail = f"{ev.report} rejected batch {ev.batch} at the {where} level: {_codes(ev)}"
    moved: list[str] = []
    for c in named:
        changes = {"status_category": first.category, "status_code": first.code}
        if life.can(c.state, "ack_rejected"):
            new = d.move(c, "ack_rejected", detail, **changes)
            moved.append(c.claim_key)
        else:  # already adjudicated or rejected: a fact on its timeline
            new = d.note(c, "status", detail, **changes)
        d.claims[c.claim_key] = new.state
    if moved:
        who = f"{ev.batch}/{ev.provider_npi}" if ev.level == "19" else ev.batch
        d.items.append(
            WorkItem(
                BATCH_KIND,
                QUEUE,
                f"batch {who}",
                f"claim-batch-rejected/{who}/{source}",
                f"claims/batch/{ev.batch}",
                f"{detail}; {len(moved)} claim(s) rejected: {', '.join(moved)}",
            )
        )
    return d.done()


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
    "Answer",
    "ResponseFacts",
    "ack_facts",
    "batch_facts",
    "billing_npi",
    "category",
    "decide_acknowledged",
    "decide_batch_status",
    "decide_status",
    "status_facts",
]
