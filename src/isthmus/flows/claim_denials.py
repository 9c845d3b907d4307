"""Denials worked: correct and resubmit, appeal with a letter, or write off with approval.

Issue 20. From a ``claim_denial`` (queue ``denials-<category>``), ``claim_rejected`` or
``underpayment`` work item a person takes one of three ways forward:

* **correct and resubmit**: :func:`mark_corrected` moves the claim to ``corrected``; the
  corrected claim comes back from billing as a replacement (CLM05-3 7, REF*F8 the payer's
  number) through `flows.claim_submission.submit_837`, which scrubs and sends it again.
* **appeal**: :func:`appeal` writes a letter from a template (`string.Template`; the default
  :data:`LETTER` names the claim number, the payer's claim number, the amounts, the denial
  category and codes, never the patient) through the claim sender, before the payer's
  appeal deadline, and moves the claim to ``appealed``; the payer's next 835 decides.
* **write off**: :func:`request_write_off` for an amount up to `[claims]
  write_off_threshold` posts at once; above it the request waits (work item
  ``write_off_approval`` in queue ``write-offs``) until someone with the finance-approver or
  admin role who did NOT request it approves (:func:`approve_write_off`; segregation of
  duties, as refunds do). Posting is an adjustment: DR other adjustments (service line
  ``write-off <category>``) / CR A/R on the claim's account token, Decimal in the claim's
  currency, entry key ``claim-write-off/<claim>``; the claim becomes ``written_off``.

Each action is an event of the claim's timeline with who did it, and closes the claim's
open work items of these queues. Refusals raise :class:`ClaimActionRefused` naming what to
do instead (no PHI).
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Final

from isthmus.errors import ConflictError
from isthmus.flows import claim_life as life
from isthmus.flows import mapping_holds
from isthmus.flows.accounts import live_token
from isthmus.flows.claim_pricing import ClaimPolicy
from isthmus.flows.claim_remit import Books
from isthmus.flows.claim_submission import X12Sender
from isthmus.governance import rbac
from isthmus.ledger.currency import quantize
from isthmus.ledger.journal import Dimensions, JournalEntry, cr, dr, require_valid
from isthmus.store.ports import ClaimState, Store, Tx

WRITE_OFF_QUEUE: Final = "write-offs"
WRITE_OFF_KIND: Final = "write_off_approval"
APPROVERS: Final = frozenset({rbac.FINANCE, rbac.ADMIN})
CLAIM_QUEUES: Final = ("claim-rejections", "underpayments", WRITE_OFF_QUEUE)
_PENDING: Final = "claims/write-off/"
LETTER: Final = string.Template("""\
$today

To: $payer_name appeals department (payer id $payer)
Re: request for reconsideration of claim $claim (payer claim number $payer_claim_id)

The claim above, billed for $charge $currency and paid $paid $currency, was denied or
reduced ($category; codes $codes). We ask you to reconsider it: the services were
provided as billed, and the supporting documentation is enclosed.

This appeal is filed before the appeal deadline of $deadline.

Patient financial services
""")


class ClaimActionRefused(ConflictError):
    """The action cannot be taken on this claim now; the text says why and what to do."""


@dataclass(frozen=True)
class WriteOff:
    """A claim write-off: pending a second person's approval, or posted with its entry."""

    claim_key: str
    amount: Decimal
    currency: str
    status: str  # "pending" (waits for a second person) or "posted"
    requested_by: str
    approved_by: str = ""
    entry_key: str = ""


def _claim(tx: Tx, claim_key: str, kind: str) -> ClaimState:
    claim = tx.get_claim_state(claim_key)
    if claim is None:
        raise ClaimActionRefused(f"no claim {claim_key!r} is known")
    if not life.can(claim.state, kind):
        raise ClaimActionRefused(str(life.InvalidTransition(claim_key, claim.state, kind)))
    return claim


def _close_items(store: Store, tx: Tx, claim_key: str, resolution: str, now: float) -> None:
    for item in store.work_items(status="open", limit=100_000):
        if item.key == claim_key and (
            item.queue in CLAIM_QUEUES or item.queue.startswith("denials-")
        ):
            tx.close_work_items(item.event_id, resolution, now)


def mark_corrected(
    store: Store, claim_key: str, *, actor: str, now: float, note: str = ""
) -> ClaimState:
    """The claim will come back corrected from billing (a replacement, CLM05-3 7)."""
    with store.transaction() as tx:
        claim = _claim(tx, claim_key, "corrected")
        _close_items(store, tx, claim_key, f"corrected by {actor}", now)
        return life.advance(
            tx,
            claim,
            "corrected",
            now=now,
            actor=actor,
            detail=note or "to be corrected and resubmitted (frequency 7)",
        )


def appeal(
    store: Store,
    claim_key: str,
    *,
    actor: str,
    now: float,
    sender: X12Sender,
    payer_name: str = "",
    template: string.Template = LETTER,
) -> str:
    """Write the appeal letter and move the claim to appealed; returns the letter's ref."""
    with store.transaction() as tx:
        claim = _claim(tx, claim_key, "appealed")
        today = datetime.fromtimestamp(now, UTC).date()
        if claim.appeal_due and today > date.fromisoformat(claim.appeal_due):
            raise ClaimActionRefused(
                f"claim {claim_key}: the appeal deadline "
                f"{claim.appeal_due} has passed; write it off instead"
            )
        events = store.claim_events(claim_key)
        codes = next(
            (
                e.detail.split("; ", 1)[1].split("; category")[0]
                for e in reversed(events)
                if e.kind in ("remit_denied", "remit_partial") and "; " in e.detail
            ),
            "see the remittance",
        )
        letter = template.safe_substitute(
            today=today.isoformat(),
            payer=claim.payer_id,
            payer_name=payer_name or "Payer",
            claim=claim.claim_key,
            payer_claim_id=claim.payer_claim_id or "-",
            charge=claim.total_charge,
            paid=claim.paid,
            currency=claim.currency,
            category=claim.denial_category or "underpaid",
            codes=codes,
            deadline=claim.appeal_due or "-",
        )
        n = sum(1 for e in events if e.kind == "appealed") + 1
        ref = sender.send(
            name=f"appeal-{claim_key}-{n}.txt", kind="appeal-letter", body=letter.encode()
        )
        _close_items(store, tx, claim_key, f"appealed by {actor}", now)
        life.advance(
            tx,
            claim,
            "appealed",
            now=now,
            actor=actor,
            causation_id=ref,
            detail=f"appeal letter {ref}",
        )
        return ref


def request_write_off(
    store: Store,
    claim_key: str,
    *,
    amount: Decimal,
    reason: str,
    requested_by: str,
    now: float,
    policy: ClaimPolicy,
    books: Books,
) -> WriteOff:
    """Write off ``amount`` of a denied, underpaid or rejected claim: at once up to the
    threshold, else pending a second person's approval."""
    with store.transaction() as tx:
        claim = _claim(tx, claim_key, "written_off")
        amount = quantize(amount, claim.currency)
        if amount <= 0 or amount > claim.total_charge:
            raise ClaimActionRefused(
                f"claim {claim_key}: a write-off is more than 0 and at "
                f"most the charge {claim.total_charge} {claim.currency}"
            )
        if tx.load_state(_PENDING + claim_key) not in (None, b""):
            raise ClaimActionRefused(f"claim {claim_key}: a write-off already waits for approval")
        if amount <= policy.settings.write_off_threshold:
            entry = _post(
                tx,
                claim,
                amount,
                books=books,
                now=now,
                actor=requested_by,
                approver="auto (at or under the threshold)",
            )
            _close_items(store, tx, claim_key, f"written off by {requested_by}", now)
            return WriteOff(
                claim_key, amount, claim.currency, "posted", requested_by, "auto", entry
            )
        tx.save_state(
            _PENDING + claim_key,
            json.dumps(
                {
                    "amount": str(amount),
                    "reason": reason[:500],
                    "requested_by": requested_by,
                    "at": now,
                }
            ).encode(),
        )
        tx.add_work_item(
            kind=WRITE_OFF_KIND,
            queue=WRITE_OFF_QUEUE,
            key=claim_key,
            event_id=f"claim-write-off/{claim_key}/{now!r}",
            correlation_id=f"claims/{claim_key}",
            detail=f"write off {amount} {claim.currency} of claim {claim_key} "
            f"requested by {requested_by}: above the threshold "
            f"{policy.settings.write_off_threshold}, a second person "
            "approves",
            envelope=b"",
            now=now,
        )
        life.note(
            tx,
            claim,
            "write_off_requested",
            now=now,
            actor=requested_by,
            detail=f"{amount} {claim.currency}, waits for a second approver",
        )
        return WriteOff(claim_key, amount, claim.currency, "pending", requested_by)


def approve_write_off(
    store: Store, claim_key: str, *, approver: str, roles: frozenset[str], now: float, books: Books
) -> WriteOff:
    """A second person approves a pending write-off; it posts and closes the claim."""
    if not roles & APPROVERS:
        raise ClaimActionRefused("approving a write-off needs the finance-approver or admin role")
    with store.transaction() as tx:
        raw = tx.load_state(_PENDING + claim_key)
        if not raw:
            raise ClaimActionRefused(f"claim {claim_key}: no write-off waits for approval")
        pending = json.loads(raw)
        if pending["requested_by"] == approver:
            raise ClaimActionRefused(
                f"claim {claim_key}: who requested the write-off cannot "
                "approve it (segregation of duties)"
            )
        claim = _claim(tx, claim_key, "written_off")
        amount = Decimal(pending["amount"])
        entry = _post(tx, claim, amount, books=books, now=now, actor=approver, approver=approver)
        tx.save_state(_PENDING + claim_key, b"")
        _close_items(store, tx, claim_key, f"write-off approved by {approver}", now)
        return WriteOff(
            claim_key,
            amount,
            claim.currency,
            "posted",
            str(pending["requested_by"]),
            approver,
            entry,
        )


def _post(
    tx: Tx,
    claim: ClaimState,
    amount: Decimal,
    *,
    books: Books,
    now: float,
    actor: str,
    approver: str,
) -> str:
    acct = tx.get_billing_account(claim.account_number or claim.claim_key)
    if acct is None:
        raise ClaimActionRefused(
            f"claim {claim.claim_key}: its billing account is not known; "
            "the write-off can post once it is"
        )
    company = mapping_holds.company(tx, books.mappings, acct.facility)
    if not company:
        raise ClaimActionRefused(f"claim {claim.claim_key}: facility has no ERP company mapping")
    token = live_token(tx, books.secret, acct.patient_key)
    day = datetime.fromtimestamp(now, UTC).date()
    where = books.calendar.assign(day)
    key = f"claim-write-off/{claim.claim_key}"
    entry = require_valid(
        JournalEntry(
            entry_key=key,
            posted_on=where.posted_on,
            period=where.period,
            channel="claims",
            memo=f"write-off of claim {claim.claim_key} ({claim.denial_category or 'balance'}), "
            f"approved by {approver}",
            lines=(
                dr(
                    books.accounts.other_adjustments,
                    amount,
                    claim.currency,
                    Dimensions(
                        company=company,
                        service_line=f"write-off {claim.denial_category or 'balance'}",
                    ),
                ),
                cr(
                    books.accounts.ar,
                    amount,
                    claim.currency,
                    Dimensions(company=company, account_token=token),
                ),
            ),
            correlation_id=f"claims/{claim.claim_key}",
            causation_id=key,
            moved_from=where.moved_from,
        )
    )
    tx.insert_entry(entry)
    life.advance(
        tx,
        claim,
        "written_off",
        now=now,
        actor=actor,
        causation_id=key,
        detail=f"{amount} {claim.currency} written off, approved by {approver}",
    )
    return key
