"""The refusals of the refund flow (flows/refunds.py), each naming what the caller must do next.

A refund action that is refused changes nothing. Every refusal is a `RefundError` that is
also of the family of the hub's error tree (isthmus.errors) saying what to do next, so the
HTTP API, the CLI and the console answer it with one status and exit code; its `field`
names the input at fault and `outcome` is what the audit trail records. They live apart
from the service so the pure checks (flows/refund_request.py) and decisions
(flows/refund_decision.py) raise them without importing the service.
"""

from __future__ import annotations

from typing import ClassVar

from isthmus.errors import (
    ConflictError,
    DuplicateError,
    InvalidInput,
    IsthmusError,
    NotFoundError,
    PolicyRefused,
)


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


__all__ = [
    "AlreadyDecided",
    "DuplicateRequest",
    "IdempotencyConflict",
    "InsufficientCredit",
    "InvalidRefund",
    "NotAllowed",
    "NotPostable",
    "RefundConflict",
    "RefundError",
    "RefundNotFound",
    "SegregationOfDuties",
    "UnknownAccount",
]
