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
`flows.claim_pricing`; the underpayment entry is `flows.claim_expected`.

Issue 17: `remit_facts` reads the claim and where its underpayment entry posts, then
`decide_remitted` decides without the store (the claim-life moves as `claim_life.ClaimMove`
writes, the work items, the entry) and `flows.decision.apply` writes it, at the time the
event was recorded (the claim's timeline and items have always used it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, NamedTuple

from isthmus.config import Mappings
from isthmus.flows import claim_acks, claim_fhir
from isthmus.flows import claim_life as life
from isthmus.flows.claim_expected import (
    ExpectedFacts,
    claim_amounts,
    expected_entry,
    expected_facts,
    line_amounts,
)
from isthmus.flows.claim_life import ClaimMove
from isthmus.flows.claim_pricing import (
    ClaimPolicy,
    LineVariance,
    compare_lines,
    expected_allowed,
    plan_of,
)
from isthmus.flows.decision import Decision, Resolve, WorkItem, apply
from isthmus.flows.denial_codes import category_of, codes_of, denial_queue, is_denial
from isthmus.flows.outcome import APPLIED, POSTED
from isthmus.ledger.journal import JournalEntry
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


@dataclass(frozen=True, slots=True)
class RemitFacts:
    """What the store knows that `decide_remitted` needs: the claim the CLP names (None:
    the hub did not submit it) and where its underpayment entry posts."""

    claim: ClaimState | None = None
    expected: ExpectedFacts = field(default_factory=ExpectedFacts)


class Remitted(NamedTuple):
    """An 835 CLP decided for the claim it names: the claim's state after it ("" when the
    hub did not submit it) and the decision that writes it."""

    state: str
    decision: Decision


def _reversal(ev: ClaimRemitted) -> bool:
    return ev.reversal or ev.claim_status == REVERSAL


def remit_facts(
    tx: Tx, env: Envelope, ev: ClaimRemitted, *, books: Books, outcome: str
) -> RemitFacts:
    """Read what `decide_remitted` needs: where the entry posts only for a payment that
    posted (only it can put an underpayment back on A/R)."""
    claim = life.find(tx, ev.patient_control_number, ev.payer_claim_control_number)
    if claim is None or outcome != "posted" or is_denial(ev) or _reversal(ev):
        return RemitFacts(claim)
    return RemitFacts(claim, expected_facts(tx, ev, secret=books.secret, mappings=books.mappings))


class _Draft:
    """One decision as it is made: the claim as the moves so far left it, and what to
    write (local to one `decide_remitted`)."""

    def __init__(self, env: Envelope, ev: ClaimRemitted, claim: ClaimState) -> None:
        self.env, self.ev, self.claim = env, ev, claim
        self.now = env.recorded_at.timestamp()
        self.moves: list[ClaimMove] = []
        self.items: list[WorkItem] = []
        self.resolve: list[Resolve] = []
        self.amounts: list[tuple[str, Decimal]] = []  # to put back on A/R (underpaid)
        self.entry: JournalEntry | None = None

    def take(self, got: tuple[ClaimState, ClaimMove | None]) -> ClaimState:
        self.claim, m = got
        if m is not None:
            self.moves.append(m)
        return self.claim

    def move(self, kind: str, detail: str, **changes: Any) -> None:
        self.take(
            life.move(
                self.claim,
                kind,
                now=self.now,
                causation_id=self.env.event_id,
                correlation_id=self.env.correlation_id,
                detail=detail,
                **changes,
            )
        )

    def note(self, kind: str, detail: str, **changes: Any) -> None:
        self.take(
            life.noted(
                self.claim,
                kind,
                now=self.now,
                causation_id=self.env.event_id,
                detail=detail,
                **changes,
            )
        )

    def item(self, kind: str, queue: str, event_id: str, detail: str) -> None:
        env = self.env
        self.items.append(
            WorkItem(kind, queue, self.claim.claim_key, event_id, env.correlation_id, detail)
        )

    def done(self) -> Remitted:
        entries = () if self.entry is None else (self.entry,)
        return Remitted(
            self.claim.state,
            Decision(
                POSTED if entries else APPLIED,
                open=tuple(self.items),
                writes=tuple(self.moves),
                entries=entries,
                resolve=tuple(self.resolve),
            ),
        )


def on_remitted(
    tx: Tx, env: Envelope, ev: ClaimRemitted, *, policy: ClaimPolicy, books: Books, outcome: str
) -> str:
    """Move the claim an 835 CLP names; "" when the hub did not submit it."""
    facts = remit_facts(tx, env, ev, books=books, outcome=outcome)
    got = decide_remitted(env, ev, facts, policy=policy, books=books, outcome=outcome)
    apply(tx, got.decision, env.recorded_at.timestamp())
    return got.state


def decide_remitted(
    env: Envelope,
    ev: ClaimRemitted,
    facts: RemitFacts,
    *,
    policy: ClaimPolicy,
    books: Books,
    outcome: str,
) -> Remitted:
    """One CLP's effect on the claim it names, decided without the store (module
    docstring); `outcome` is what the payment's own posting came to."""
    if facts.claim is None:
        return Remitted("", Decision(APPLIED))
    d = _Draft(env, ev, facts.claim)
    d.take(claim_fhir.answer(d.claim, env, now=d.now))  # a FHIR claim: sent over FHIR
    changes: dict[str, Any] = {}
    if ev.payer_claim_control_number:
        changes["payer_claim_id"] = ev.payer_claim_control_number
    codes = [a.reason for a in ev.adjustments if a.amount] + list(ev.remarks)
    summary = (
        f"835 trace {ev.trace_number} CLP02 {ev.claim_status} paid {ev.paid} "
        f"{ev.currency}; {codes_of(ev)}"
    )
    if _reversal(ev):
        d.note("remit_reversed", summary, paid=d.claim.paid + ev.paid, **changes)
        return d.done()
    if claim_fhir.from_claim_response(env):
        _responded(d, summary=summary)
        if d.claim.state == life.REJECTED:
            return d.done()
    if is_denial(ev):
        _denied(d, codes, policy=policy, summary=summary, changes=changes)
        return d.done()
    schedule = policy.schedule(d.claim.payer_id, plan_of(d.claim)) if ev.lines else None
    priced = compare_lines(ev.lines, schedule) if schedule is not None else []
    if priced:
        _by_line(d, priced, policy=policy, summary=summary, changes=changes)
    else:
        _by_claim(d, policy=policy, summary=summary, changes=changes)
    if outcome == "posted" and d.amounts:
        d.entry = expected_entry(
            env,
            ev,
            d.claim,
            d.amounts,
            facts=facts.expected,
            calendar=books.calendar,
            accounts=books.accounts,
        )
    return d.done()


def _denied(
    d: _Draft, codes: list[str], *, policy: ClaimPolicy, summary: str, changes: dict[str, Any]
) -> None:
    """Denied: the claim gets its category and appeal deadline, and an item in the
    category's queue in place of the generic ``denial`` one."""
    env, ev, claim = d.env, d.ev, d.claim
    category = category_of(codes)
    due = policy.appeal_due(claim.payer_id, ev.payment_date or env.occurred_at.date())
    if not life.can(claim.state, "remit_denied"):
        d.note("remit", summary)
        return
    d.move(
        "remit_denied",
        f"{summary}; category {category}, appeal by {due}",
        denial_category=category,
        appeal_due=due.isoformat(),
        **changes,
    )
    d.resolve.append(Resolve(env.event_id, f"worked in {denial_queue(category)}"))
    d.item(
        "claim_denial",
        denial_queue(category),
        f"claim-denial/{env.event_id}",
        f"claim {claim.claim_key} denied by payer {claim.payer_id} "
        f"({category}): {codes_of(ev)}; appeal by {due}",
    )


def _responded(d: _Draft, *, summary: str) -> None:
    """A FHIR ClaimResponse answers the claim first: one that pays nothing rejects it
    (a ``claim-rejections`` item; the generic ``denial`` item is closed in its favour),
    one that pays accepts it before the payment applies."""
    env, ev, claim = d.env, d.ev, d.claim
    if is_denial(ev):
        if not life.can(claim.state, "ack_rejected"):
            return
        d.move("ack_rejected", f"ClaimResponse {summary}")
        d.resolve.append(Resolve(env.event_id, f"worked in {claim_acks.QUEUE}"))
        d.item(
            claim_acks.KIND,
            claim_acks.QUEUE,
            f"claim-rejected/{claim.claim_key}/{env.event_id}",
            f"claim {claim.claim_key} rejected by payer {claim.payer_id} "
            f"(FHIR ClaimResponse): {codes_of(ev)}",
        )
    elif life.can(claim.state, "ack_accepted"):
        d.move("ack_accepted", f"ClaimResponse {summary}")


def _by_claim(d: _Draft, *, policy: ClaimPolicy, summary: str, changes: dict[str, Any]) -> None:
    """Paid or partially paid by the claim's lines as submitted: the payer's allowed
    amount (paid + PR) against the fee schedule's."""
    ev, claim = d.ev, d.claim
    allowed = ev.paid + sum((a.amount for a in ev.adjustments if a.group == "PR"), Decimal(0))
    expected = expected_allowed(claim, policy)
    short = (expected - allowed) if expected is not None else Decimal(0)
    tolerance = policy.settings.underpayment_tolerance
    kind = "remit_partial" if short > tolerance else "remit_paid"
    if not life.can(claim.state, kind):
        d.note("remit", summary)
        return
    detail = summary + (
        f"; expected allowed {expected}, payer allowed {allowed}" if expected is not None else ""
    )
    d.move(kind, detail, paid=claim.paid + ev.paid, **changes)
    if kind == "remit_partial":
        d.item(
            "underpayment",
            UNDERPAYMENTS,
            f"claim-underpaid/{d.env.event_id}",
            f"claim {claim.claim_key} payer {claim.payer_id}: allowed "
            f"{allowed} {ev.currency}, fee schedule {expected} (short "
            f"{short}, tolerance {tolerance})",
        )
        d.amounts = claim_amounts(ev, short)


def _by_line(
    d: _Draft,
    priced: list[LineVariance],
    *,
    policy: ClaimPolicy,
    summary: str,
    changes: dict[str, Any],
) -> None:
    """Paid or partially paid by the lines the schedule prices: an item per short line,
    and its contractual allowance posted against the expected amount."""
    ev, claim = d.ev, d.claim
    tolerance = policy.settings.underpayment_tolerance
    short = [v for v in priced if v.variance > tolerance]
    kind = "remit_partial" if short else "remit_paid"
    if not life.can(claim.state, kind):
        d.note("remit", summary)
        return
    detail = summary + "; " + "; ".join(v.describe() for v in priced)
    d.move(kind, detail, paid=claim.paid + ev.paid, **changes)
    for v in short:
        d.item(
            "underpayment",
            UNDERPAYMENTS,
            f"claim-underpaid/{d.env.event_id}/{v.number}",
            f"claim {claim.claim_key} payer {claim.payer_id} "
            f"{v.describe()} {ev.currency} (tolerance {tolerance})",
        )
    d.amounts = line_amounts(short)


__all__ = [
    "REVERSAL",
    "UNDERPAYMENTS",
    "Books",
    "RemitFacts",
    "Remitted",
    "decide_remitted",
    "on_remitted",
    "remit_facts",
]
