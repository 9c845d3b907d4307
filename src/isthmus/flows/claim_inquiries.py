"""The 276 that asks a payer about claims it has not answered (issue 20).

:func:`request_status` builds one 276 (005010X212) for the claims still awaiting their
payer longer than its expected turnaround (`[claims] turnaround_days.<payer>`, else
`status_after_days`), at most once per turnaround period each (flow state
`claims/276/<CLM01>`, the time it was asked), and sends it like the 837
(`isthmus claims status-requests`); each claim's timeline notes the request. A claim with
no 837 kept (a FHIR claim) cannot be named by a 276 and is never asked about. The 277
that answers is applied by `flows.claim_acks`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from isthmus.config import ClaimSettings
from isthmus.flows import claim_life as life
from isthmus.flows.claim_submission import X12Sender, claim_from_body, next_controls
from isthmus.formats.x12 import parse_837
from isthmus.formats.x12.claim_batch import build_837
from isthmus.formats.x12.claim_status import ClaimStatus, build_276
from isthmus.store.ports import ClaimState, Store, Tx

_ASKED: Final = "claims/276/"
DAY: Final = 86400.0


def store_claims(store: Store, tx: Tx, state: str) -> list[ClaimState]:
    """Claims in ``state``, read again inside ``tx`` (the list comes from the store)."""
    rows = store.claim_states(state, limit=100_000)
    return [
        c
        for c in (tx.get_claim_state(r.claim_key) for r in rows)
        if c is not None and c.state == state
    ]


def due_for_status(
    tx: Tx, claims: list[ClaimState], settings: ClaimSettings, now: float
) -> list[ClaimState]:
    """Claims awaiting their payer past its turnaround, not asked about in that period."""
    out = []
    for c in claims:
        days = settings.turnaround_days.get(c.payer_id, settings.status_after_days)
        if c.state not in life.AWAITING_PAYER or not c.submitted_at or not c.body:
            continue  # no 837 kept (a FHIR claim): no 276 can name it
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
    text = build_837(
        [scrubbed],
        sender="X",
        receiver="Y",
        interchange_control=1,
        group_control=1,
        transaction_control=1,
        reference="R",
        at=datetime(2000, 1, 1, tzinfo=UTC),
    ).text
    (entry,) = parse_837(text).claims
    dates = [x.service_date for x in entry.lines if x.service_date]
    ends = [x.service_end or x.service_date for x in entry.lines if x.service_date]
    return ClaimStatus(
        transaction_control="",
        trace=c.claim_key,
        payer=entry.payer,
        provider=entry.billing_provider,
        subscriber=entry.subscriber,
        patient=entry.patient,
        patient_control_number=c.claim_key,
        payer_claim_control_number=c.payer_claim_id,
        charge=c.total_charge,
        service_date=min(dates) if dates else None,
        service_end=max(e for e in ends if e) if ends else None,
    )


def request_status(
    store: Store, *, settings: ClaimSettings, sender: X12Sender, now: float
) -> list[str]:
    """Send one 276 for every claim past its payer's turnaround; returns their CLM01s."""
    with store.transaction() as tx:
        waiting = [c for s in sorted(life.AWAITING_PAYER) for c in store_claims(store, tx, s)]
        due = due_for_status(tx, waiting, settings, now)
        if not due:
            return []
        first = next_controls(tx)
        text = build_276(
            [status_request_of(c) for c in due],
            sender=settings.sender_id,
            receiver=settings.receiver_id,
            interchange_control=first,
            group_control=first,
            at=datetime.fromtimestamp(now, UTC),
            usage=settings.usage,
        )
        ref = sender.send(name=f"276-{first:09d}.x12", kind="276", body=text.encode())
        for c in due:
            tx.save_state(_ASKED + c.claim_key, repr(now).encode())
            life.note(
                tx,
                c,
                "status_requested",
                now=now,
                causation_id=ref,
                detail=f"276 {first:09d} sent as {ref}",
            )
    return [c.claim_key for c in due]
