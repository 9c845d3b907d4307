"""An 835 claim payment applied to the claim's life: paid, underpaid or denied, and why.

Issue 20. Runs in the transaction that posts the payment (`flows.processor`, after
`flows.remittance.post_claim_payment`), for a claim the hub submitted (found by CLP01 =
CLM01, else CLP07 = the payer's claim control number):

* **denied** (CLP02 4, or nothing paid with a denial CARC; `denial_codes.is_denial`): the
  CARC/RARC codes give a category (`denial_codes.CATEGORIES`: eligibility, authorization, coding,
  timely filing, medical necessity, duplicate, else other), each with its work queue
  ``denials-<category>``; the claim gets an appeal deadline (payment date + the payer's
  `[claims] appeal_deadline_days`, else `appeal_days`). The generic ``denial`` item the
  payment flow opened is closed in favour of that one (one item per cause).
* **expected vs paid**: the claim's lines (as submitted) priced with the payer's fee
  schedule (`claim_pricing.FeeSchedule`, a CSV of code -> allowed amount per "payer/plan", else
  per payer) give the expected allowed amount. The payer's allowed amount is CLP04 paid +
  the PR (patient responsibility) adjustments. Short by more than `underpayment_tolerance`:
  ``partially_paid``, an ``underpayment`` work item in queue ``underpayments``, and the
  contractual allowance is posted against the expected amount, not against what the payer
  allowed: the CO adjustment the payment flow wrote off beyond (charge - expected) is put
  back on the claim's A/R (DR A/R / CR contractual allowance, entry key
  ``claim-expected/<event id>``), so the receivable stays open for the underpayment until
  it is collected or written off (`flows.claim_denials`). Else ``paid``.
* **expected vs paid per service line**: when the 835 names its service lines (SVC, on
  the event as ``ClaimRemitted.lines``) each paid line is priced on its own
  (`claim_pricing.compare_lines`): SVC01 code (else the SVC04 revenue code) x SVC05 units (1 when
  not sent) with the payer/plan schedule is the expected amount; the payer allowed
  SVC03 paid + the line's PR adjustments. A line short by more than the tolerance opens
  one ``underpayment`` item per line (its number, REF*6R, code, expected, paid, variance;
  no PHI) and the contractual allowance of that line is posted against the expected
  amount: billed - expected stays contractual, expected - allowed (the underpayment to
  recover) goes back to A/R out of the line's CO write-off (one journal line pair per
  line, entry ``claim-expected/<event id>``). Lines with no schedule entry are left as the
  payer adjusted them; when no line is priced (or the 835 has no SVC, or a FHIR EOB), the
  claim-level comparison above applies.
* a reversal (CLP02 22) is kept as a fact on the claim.
* a FHIR answer (`flows.claim_fhir`): a scrubbed FHIR claim is marked submitted first; a
  ClaimResponse accepts the claim before its payment applies, or rejects it when it pays
  nothing (outcome error).

The fee schedules, the `[claims]` policy and the pricing of a claim and of its lines are
`flows.claim_pricing`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from isthmus.config import Mappings
from isthmus.flows import claim_acks, claim_fhir, mapping_holds, remittance
from isthmus.flows import claim_life as life
from isthmus.flows.accounts import live_token
from isthmus.flows.claim_pricing import (
    ClaimPolicy,
    LineVariance,
    compare_lines,
    expected_allowed,
    plan_of,
)
from isthmus.flows.denial_codes import category_of, codes_of, denial_queue, is_denial
from isthmus.ledger.journal import Dimensions, JournalEntry, cr, dr, require_valid
from isthmus.ledger.periods import FiscalCalendar
from isthmus.ledger.remit import RemitAccounts
from isthmus.model import ClaimRemitted
from isthmus.model.envelope import Envelope
from isthmus.store.ports import ClaimState, Tx

UNDERPAYMENTS: Final = "underpayments"
REVERSAL: Final = "22"


@dataclass(frozen=True)
class Books:
    """Where claim adjustments post: the chart and the mapping of facilities to companies."""

    secret: str
    mappings: Mappings
    calendar: FiscalCalendar
    accounts: RemitAccounts = field(default_factory=RemitAccounts)


def on_remitted(
    tx: Tx, env: Envelope, ev: ClaimRemitted, *, policy: ClaimPolicy, books: Books, outcome: str
) -> str:
    """Move the claim an 835 CLP names; "" when the hub did not submit it."""
    claim = life.find(tx, ev.patient_control_number, ev.payer_claim_control_number)
    if claim is None:
        return ""
    now = env.recorded_at.timestamp()
    claim = claim_fhir.answered(tx, claim, env, now=now)  # a FHIR claim: sent over FHIR
    paid_on = ev.payment_date or env.occurred_at.date()
    changes: dict[str, Any] = {}
    if ev.payer_claim_control_number:
        changes["payer_claim_id"] = ev.payer_claim_control_number
    codes = [a.reason for a in ev.adjustments if a.amount] + list(ev.remarks)
    summary = (
        f"835 trace {ev.trace_number} CLP02 {ev.claim_status} paid {ev.paid} "
        f"{ev.currency}; {codes_of(ev)}"
    )
    if ev.reversal or ev.claim_status == REVERSAL:
        life.note(
            tx,
            claim,
            "remit_reversed",
            now=now,
            causation_id=env.event_id,
            detail=summary,
            paid=claim.paid + ev.paid,
            **changes,
        )
        return claim.state
    if claim_fhir.from_claim_response(env):
        claim = _responded(tx, env, ev, claim, summary=summary)
        if claim.state == life.REJECTED:
            return claim.state
    if is_denial(ev):
        category = category_of(codes)
        due = policy.appeal_due(claim.payer_id, paid_on)
        kind = "remit_denied"
        if not life.can(claim.state, kind):
            life.note(tx, claim, "remit", now=now, causation_id=env.event_id, detail=summary)
            return claim.state
        new = life.advance(
            tx,
            claim,
            kind,
            now=now,
            causation_id=env.event_id,
            correlation_id=env.correlation_id,
            detail=f"{summary}; category {category}, appeal by {due}",
            denial_category=category,
            appeal_due=due.isoformat(),
            **changes,
        )
        tx.close_work_items(env.event_id, f"worked in {denial_queue(category)}", now)
        tx.add_work_item(
            kind="claim_denial",
            queue=denial_queue(category),
            key=claim.claim_key,
            event_id=f"claim-denial/{env.event_id}",
            correlation_id=env.correlation_id,
            detail=f"claim {claim.claim_key} denied by payer {claim.payer_id} "
            f"({category}): {codes_of(ev)}; appeal by {due}",
            envelope=b"",
            now=now,
        )
        return new.state
    schedule = policy.schedule(claim.payer_id, plan_of(claim)) if ev.lines else None
    priced = compare_lines(ev.lines, schedule) if schedule is not None else []
    if priced:
        return _by_line(
            tx,
            env,
            ev,
            claim,
            priced,
            policy=policy,
            books=books,
            outcome=outcome,
            summary=summary,
            changes=changes,
        )
    allowed = ev.paid + sum((a.amount for a in ev.adjustments if a.group == "PR"), Decimal(0))
    expected = expected_allowed(claim, policy)
    short = (expected - allowed) if expected is not None else Decimal(0)
    tolerance = policy.settings.underpayment_tolerance
    kind = "remit_partial" if short > tolerance else "remit_paid"
    if not life.can(claim.state, kind):
        life.note(tx, claim, "remit", now=now, causation_id=env.event_id, detail=summary)
        return claim.state
    detail = summary + (
        f"; expected allowed {expected}, payer allowed {allowed}" if expected is not None else ""
    )
    new = life.advance(
        tx,
        claim,
        kind,
        now=now,
        causation_id=env.event_id,
        correlation_id=env.correlation_id,
        detail=detail,
        paid=claim.paid + ev.paid,
        **changes,
    )
    if kind == "remit_partial":
        tx.add_work_item(
            kind="underpayment",
            queue=UNDERPAYMENTS,
            key=claim.claim_key,
            event_id=f"claim-underpaid/{env.event_id}",
            correlation_id=env.correlation_id,
            detail=f"claim {claim.claim_key} payer {claim.payer_id}: allowed "
            f"{allowed} {ev.currency}, fee schedule {expected} (short "
            f"{short}, tolerance {tolerance})",
            envelope=b"",
            now=now,
        )
        if outcome == "posted":
            _restore_expected(tx, env, ev, books=books, amount=short, claim=new)
    return new.state


def _responded(
    tx: Tx, env: Envelope, ev: ClaimRemitted, claim: ClaimState, *, summary: str
) -> ClaimState:
    """A FHIR ClaimResponse answers the claim first: one that pays nothing rejects it
    (a ``claim-rejections`` item; the generic ``denial`` item is closed in its favour),
    one that pays accepts it before the payment applies."""
    now = env.recorded_at.timestamp()
    if is_denial(ev):
        if not life.can(claim.state, "ack_rejected"):
            return claim
        new = life.advance(
            tx,
            claim,
            "ack_rejected",
            now=now,
            causation_id=env.event_id,
            correlation_id=env.correlation_id,
            detail=f"ClaimResponse {summary}",
        )
        tx.close_work_items(env.event_id, f"worked in {claim_acks.QUEUE}", now)
        tx.add_work_item(
            kind=claim_acks.KIND,
            queue=claim_acks.QUEUE,
            key=claim.claim_key,
            event_id=f"claim-rejected/{claim.claim_key}/{env.event_id}",
            correlation_id=env.correlation_id,
            detail=f"claim {claim.claim_key} rejected by payer {claim.payer_id} "
            f"(FHIR ClaimResponse): {codes_of(ev)}",
            envelope=b"",
            now=now,
        )
        return new
    if life.can(claim.state, "ack_accepted"):
        return life.advance(
            tx,
            claim,
            "ack_accepted",
            now=now,
            causation_id=env.event_id,
            correlation_id=env.correlation_id,
            detail=f"ClaimResponse {summary}",
        )
    return claim


def _by_line(
    tx: Tx,
    env: Envelope,
    ev: ClaimRemitted,
    claim: ClaimState,
    priced: list[LineVariance],
    *,
    policy: ClaimPolicy,
    books: Books,
    outcome: str,
    summary: str,
    changes: dict[str, Any],
) -> str:
    """Paid or partially paid by the lines the schedule prices: an item per short line,
    and its contractual allowance posted against the expected amount."""
    now = env.recorded_at.timestamp()
    tolerance = policy.settings.underpayment_tolerance
    short = [v for v in priced if v.variance > tolerance]
    kind = "remit_partial" if short else "remit_paid"
    if not life.can(claim.state, kind):
        life.note(tx, claim, "remit", now=now, causation_id=env.event_id, detail=summary)
        return claim.state
    detail = summary + "; " + "; ".join(v.describe() for v in priced)
    new = life.advance(
        tx,
        claim,
        kind,
        now=now,
        causation_id=env.event_id,
        correlation_id=env.correlation_id,
        detail=detail,
        paid=claim.paid + ev.paid,
        **changes,
    )
    for v in short:
        tx.add_work_item(
            kind="underpayment",
            queue=UNDERPAYMENTS,
            key=claim.claim_key,
            event_id=f"claim-underpaid/{env.event_id}/{v.number}",
            correlation_id=env.correlation_id,
            detail=f"claim {claim.claim_key} payer {claim.payer_id} "
            f"{v.describe()} {ev.currency} (tolerance {tolerance})",
            envelope=b"",
            now=now,
        )
    if outcome == "posted":
        restore = [(f"line {v.number} {v.code}", min(v.variance, v.contractual)) for v in short]
        _post_expected(tx, env, ev, books=books, claim=new, amounts=restore)
    return new.state


def _restore_expected(
    tx: Tx, env: Envelope, ev: ClaimRemitted, *, books: Books, amount: Decimal, claim: ClaimState
) -> None:
    """Post the contractual allowance against the expected amount: the part of the CO
    write-off beyond (charge - expected) goes back to the claim's A/R."""
    contractual = sum((a.amount for a in ev.adjustments if a.group == "CO"), Decimal(0))
    _post_expected(
        tx, env, ev, books=books, claim=claim, amounts=[("claim", min(amount, contractual))]
    )


def _post_expected(
    tx: Tx,
    env: Envelope,
    ev: ClaimRemitted,
    *,
    books: Books,
    claim: ClaimState,
    amounts: list[tuple[str, Decimal]],
) -> None:
    """DR A/R / CR contractual allowance, one pair per (what, amount) with amount > 0."""
    amounts = [(what, a) for what, a in amounts if a > 0]
    if not amounts:
        return
    acct, _ = remittance.match_account(tx, ev)
    if acct is None:
        return
    company = mapping_holds.company(tx, books.mappings, acct.facility)
    if not company:
        return
    token = live_token(tx, books.secret, acct.patient_key)
    where = books.calendar.assign(ev.payment_date or env.occurred_at.date())
    ar = Dimensions(company=company, account_token=token)
    under = Dimensions(company=company, service_line="underpayment")
    pairs = tuple(
        x
        for _, a in amounts
        for x in (
            dr(books.accounts.ar, a, ev.currency, ar),
            cr(books.accounts.contractual, a, ev.currency, under),
        )
    )
    entry = require_valid(
        JournalEntry(
            entry_key=f"claim-expected/{env.event_id}",
            posted_on=where.posted_on,
            period=where.period,
            channel="claims",
            memo=f"claim {claim.claim_key} underpaid by payer {claim.payer_id}: contractual "
            f"allowance against the fee schedule ({', '.join(w for w, _ in amounts)})",
            lines=pairs,
            correlation_id=env.correlation_id,
            causation_id=env.event_id,
            moved_from=where.moved_from,
        )
    )
    tx.insert_entry(entry)


__all__ = [
    "REVERSAL",
    "UNDERPAYMENTS",
    "Books",
    "on_remitted",
]
