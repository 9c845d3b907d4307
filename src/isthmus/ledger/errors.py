"""Ledger errors: findings as data, and the refusals a posting or a batch can raise.

Two shapes, as in beancount (`beancount/ops/validation.py`): validators return a list of
`LedgerError` values, plain data that a flow can store on a work item or show to an
operator. When an operation that must produce a correct result cannot (`charge_entry`,
`build_batch`, `FiscalCalendar.assign`), it raises one `LedgerRefusal` subclass, named by
what the caller must do next, carrying the findings that explain it. A refusal is never
transient: retrying the same input gives the same answer, so the caller opens a work item
(or reopens the period, or fixes the mapping) instead of retrying.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from isthmus.errors import PolicyRefused

ErrorCode = Literal[
    "missing_key",  # entry_key, correlation_id or causation_id is empty
    "too_few_lines",  # a journal entry needs at least two lines
    "bad_line",  # account/company empty, currency not ISO 4217, amount not a Decimal
    "not_one_sided",  # a line must have exactly one of debit/credit > 0, none negative
    "not_quantized",  # amount not at the currency's minor unit (ISO 4217 exponent)
    "unbalanced",  # debits != credits for one currency
    "bad_period",  # period is not YYYY-MM or does not match posted_on
    "bad_reversal",  # an entry that names itself as the one it reverses
    "duplicate_entry",  # the same entry_key twice in one batch
    "bad_amount",  # zero, negative or too precise amount offered to a posting rule
    "unsupported",  # a transaction type no posting rule handles
    "closed_period",  # the accounting period is closed
]


class LedgerError(msgspec.Struct, frozen=True, kw_only=True):
    """One finding about an entry or a batch. `line` is the 0-based line index, if any."""

    code: ErrorCode
    message: str
    entry_key: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.entry_key}" + (f" line {self.line}" if self.line is not None else "")
        return f"{self.code}: {self.message}" + (f" ({where})" if where else "")


class LedgerRefusal(PolicyRefused):
    """The ledger refuses to post; the caller must open a work item, not retry."""

    http_status, exit_code = 422, 4

    def __init__(self, message: str, errors: tuple[LedgerError, ...] = ()) -> None:
        super().__init__(message)
        self.errors = errors


class InvalidEntry(LedgerRefusal):
    """A journal entry failed `validate_entry`; the posting rule or its input must be fixed."""


class UnbalancedEntry(InvalidEntry):
    """Debits and credits of an entry differ for some currency; nothing may be posted."""


class InvalidBatch(LedgerRefusal):
    """A journal batch cannot be sent to the ERP (e.g. an entry_key appears twice)."""


class UnbalancedBatch(InvalidBatch):
    """A batch does not balance per currency, or holds an invalid entry; do not send it."""


class InvalidAmount(LedgerRefusal):
    """The amount cannot be posted as is (negative, or finer than the currency's minor unit)."""


class ZeroAmount(InvalidAmount):
    """A zero amount has nothing to post; the caller makes a work item to confirm it."""


class UnsupportedTransaction(LedgerRefusal):
    """No posting rule handles this transaction type; route it to a work item."""


class ClosedPeriod(LedgerRefusal):
    """The accounting period is closed and the policy is `reject`; finance must decide."""

    def __init__(self, period: str) -> None:
        super().__init__(
            f"period {period} is closed",
            (LedgerError(code="closed_period", message=f"period {period} is closed"),),
        )
        self.period = period


class InvalidPeriod(LedgerRefusal):
    """A period string is not YYYY-MM; the configuration or the caller must be fixed."""
