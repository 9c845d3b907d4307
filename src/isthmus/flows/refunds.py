"""Refunds of patient credit balances, with segregation of duties (issue 4).

A refund request (HTTP `POST /api/v1/refunds`, `isthmus refunds request`, the console) names
a billing account (PID-18) or an account token, an amount, a currency, a reason, who asks,
and an idempotency key. The checks, in order:

1. the account exists: a billing account, or an account token with A/R lines;
2. the idempotency key (scoped to the requester): the same key returns the refund it made
   the first time, unchanged; the same key for another account, amount or currency is
   refused (use a new key);
3. not a duplicate: an account with a refund still waiting for approval takes no other;
4. a credit: the account's A/R balance (company, currency) is below zero, and the amount is
   at most that credit less the refunds still pending on it.

At or under `[refunds] approval_threshold` the refund is approved at once and posts. The
threshold holds for the account's refunds together, not for each request: the new amount
plus the account's posted and pending refunds in that currency over the last `[refunds]
approval_window_days` (flows/refund_window.py), so splitting a refund does not avoid the
approver. Above it, it waits in work queue `refunds` (kind `refund_approval`) until someone
with the
finance-approver or admin role who is NOT the requester approves it (segregation of duties,
DESIGN.md "Governance and security"), or someone rejects it with a reason. Approval checks
the credit again: it may have shrunk since the request.

Posting is DR A/R (company, account token) / CR refunds payable (`ledger.refund`), entry
key `refund/<id>`, channel `refunds`, correlation id `refunds/<id>`: the entry is sealed
into an ERP batch and exported like every other (flows/export.py), and
`isthmus messages show refunds/<id>` walks from the request to the ERP batch lines.

Why a store transaction that writes the journal entry, not an event for a worker: the
credit check and the posting must see the same balance. In one transaction, under
`Tx.lock_refunds` on the account, two approvals at once (two users, or one user's retry)
and a request racing an approval serialize, and the loser sees the winner's effect: exactly
one posting, and the approver's answer is the truth. A `RefundApproved` event posted later
by a worker would re-check a balance that may have moved after the approver was told
"approved", and could only fail after the fact. The request itself is kept in the inbox
(channel `refunds`, control id the refund id) for lineage; refused requests are kept there
too, as rejected, for inspection.

Every request, approval and rejection, and every refusal, goes to the audit trail with who
did it. The free-text reason stays in the refund register and the inbox: journal memos and
ERP files carry only the refund id and the account token (no PHI).

Issue 17: this module is the service; the rest is apart, by noun: the request's values
and input checks (flows/refund_request.py), the refusals (flows/refund_errors.py), the
store reads under the lock (flows/refund_reads.py), the checks and decisions made on them
without the store (flows/refund_decision.py, written by `flows.decision.apply`) and the
approval window (flows/refund_window.py). The names the shells import from here (`Actor`,
`Outcome`, `RefundPolicy`, `view`, the errors, the statuses and roles) stay importable
from here (`__all__`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from decimal import Decimal

from isthmus.flows import refund_window
from isthmus.flows.decision import apply
from isthmus.flows.refund_decision import (
    check_credit,
    check_waiting,
    decide_approval,
    decide_rejection,
    decide_request,
    decided_before,
    replay,
)
from isthmus.flows.refund_errors import (
    AlreadyDecided,
    DuplicateRequest,
    IdempotencyConflict,
    InsufficientCredit,
    InvalidRefund,
    NotAllowed,
    NotPostable,
    RefundConflict,
    RefundError,
    RefundNotFound,
    SegregationOfDuties,
    UnknownAccount,
)
from isthmus.flows.refund_reads import account_of, credit_of_account
from isthmus.flows.refund_request import (
    APPROVERS,
    AUTO_APPROVER,
    CHANNEL,
    KIND,
    MAX_TEXT,
    PENDING,
    POSTED,
    QUEUE,
    REJECTED,
    REQUESTERS,
    STATUSES,
    Actor,
    Ask,
    Outcome,
    RefundPolicy,
    checked,
    correlation_of,
    may,
    parse_amount,
    refund_id,
    refund_status,
    text,
    view,
)
from isthmus.governance.audit import AuditLog, record
from isthmus.model.status import StatusEvent
from isthmus.store.ports import Inbound, RefundRecord, Store, Tx


class Refunds:
    """Request, approve, reject, get and list refunds; see the module docstring."""

    def __init__(
        self,
        store: Store,
        audit_log: AuditLog,
        policy: RefundPolicy,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.audit_log, self.policy, self.clock = store, audit_log, policy, clock

    # issue 18: RefundApproved / RefundRejected to the routes, in the deciding transaction
    on_status: Callable[[Tx, Sequence[StatusEvent]], object] | None = None

    def _tell(self, tx: Tx, rec: RefundRecord) -> None:
        if self.on_status is not None:
            self.on_status(tx, [refund_status(rec)])

    # reads ------------------------------------------------------------------------------
    def get(self, rid: str) -> RefundRecord:
        """The refund `rid`, or `RefundNotFound`."""
        found = self.store.refund(rid)
        if found is None:
            raise RefundNotFound(f"no refund {rid!r}", "id")
        return found

    def list(
        self, status: str | None = None, limit: int = 1000, after: str | None = None
    ) -> Sequence[RefundRecord]:
        """The register, oldest first, optionally of one status (pending, posted,
        rejected), those recorded after refund `after` when given (the next page)."""
        if status is not None and status not in STATUSES:
            raise InvalidRefund(f"status must be one of {', '.join(STATUSES)}", "status")
        return self.store.refunds(status, limit, after)

    def awaiting(self, approver: Actor) -> Sequence[RefundRecord]:
        """Pending refunds this approver may decide (not their own requests)."""
        return [r for r in self.store.refunds(PENDING) if r.requested_by != approver.name]

    # actions ----------------------------------------------------------------------------
    def request(
        self,
        *,
        account: str,
        amount: Decimal | str | int,
        currency: str,
        reason: str,
        requested_by: Actor,
        idempotency_key: str,
    ) -> Outcome:
        """Check and record a refund; at or under the threshold it posts at once."""
        raw = json.dumps(
            {
                "account": str(account)[:64],
                "amount": str(amount)[:40],
                "currency": str(currency)[:8],
                "idempotency_key": str(idempotency_key)[:128],
                "requested_by": requested_by.name,
            },
            sort_keys=True,
        ).encode()
        rid = ""
        try:
            may(requested_by, REQUESTERS, "request refunds")
            ask = checked(account, amount, currency, reason, idempotency_key)
            raw = ask.raw(requested_by.name)
            rid = refund_id(requested_by.name, ask.key)
            try:
                out = self._request(rid, ask, requested_by)
            except refund_window.Unindexed as first:  # once per account: index its history
                out = self._request(
                    rid,
                    ask,
                    requested_by,
                    seed=[
                        r.id
                        for r in self.store.refunds(None, limit=10**9)
                        if r.account_token == first.token
                    ],
                )
        except RefundError as exc:
            self._keep(rid or "invalid", raw, requested_by.name, error=exc)
            self._audit(requested_by, "refund.request", rid, exc)
            raise
        self._keep(rid, raw, requested_by.name)
        self._audit(requested_by, "refund.request", rid, None, out)
        return out

    def approve(self, rid: str, *, approver: Actor, note: str = "") -> Outcome:
        """Approve a pending refund and post it; the requester may not (SoD)."""
        try:
            may(approver, APPROVERS, "approve refunds")
            out = self._decide(rid, approver, approve=True, note=note.strip()[:MAX_TEXT])
        except RefundError as exc:
            self._audit(approver, "refund.approve", rid, exc)
            raise
        self._audit(approver, "refund.approve", rid, None, out)
        return out

    def reject(self, rid: str, *, approver: Actor, reason: str) -> Outcome:
        """Reject a pending refund with a reason; nothing posts."""
        try:
            may(approver, APPROVERS, "reject refunds")
            why = text(reason, "reason")
            out = self._decide(rid, approver, approve=False, note=why)
        except RefundError as exc:
            self._audit(approver, "refund.reject", rid, exc)
            raise
        self._audit(approver, "refund.reject", rid, None, out)
        return out

    # steps: read under the account's lock, decide (flows/refund_decision.py), apply ------
    def _request(
        self, rid: str, ask: Ask, actor: Actor, seed: Sequence[str] | None = None
    ) -> Outcome:
        with self.store.transaction() as tx:
            number, token, company = account_of(tx, self.policy, ask.account, ask.currency)
            tx.lock_refunds(token)
            first = replay(ask, tx.get_refund(rid))
            if first is not None:
                return Outcome(first, replayed=True)
            check_waiting(tx.pending_refunds(token))
            credit = credit_of_account(
                tx, self.policy.ar_account, token, company, ask.currency, rid
            )
            check_credit(credit, ask.amount, ask.currency, company)
            now = self.clock()
            earlier = refund_window.recent(tx, token, seed)
            rec = RefundRecord(
                id=rid,
                idempotency_key=ask.key,
                account_number=number,
                account_token=token,
                company=company,
                amount=ask.amount,
                currency=ask.currency,
                reason=ask.reason,
                status=PENDING,
                requested_by=actor.name,
                requested_at=now,
            )
            decision = decide_request(rec, earlier, self.policy)
            apply(tx, decision, now)
            if not decision.entries:  # held for an approver
                return Outcome(rec)
            return Outcome(self._decided(tx, rec))

    def _decide(self, rid: str, actor: Actor, *, approve: bool, note: str) -> Outcome:
        with self.store.transaction() as tx:
            rec = tx.get_refund(rid)
            if rec is None:
                raise RefundNotFound(f"no refund {rid!r}", "id")
            tx.lock_refunds(rec.account_token)
            rec = tx.get_refund(rid) or rec  # as it is now that we hold the account
            if decided_before(rec, actor, approve=approve):
                return Outcome(rec, replayed=True)  # a retry: the first answer
            now = self.clock()
            if not approve:
                apply(tx, decide_rejection(rec, actor, note), now)
                return Outcome(self._decided(tx, rec))
            credit = credit_of_account(
                tx, self.policy.ar_account, rec.account_token, rec.company, rec.currency, rid
            )
            apply(tx, decide_approval(rec, actor, credit, self.policy, at=now, note=note), now)
            return Outcome(self._decided(tx, rec))

    def _decided(self, tx: Tx, rec: RefundRecord) -> RefundRecord:
        """The refund as its decision left it, told to the routes."""
        self._tell(tx, tx.get_refund(rec.id) or rec)
        return tx.get_refund(rec.id) or rec

    # records ----------------------------------------------------------------------------
    def _keep(self, rid: str, raw: bytes, who: str, *, error: RefundError | None = None) -> None:
        """The request in the inbox: accepted under the refund id, or rejected with why."""
        digest = hashlib.sha256(raw).hexdigest()
        cid = rid if error is None else f"{rid}#{digest[:16]}"
        why = "" if error is None else f"{type(error).__name__}: {error}"[:2000]
        self.store.accept(
            [
                Inbound(
                    channel=CHANNEL,
                    control_id=cid,
                    raw=raw,
                    received_at=self.clock(),
                    peer=who,
                    message_type="refund/request",
                    status="rejected" if error else "accepted",
                    ack_code="AR" if error else "AA",
                    error=why,
                    events=b"",
                    digest=digest,
                )
            ]
        )

    def _audit(
        self,
        actor: Actor,
        action: str,
        rid: str,
        error: RefundError | None,
        out: Outcome | None = None,
    ) -> None:
        if error is not None:
            record(
                self.audit_log,
                actor.name,
                action,
                rid,
                error.outcome,
                error=str(error),
                field=error.field,
                kind=type(error).__name__,
            )
            return
        assert out is not None
        r = out.refund
        record(
            self.audit_log,
            actor.name,
            action,
            r.id,
            "ok",
            status=r.status,
            amount=str(r.amount),
            currency=r.currency,
            account_token=r.account_token,
            requested_by=r.requested_by,
            decided_by=r.decided_by,
            entry_key=r.entry_key,
            replayed=out.replayed,
        )


# what the shells (api, cli, console, app) and the tests import from the service's module
__all__ = [
    "APPROVERS",
    "AUTO_APPROVER",
    "CHANNEL",
    "KIND",
    "PENDING",
    "POSTED",
    "QUEUE",
    "REJECTED",
    "REQUESTERS",
    "STATUSES",
    "Actor",
    "AlreadyDecided",
    "DuplicateRequest",
    "IdempotencyConflict",
    "InsufficientCredit",
    "InvalidRefund",
    "NotAllowed",
    "NotPostable",
    "Outcome",
    "RefundConflict",
    "RefundError",
    "RefundNotFound",
    "RefundPolicy",
    "Refunds",
    "SegregationOfDuties",
    "UnknownAccount",
    "correlation_of",
    "parse_amount",
    "refund_id",
    "view",
]
