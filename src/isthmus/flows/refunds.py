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
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Final

from isthmus.config import Mappings
from isthmus.errors import (
    ConflictError,
    DuplicateError,
    InvalidInput,
    IsthmusError,
    NotFoundError,
    PolicyRefused,
)
from isthmus.flows import refund_window
from isthmus.flows.accounts import live_token
from isthmus.governance import rbac
from isthmus.governance.audit import AuditLog, record
from isthmus.ledger.currency import is_currency_code, quantum
from isthmus.ledger.errors import LedgerRefusal
from isthmus.ledger.periods import FiscalCalendar
from isthmus.ledger.refund import credit_of, refund_entry, refundable
from isthmus.model.money import MoneyError, parse_decimal
from isthmus.model.status import REFUND_APPROVED, REFUND_REJECTED, StatusEvent
from isthmus.store.ports import Inbound, RefundRecord, Store, Tx

CHANNEL: Final = "refunds"
QUEUE: Final = "refunds"
KIND: Final = "refund_approval"
PENDING, POSTED, REJECTED = "pending", "posted", "rejected"
STATUSES: Final = (PENDING, POSTED, REJECTED)
REQUESTERS: Final = frozenset({rbac.REVENUE, rbac.ADMIN})
APPROVERS: Final = frozenset({rbac.FINANCE, rbac.ADMIN})
AUTO_APPROVER: Final = "auto"
_MAX_TEXT = 500


# --- errors: each names what the caller must do next ---------------------------------------


class RefundError(IsthmusError):
    """A refund action was refused; nothing changed. `field` names the input at fault.

    Each subclass is also of the family of the error tree (isthmus.errors) that says what
    to do next, and so carries the HTTP status and exit code the shells answer with;
    `outcome` is the audit trail's."""

    outcome: ClassVar[str] = "failed"

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field

    @property
    def status(self) -> int:
        """The HTTP status, `http_status`, under the name it had before the error tree."""
        return self.http_status


class InvalidRefund(RefundError, InvalidInput):
    """An input is missing or malformed: fix the field named and send it again."""


class UnknownAccount(RefundError, NotFoundError):
    """No billing account or account token by that name: check the account."""


class RefundNotFound(RefundError, NotFoundError):
    """No refund with that id."""


class RefundConflict(RefundError, ConflictError):
    """The request contradicts the state of the account or the refund; see the subclass."""


class DuplicateRequest(RefundConflict, DuplicateError):
    """A refund for this account is waiting for approval: decide that one first."""


class IdempotencyConflict(RefundConflict):
    """The idempotency key already made a different refund: use a new key."""


class InsufficientCredit(RefundConflict):
    """The amount exceeds the refundable credit: ask for less (or nothing)."""


class AlreadyDecided(RefundConflict):
    """The refund was approved or rejected already (by someone else): nothing to do."""


class NotPostable(RefundConflict):
    """The ledger refuses the posting (closed period, unmapped facility): finance must fix
    that first; the refund stays pending."""


class NotAllowed(RefundError, PolicyRefused):
    """The actor's roles may not take this action: someone else must."""

    outcome = "denied"


class SegregationOfDuties(NotAllowed):
    """The requester may not approve their own refund: another approver must."""


# --- values --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who acts: a principal's name and the roles its token carries."""

    name: str
    roles: frozenset[str]


@dataclass(frozen=True)
class Outcome:
    """The refund after an action; `replayed`: the same action again, answered as the
    first time, nothing changed."""

    refund: RefundRecord
    replayed: bool = False


@dataclass(frozen=True)
class RefundPolicy:
    """What the refund flow needs from the settings (see `Hub.refunds`)."""

    approval_threshold: Decimal
    ar_account: str
    refunds_payable_account: str
    calendar: FiscalCalendar
    mappings: Mappings
    secret: str
    approval_window_days: int = 30  # [refunds] approval_window_days; 0: each request alone


def refund_id(requested_by: str, idempotency_key: str) -> str:
    """The refund id is a digest of requester and key, so a retry finds the first refund."""
    digest = hashlib.sha256(f"{requested_by}\n{idempotency_key}".encode()).hexdigest()
    return f"RF-{digest[:16]}"


def correlation_of(rid: str) -> str:
    """The correlation id a refund's events carry."""
    return f"{CHANNEL}/{rid}"


def view(r: RefundRecord) -> dict[str, Any]:
    """Plain data for the CLI, the HTTP API and the console (they all say the same)."""
    return {
        "id": r.id,
        "status": r.status,
        "account_number": r.account_number,
        "account_token": r.account_token,
        "company": r.company,
        "amount": str(r.amount),
        "currency": r.currency,
        "reason": r.reason,
        "requested_by": r.requested_by,
        "requested_at": _iso(r.requested_at),
        "decided_by": r.decided_by,
        "decided_at": _iso(r.decided_at) if r.decided_at else "",
        "note": r.note,
        "entry_key": r.entry_key,
        "idempotency_key": r.idempotency_key,
        "correlation_id": correlation_of(r.id),
    }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


# --- input checks (pure) ---------------------------------------------------------------


def _text(value: object, field: str, *, limit: int = _MAX_TEXT) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRefund(f"{field} is required (text)", field)
    if len(value) > limit or any(ord(c) < 32 for c in value):
        raise InvalidRefund(f"{field} must be at most {limit} printable characters", field)
    return value.strip()


def parse_amount(value: object, currency: str) -> Decimal:
    """A positive amount at the currency's minor unit (100 -> 100.00 USD), from a string or
    an integer, never a float: money is Decimal. Written as `model.money.parse_decimal`
    reads it (ASCII digits, sign, point): `1_0.00`, `１０.00`, `1e3`, `NaN` are refused."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise InvalidRefund('amount must be a decimal string such as "125.00"', "amount")
    try:
        amount = parse_decimal(str(value))
    except MoneyError as exc:
        raise InvalidRefund(str(exc), "amount") from exc
    if not amount.is_finite() or amount <= 0:
        raise InvalidRefund(f"amount {value!r} must be greater than zero", "amount")
    try:
        exact = amount.quantize(quantum(currency))
    except InvalidOperation as exc:
        raise InvalidRefund(f"amount {value!r} is too large", "amount") from exc
    if exact != amount:
        raise InvalidRefund(
            f"amount {value!r} is finer than the minor unit of {currency}", "amount"
        )
    return exact


@dataclass(frozen=True)
class _Ask:
    account: str
    amount: Decimal
    currency: str
    reason: str
    key: str

    def raw(self, requested_by: str) -> bytes:
        return json.dumps(
            {
                "account": self.account,
                "amount": str(self.amount),
                "currency": self.currency,
                "reason": self.reason,
                "idempotency_key": self.key,
                "requested_by": requested_by,
            },
            sort_keys=True,
        ).encode()


def _checked(
    account: object, amount: object, currency: object, reason: object, idempotency_key: object
) -> _Ask:
    acct = _text(account, "account", limit=64)
    if not isinstance(currency, str) or not is_currency_code(currency):
        raise InvalidRefund(
            f"currency {currency!r} is not an ISO 4217 code such as USD", "currency"
        )
    key = _text(idempotency_key, "idempotency_key", limit=128)
    return _Ask(acct, parse_amount(amount, currency), currency, _text(reason, "reason"), key)


def _may(actor: Actor, allowed: frozenset[str], what: str) -> None:
    if not actor.roles & allowed:
        held = ", ".join(sorted(actor.roles)) or "none"
        raise NotAllowed(
            f"{actor.name} (roles: {held}) may not {what}; allowed: {', '.join(sorted(allowed))}",
            "roles",
        )


def refund_status(rec: RefundRecord) -> StatusEvent:
    """A decided refund as a status event (issue 18): keyed by its account token, no reason
    text (free text stays in the register)."""
    return StatusEvent(
        type=REFUND_APPROVED if rec.status == POSTED else REFUND_REJECTED,
        key=rec.account_token,
        event_id=correlation_of(rec.id),
        occurred_at=datetime.fromtimestamp(rec.decided_at or rec.requested_at, UTC),
        channel=CHANNEL,
        fields={
            "refund_id": rec.id,
            "account_token": rec.account_token,
            "account_number": rec.account_number,
            "company": rec.company,
            "amount": StatusEvent.amount(rec.amount),
            "currency": rec.currency,
            "status": rec.status,
            "decided_by": rec.decided_by,
            "entry_key": rec.entry_key,
        },
    )


# --- the service -----------------------------------------------------------------------


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
            _may(requested_by, REQUESTERS, "request refunds")
            ask = _checked(account, amount, currency, reason, idempotency_key)
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
            _may(approver, APPROVERS, "approve refunds")
            out = self._decide(rid, approver, approve=True, note=note.strip()[:_MAX_TEXT])
        except RefundError as exc:
            self._audit(approver, "refund.approve", rid, exc)
            raise
        self._audit(approver, "refund.approve", rid, None, out)
        return out

    def reject(self, rid: str, *, approver: Actor, reason: str) -> Outcome:
        """Reject a pending refund with a reason; nothing posts."""
        try:
            _may(approver, APPROVERS, "reject refunds")
            why = _text(reason, "reason")
            out = self._decide(rid, approver, approve=False, note=why)
        except RefundError as exc:
            self._audit(approver, "refund.reject", rid, exc)
            raise
        self._audit(approver, "refund.reject", rid, None, out)
        return out

    # steps ------------------------------------------------------------------------------
    def _request(
        self, rid: str, ask: _Ask, actor: Actor, seed: Sequence[str] | None = None
    ) -> Outcome:
        p = self.policy
        with self.store.transaction() as tx:
            number, token, company = self._account(tx, ask.account, ask.currency)
            tx.lock_refunds(token)
            first = tx.get_refund(rid)
            if first is not None:
                if (
                    ask.account in (first.account_number, first.account_token)
                    and ask.amount == first.amount
                    and ask.currency == first.currency
                ):
                    return Outcome(first, replayed=True)
                raise IdempotencyConflict(
                    f"idempotency key {ask.key!r} already made refund {first.id} "
                    f"({first.amount} {first.currency}); use a new key",
                    "idempotency_key",
                )
            waiting = tx.pending_refunds(token)
            if waiting:
                raise DuplicateRequest(
                    f"refund {waiting[0].id} ({waiting[0].amount} {waiting[0].currency}) for "
                    "this account is waiting for approval; approve or reject it first",
                    "account",
                )
            self._check_credit(tx, token, company, ask.currency, ask.amount, rid)
            now = self.clock()
            start = refund_window.since(now, p.approval_window_days)
            earlier = refund_window.recent(tx, token, seed)
            before = refund_window.window_total(earlier, ask.currency, start)
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
            tx.add_refund(rec)
            refund_window.remember(tx, token, [*earlier, rec], start)
            window = (
                f"with the account's refunds of the last {p.approval_window_days} "
                f"day(s) ({before} {ask.currency}) {ask.amount + before} {ask.currency}"
            )
            if not refund_window.needs_approval(ask.amount, before, p.approval_threshold):
                return Outcome(
                    self._post(
                        tx,
                        rec,
                        AUTO_APPROVER,
                        now,
                        note=(
                            f"at or under the approval threshold {p.approval_threshold} {window}"
                        )[:_MAX_TEXT],
                    )
                )
            tx.add_work_item(
                kind=KIND,
                queue=QUEUE,
                key=token,
                event_id=correlation_of(rid),
                correlation_id=correlation_of(rid),
                envelope=b"",
                now=now,
                detail=(
                    f"refund {rid}: {ask.amount} {ask.currency} to account token {token} "
                    f"({company}) requested by {actor.name}; {window}, above the "
                    f"approval threshold {p.approval_threshold}: a finance-approver "
                    f"other than {actor.name} must approve or reject it"
                ),
            )
            return Outcome(rec)

    def _decide(self, rid: str, actor: Actor, *, approve: bool, note: str) -> Outcome:
        with self.store.transaction() as tx:
            rec = tx.get_refund(rid)
            if rec is None:
                raise RefundNotFound(f"no refund {rid!r}", "id")
            tx.lock_refunds(rec.account_token)
            rec = tx.get_refund(rid) or rec  # as it is now that we hold the account
            wanted = POSTED if approve else REJECTED
            if rec.status != PENDING:
                if rec.status == wanted and rec.decided_by == actor.name:
                    return Outcome(rec, replayed=True)  # a retry: the first answer
                raise AlreadyDecided(
                    f"refund {rid} is {rec.status} already (by {rec.decided_by})", "id"
                )
            now = self.clock()
            if not approve:
                tx.decide_refund(
                    rid, status=REJECTED, decided_by=actor.name, decided_at=now, note=note
                )
                tx.close_work_items(correlation_of(rid), f"rejected by {actor.name}: {note}", now)
                self._tell(tx, tx.get_refund(rid) or rec)
                return Outcome(tx.get_refund(rid) or rec)
            if rec.requested_by == actor.name:
                raise SegregationOfDuties(
                    f"segregation of duties: {actor.name} requested refund {rid} and may not "
                    "approve it; another finance-approver must",
                    "approver",
                )
            self._check_credit(tx, rec.account_token, rec.company, rec.currency, rec.amount, rid)
            return Outcome(
                self._post(tx, rec, actor.name, now, note=note or f"approved by {actor.name}")
            )

    def _check_credit(
        self, tx: Tx, token: str, company: str, currency: str, amount: Decimal, rid: str
    ) -> None:
        balance = tx.ar_balances(self.policy.ar_account, token).get((company, currency), Decimal(0))
        others = [
            r.amount
            for r in tx.pending_refunds(token)
            if r.id != rid and r.company == company and r.currency == currency
        ]
        left = refundable(balance, others)
        if credit_of(balance) == 0:
            raise InsufficientCredit(
                f"the account has no credit balance in {currency} "
                f"(A/R {balance} {currency} at {company})",
                "account",
            )
        if amount > left:
            raise InsufficientCredit(
                f"amount {amount} {currency} exceeds the refundable credit {left} {currency} "
                f"(credit {credit_of(balance)}, pending refunds {sum(others, Decimal(0))})",
                "amount",
            )

    def _post(self, tx: Tx, rec: RefundRecord, by: str, now: float, *, note: str) -> RefundRecord:
        p = self.policy
        entry_key = f"refund/{rec.id}"
        try:
            where = p.calendar.assign(datetime.fromtimestamp(now, UTC).date())
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
        if not tx.decide_refund(
            rec.id, status=POSTED, decided_by=by, decided_at=now, note=note, entry_key=entry_key
        ):
            raise AlreadyDecided(f"refund {rec.id} was decided meanwhile", "id")
        tx.insert_entry(entry)
        tx.close_work_items(correlation_of(rec.id), f"approved by {by}", now)
        self._tell(tx, tx.get_refund(rec.id) or rec)
        return tx.get_refund(rec.id) or rec

    def _account(self, tx: Tx, account: str, currency: str) -> tuple[str, str, str]:
        """(account number, account token, company) of a billing account or a token."""
        p = self.policy
        acct = tx.get_billing_account(account)
        if acct is not None:
            company = tx.mapping_override(
                "facility_company", acct.facility
            ) or p.mappings.facility_company.get(acct.facility)
            if not company:
                raise NotPostable(
                    f"facility {acct.facility!r} of account {account} has no ERP company", "account"
                )
            return account, live_token(tx, p.secret, acct.patient_key), company
        balances = tx.ar_balances(p.ar_account, account)
        if not balances:
            raise UnknownAccount(
                f"no billing account or account token {account!r} with A/R", "account"
            )
        # the company holding the largest credit in this currency (a token may span two)
        in_currency = {co: b for (co, cur), b in balances.items() if cur == currency}
        company = (
            min(in_currency, key=in_currency.__getitem__)
            if in_currency
            else next(iter(balances))[0]
        )
        return "", account, company

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
