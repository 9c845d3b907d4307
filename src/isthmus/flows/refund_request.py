"""A refund request as values: who acts, what is asked, the policy, and how a refund is shown.

The refund service (flows/refunds.py) takes a request from the HTTP API, the CLI and the
console alike. This module holds what they share and what needs no store: the register's
words (statuses, the work queue and kind, who may ask and who may approve), the `Actor`,
the service's answer (`Outcome`), the settings it runs under (`RefundPolicy`), the refund
id derived from requester and idempotency key (a retry finds the first refund), the checks
of the inputs (`checked`, `parse_amount`, `may`: they raise `flows.refund_errors`), and the
plain view and status event of a refund (no reason text in the status event: free text
stays in the register).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from isthmus.config import Mappings
from isthmus.flows.refund_errors import InvalidRefund, NotAllowed
from isthmus.governance import rbac
from isthmus.ledger.currency import is_currency_code, quantum
from isthmus.ledger.periods import FiscalCalendar
from isthmus.model.money import MoneyError, parse_decimal
from isthmus.model.status import REFUND_APPROVED, REFUND_REJECTED, StatusEvent
from isthmus.store.ports import RefundRecord

CHANNEL: Final = "refunds"
QUEUE: Final = "refunds"
KIND: Final = "refund_approval"
PENDING, POSTED, REJECTED = "pending", "posted", "rejected"
STATUSES: Final = (PENDING, POSTED, REJECTED)
REQUESTERS: Final = frozenset({rbac.REVENUE, rbac.ADMIN})
APPROVERS: Final = frozenset({rbac.FINANCE, rbac.ADMIN})
AUTO_APPROVER: Final = "auto"
MAX_TEXT: Final = 500


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


def text(value: object, field: str, *, limit: int = MAX_TEXT) -> str:
    """A required, printable text input of at most `limit` characters, trimmed."""
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
class Ask:
    """A request's inputs once checked: the account as named, amount, currency, reason and
    idempotency key."""

    account: str
    amount: Decimal
    currency: str
    reason: str
    key: str

    def raw(self, requested_by: str) -> bytes:
        """The request as kept in the inbox (channel `refunds`)."""
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


def checked(
    account: object, amount: object, currency: object, reason: object, idempotency_key: object
) -> Ask:
    """The request's inputs checked, or `InvalidRefund` naming the first one at fault."""
    acct = text(account, "account", limit=64)
    if not isinstance(currency, str) or not is_currency_code(currency):
        raise InvalidRefund(
            f"currency {currency!r} is not an ISO 4217 code such as USD", "currency"
        )
    key = text(idempotency_key, "idempotency_key", limit=128)
    return Ask(acct, parse_amount(amount, currency), currency, text(reason, "reason"), key)


def may(actor: Actor, allowed: frozenset[str], what: str) -> None:
    """Refuse (`NotAllowed`) an actor none of whose roles is `allowed` to do `what`."""
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
