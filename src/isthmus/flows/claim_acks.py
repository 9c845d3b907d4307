"""What comes back about submitted claims: 999, 277CA and 277, and the 276 that asks.

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
* :func:`request_status` builds a 276 for claims still awaiting their payer longer than
  its expected turnaround (`[claims] turnaround_days.<payer>`, else `status_after_days`),
  at most once per turnaround period each, and sends it like the 837.

A status for a claim the hub does not know is counted and left (``unknown``); a status
that cannot move a claim in its state (a late 277CA after the 835) is kept as a fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from isthmus.config import ClaimSettings
from isthmus.flows import claim_life as life
from isthmus.flows.claim_submission import X12Sender, claim_from_body, next_controls
from isthmus.formats.x12 import parse_837
from isthmus.formats.x12.acknowledgement import parse_999
from isthmus.formats.x12.claim_batch import build_837
from isthmus.formats.x12.claim_status import ClaimStatus, build_276, parse_status
from isthmus.store.ports import ClaimState, Store, Tx

QUEUE: Final = "claim-rejections"
KIND: Final = "claim_rejected"
_ASKED: Final = "claims/276/"
DAY: Final = 86400.0


@dataclass
class Applied:
    """Per claim what an acknowledgement or status did (CLM01 -> new state or fact)."""

    claims: dict[str, str] = field(default_factory=dict)
    unknown: int = 0


def _reject_item(tx: Tx, claim: ClaimState, *, source: str, detail: str, now: float) -> None:
    tx.add_work_item(kind=KIND, queue=QUEUE, key=claim.claim_key,
                     event_id=f"claim-rejected/{claim.claim_key}/{source}",
                     correlation_id=f"claims/{claim.claim_key}", detail=detail, envelope=b"",
                     now=now)


def apply_999(store: Store, data: bytes | str, *, now: float, source: str) -> Applied:
    """Accept or reject the claims of each set a 999 names."""
    ack = parse_999(data)
    out = Applied()
    with store.transaction() as tx:
        sent = [c for c in store.claim_states(limit=1_000_000) if c.controls]
        for g in ack.groups:
            for s in g.sets:
                named = [c for c in (tx.get_claim_state(x.claim_key) for x in sent
                                     if x.controls.split("/")[1:] == [g.control, s.control])
                         if c is not None]
                if not named:
                    out.unknown += 1
                    continue
                errors = "; ".join(
                    f"IK3 {e.segment_id} position {e.position} loop {e.loop} code {e.code}"
                    + "".join(f", IK4 element {x.element} ref {x.reference} code {x.code}"
                              for x in e.elements) for e in s.segments)
                for c in named:
                    kind = "ack_accepted" if s.accepted else "ack_rejected"
                    detail = f"999 IK501 {s.status or '-'} for set {s.control}" + (
                        f" ({', '.join(s.codes)})" if s.codes else "") + (
                        f": {errors}" if errors else "")
                    if not life.can(c.state, kind):  # a 277CA came first: a fact now
                        life.note(tx, c, "ack", now=now, causation_id=source, detail=detail)
                        out.claims[c.claim_key] = c.state
                        continue
                    new = life.advance(tx, c, kind, now=now, causation_id=source,
                                       detail=detail)
                    if not s.accepted:
                        _reject_item(tx, new, source=source, detail=detail, now=now)
                    out.claims[c.claim_key] = new.state
    return out


def store_claims(store: Store, tx: Tx, state: str) -> list[ClaimState]:
    """Claims in ``state``, read again inside ``tx`` (the list comes from the store)."""
    rows = store.claim_states(state, limit=100_000)
    return [c for c in (tx.get_claim_state(r.claim_key) for r in rows)
            if c is not None and c.state == state]


def apply_277(store: Store, data: bytes | str, *, now: float, source: str) -> Applied:
    """Apply each claim status of a 277 or 277CA to the claim it names."""
    batch = parse_status(data)
    out = Applied()
    label = "277CA" if "X214" in batch.guide else "277"
    with store.transaction() as tx:
        for st in batch.claims:
            claim = life.find(tx, st.patient_control_number or st.trace,
                              st.payer_claim_control_number)
            if claim is None or not st.statuses:
                out.unknown += 1
                continue
            out.claims[claim.claim_key] = _apply_status(tx, claim, st, label=label, now=now,
                                                        source=source)
    return out


def _apply_status(tx: Tx, claim: ClaimState, st: ClaimStatus, *, label: str, now: float,
                  source: str) -> str:
    first = st.statuses[0]
    codes = ", ".join(f"{s.category}:{s.code}" + (f":{s.entity}" if s.entity else "")
                      for s in st.statuses)
    detail = f"{label} {codes}"
    changes: dict[str, Any] = {"status_category": first.category,
                                  "status_code": first.code}
    if st.payer_claim_control_number:
        changes["payer_claim_id"] = st.payer_claim_control_number
    kind = {"accepted": "ack_accepted", "rejected": "ack_rejected",
            "pending": "status_pending"}.get(st.category(), "")
    if kind and life.can(claim.state, kind):
        new = life.advance(tx, claim, kind, now=now, causation_id=source, detail=detail,
                           **changes)
        if kind == "ack_rejected":
            _reject_item(tx, new, source=source, detail=detail, now=now)
        return new.state
    life.note(tx, claim, "status", now=now, causation_id=source, detail=detail, **changes)
    return claim.state


def due_for_status(tx: Tx, claims: list[ClaimState], settings: ClaimSettings,
                   now: float) -> list[ClaimState]:
    """Claims awaiting their payer past its turnaround, not asked about in that period."""
    out = []
    for c in claims:
        days = settings.turnaround_days.get(c.payer_id, settings.status_after_days)
        if c.state not in life.AWAITING_PAYER or not c.submitted_at:
            continue
        if now - c.submitted_at < days * DAY:
            continue
        asked = tx.load_state(_ASKED + c.claim_key)
        if asked and now - float(asked.decode()) < days * DAY:
            continue
        out.append(c)
    return out


def status_request_of(c: ClaimState) -> ClaimStatus:
    """The 276 question for a claim, from the claim it was submitted with."""
    scrubbed = claim_from_body(c)
    text = build_837([scrubbed], sender="X", receiver="Y", interchange_control=1,
                     group_control=1, transaction_control=1, reference="R",
                     at=datetime(2000, 1, 1, tzinfo=UTC)).text
    (entry,) = parse_837(text).claims
    dates = [x.service_date for x in entry.lines if x.service_date]
    ends = [x.service_end or x.service_date for x in entry.lines if x.service_date]
    return ClaimStatus(transaction_control="", trace=c.claim_key, payer=entry.payer,
                       provider=entry.billing_provider, subscriber=entry.subscriber,
                       patient=entry.patient, patient_control_number=c.claim_key,
                       payer_claim_control_number=c.payer_claim_id,
                       charge=c.total_charge, service_date=min(dates) if dates else None,
                       service_end=max(e for e in ends if e) if ends else None)


def request_status(store: Store, *, settings: ClaimSettings, sender: X12Sender,
                   now: float) -> list[str]:
    """Send one 276 for every claim past its payer's turnaround; returns their CLM01s."""
    with store.transaction() as tx:
        waiting = [c for s in sorted(life.AWAITING_PAYER) for c in store_claims(store, tx, s)]
        due = due_for_status(tx, waiting, settings, now)
        if not due:
            return []
        first = next_controls(tx)
        text = build_276([status_request_of(c) for c in due], sender=settings.sender_id,
                         receiver=settings.receiver_id, interchange_control=first,
                         group_control=first, at=datetime.fromtimestamp(now, UTC),
                         usage=settings.usage)
        ref = sender.send(name=f"276-{first:09d}.x12", kind="276", body=text.encode())
        for c in due:
            tx.save_state(_ASKED + c.claim_key, repr(now).encode())
            life.note(tx, c, "status_requested", now=now, causation_id=ref,
                      detail=f"276 {first:09d} sent as {ref}")
    return [c.claim_key for c in due]
