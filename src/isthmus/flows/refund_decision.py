"""What a refund request, approval or rejection writes, decided without the store (issue 17).

The refund service (flows/refunds.py) reads what it needs under the account's refund lock
(the refund the key made before, the refunds still waiting, the account's A/R credit, the
refunds of the approval window) and these pure functions check it and decide. A refusal is
raised (`flows.refund_errors`: nothing is written); otherwise the answer is a
`flows.decision.Decision` that `flows.decision.apply` writes in the same transaction:

* a request: the refund joins the register (`AddRefund`) and the account's window index
  (`refund_window.index`); at or under the threshold it posts at once (below), above it a
  `refund_approval` work item in queue `refunds` holds it for a finance-approver other
  than the requester;
* an approval, or a request under the threshold: DR A/R (company, account token) / CR
  refunds payable (`ledger.refund`), entry key `refund/<id>`, the refund marked posted
  (`DecideRefund`, which refuses when someone decided first) and its work item resolved;
* a rejection: the refund marked rejected with the reason, its work item resolved.

The time of the request or the decision is given (`at`): it dates the posting and the
window; `apply` stamps the register and the work items with the same `now`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from isthmus.flows import refund_window
from isthmus.flows.decision import Decision, Resolve, WorkItem
from isthmus.flows.outcome import POSTED as POSTED_OUTCOME
from isthmus.flows.outcome import REJECTED as REJECTED_OUTCOME
from isthmus.flows.outcome import Held
from isthmus.flows.refund_errors import (
    AlreadyDecided,
    DuplicateRequest,
    IdempotencyConflict,
    InsufficientCredit,
    NotPostable,
    SegregationOfDuties,
)
from isthmus.flows.refund_request import (
    AUTO_APPROVER,
    CHANNEL,
    KIND,
    MAX_TEXT,
    PENDING,
    POSTED,
    QUEUE,
    REJECTED,
    Actor,
    Ask,
    RefundPolicy,
    correlation_of,
)
from isthmus.ledger.errors import LedgerRefusal
from isthmus.ledger.refund import credit_of, refund_entry, refundable
from isthmus.store.ports import RefundRecord, Tx


@dataclass(frozen=True, slots=True)
class Credit:
    """The account's A/R balance in the refund's company and currency, and the amounts of
    its other refunds pending there (they hold part of the credit)."""

    balance: Decimal
    pending: tuple[Decimal, ...] = ()


@dataclass(frozen=True, slots=True)
class AddRefund:
    """Add a refund to the register; False when its id was known."""

    record: RefundRecord

    def write(self, tx: Tx, now: float) -> bool:
        return tx.add_refund(self.record)


@dataclass(frozen=True, slots=True)
class DecideRefund:
    """Move a pending refund to `status` at `now`; raises `AlreadyDecided` (the transaction
    rolls back) when it is not pending any more: someone decided first."""

    refund_id: str
    status: str
    decided_by: str
    note: str
    entry_key: str = ""

    def write(self, tx: Tx, now: float) -> bool:
        if not tx.decide_refund(
            self.refund_id,
            status=self.status,
            decided_by=self.decided_by,
            decided_at=now,
            note=self.note,
            entry_key=self.entry_key,
        ):
            raise AlreadyDecided(f"refund {self.refund_id} was decided meanwhile", "id")
        return True


# --- checks (pure): each raises what the caller must do next ------------------------------


def replay(ask: Ask, first: RefundRecord | None) -> RefundRecord | None:
    """The refund the idempotency key made before when it is this very refund (answer it
    again); `IdempotencyConflict` when it made another; None for a new key."""
    if first is None:
        return None
    if (
        ask.account in (first.account_number, first.account_token)
        and ask.amount == first.amount
        and ask.currency == first.currency
    ):
        return first
    raise IdempotencyConflict(
        f"idempotency key {ask.key!r} already made refund {first.id} "
        f"({first.amount} {first.currency}); use a new key",
        "idempotency_key",
    )


def check_waiting(waiting: Sequence[RefundRecord]) -> None:
    """An account with a refund waiting for approval takes no other (`DuplicateRequest`)."""
    if waiting:
        raise DuplicateRequest(
            f"refund {waiting[0].id} ({waiting[0].amount} {waiting[0].currency}) for "
            "this account is waiting for approval; approve or reject it first",
            "account",
        )


def check_credit(credit: Credit, amount: Decimal, currency: str, company: str) -> None:
    """The amount is at most the credit less the other pending refunds
    (`InsufficientCredit` otherwise, or when there is no credit at all)."""
    left = refundable(credit.balance, list(credit.pending))
    if credit_of(credit.balance) == 0:
        raise InsufficientCredit(
            f"the account has no credit balance in {currency} "
            f"(A/R {credit.balance} {currency} at {company})",
            "account",
        )
    if amount > left:
        raise InsufficientCredit(
            f"amount {amount} {currency} exceeds the refundable credit {left} {currency} "
            f"(credit {credit_of(credit.balance)}, pending refunds "
            f"{sum(credit.pending, Decimal(0))})",
            "amount",
        )


def decided_before(rec: RefundRecord, actor: Actor, *, approve: bool) -> bool:
    """Whether the refund is decided already as this actor asks now (a retry: answer it
    again); `AlreadyDecided` when it was decided otherwise or by someone else; False while
    it is pending."""
    if rec.status == PENDING:
        return False
    if rec.status == (POSTED if approve else REJECTED) and rec.decided_by == actor.name:
        return True
    raise AlreadyDecided(f"refund {rec.id} is {rec.status} already (by {rec.decided_by})", "id")


# --- decisions (pure) ----------------------------------------------------------------------


def decide_request(
    rec: RefundRecord, earlier: Sequence[RefundRecord], policy: RefundPolicy
) -> Decision:
    """A checked request, `rec` pending as asked at its `requested_at`, against the
    account's `earlier` refunds of the window: posted at once at or under the threshold,
    else held for an approver."""
    p, token = policy, rec.account_token
    start = refund_window.since(rec.requested_at, p.approval_window_days)
    before = refund_window.window_total(earlier, rec.currency, start)
    kept = (AddRefund(rec), refund_window.index(token, [*earlier, rec], start))
    window = (
        f"with the account's refunds of the last {p.approval_window_days} "
        f"day(s) ({before} {rec.currency}) {rec.amount + before} {rec.currency}"
    )
    if not refund_window.needs_approval(rec.amount, before, p.approval_threshold):
        posted = decide_posting(
            rec,
            AUTO_APPROVER,
            policy,
            at=rec.requested_at,
            note=(f"at or under the approval threshold {p.approval_threshold} {window}")[:MAX_TEXT],
        )
        return posted._replace(writes=kept + posted.writes)
    cid = correlation_of(rec.id)
    detail = (
        f"refund {rec.id}: {rec.amount} {rec.currency} to account token {token} "
        f"({rec.company}) requested by {rec.requested_by}; {window}, above the "
        f"approval threshold {p.approval_threshold}: a finance-approver "
        f"other than {rec.requested_by} must approve or reject it"
    )
    return Decision(
        Held(QUEUE, detail), open=(WorkItem(KIND, QUEUE, token, cid, cid, detail),), writes=kept
    )


def decide_approval(
    rec: RefundRecord,
    approver: Actor,
    credit: Credit,
    policy: RefundPolicy,
    *,
    at: float,
    note: str,
) -> Decision:
    """An approval at `at`: not by the requester (segregation of duties), and only while
    the credit (read again: it may have shrunk since the request) still covers it."""
    if rec.requested_by == approver.name:
        raise SegregationOfDuties(
            f"segregation of duties: {approver.name} requested refund {rec.id} and may not "
            "approve it; another finance-approver must",
            "approver",
        )
    check_credit(credit, rec.amount, rec.currency, rec.company)
    return decide_posting(
        rec, approver.name, policy, at=at, note=note or f"approved by {approver.name}"
    )


def decide_rejection(rec: RefundRecord, approver: Actor, note: str) -> Decision:
    """A rejection with its reason: nothing posts, the work item is resolved."""
    return Decision(
        REJECTED_OUTCOME,
        writes=(DecideRefund(rec.id, REJECTED, approver.name, note),),
        resolve=(Resolve(correlation_of(rec.id), f"rejected by {approver.name}: {note}"),),
    )


def decide_posting(
    rec: RefundRecord, by: str, policy: RefundPolicy, *, at: float, note: str
) -> Decision:
    """Post the refund approved by `by` at `at`: DR A/R / CR refunds payable in the period
    open for that day (`NotPostable` when the ledger refuses it)."""
    p = policy
    entry_key = f"refund/{rec.id}"
    try:
        where = p.calendar.assign(datetime.fromtimestamp(at, UTC).date())
        entry = refund_entry(
            amount=rec.amount,
            currency=rec.currency,
            ar_account=p.ar_account,
            refunds_payable_account=p.refunds_payable_account,
            company=rec.company,
            account_token=rec.account_token,
            entry_key=entry_key,
            posted_on=where.posted_on,
            period=where.period,
            channel=CHANNEL,
            memo=f"refund {rec.id}",
            correlation_id=correlation_of(rec.id),
            causation_id=f"{correlation_of(rec.id)}/approval",
            moved_from=where.moved_from,
        )
    except LedgerRefusal as exc:
        raise NotPostable(f"refund {rec.id} cannot post: {exc}", "amount") from exc
    return Decision(
        POSTED_OUTCOME,
        writes=(DecideRefund(rec.id, POSTED, by, note, entry_key),),
        entries=(entry,),
        resolve=(Resolve(correlation_of(rec.id), f"approved by {by}"),),
    )
