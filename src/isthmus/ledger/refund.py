"""Posting rule and credit arithmetic for patient refunds (revenue cycle, issue 4).

A refund pays back a credit balance on a patient account: the A/R of its account token is
below zero (the hospital owes the patient, e.g. after an overpayment or a charge credit).
Paying it out is DR A/R (company, account token), which brings the balance back toward
zero, / CR refunds payable (company), the liability that accounts payable settles when the
cheque or transfer goes out. A correction is a reversal of this entry, never an edit.

Pure functions of amounts and plain mapping values, like `ledger.rules`: the flow looks up
balances, accounts and periods, and decides what to post with these.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from isthmus.ledger.currency import quantize
from isthmus.ledger.errors import InvalidAmount, LedgerError, ZeroAmount
from isthmus.ledger.journal import Dimensions, JournalEntry, cr, dr, require_valid


def credit_of(ar_balance: Decimal) -> Decimal:
    """The credit an A/R balance holds (debit positive): -balance when below zero, else 0."""
    return -ar_balance if ar_balance < 0 else Decimal(0)


def refundable(ar_balance: Decimal, pending: Iterable[Decimal]) -> Decimal:
    """What may still be refunded: the credit less the refunds already waiting on it.

    Never negative: a credit that shrank below what is pending (a new charge posted
    meanwhile) leaves nothing to refund, it does not ask for money back.
    """
    left = credit_of(ar_balance) - sum(pending, Decimal(0))
    return left if left > 0 else Decimal(0)


def refund_entry(
    *,
    amount: Decimal,
    currency: str,
    ar_account: str,
    refunds_payable_account: str,
    company: str,
    account_token: str,
    entry_key: str,
    posted_on: date,
    period: str,
    channel: str,
    memo: str,
    correlation_id: str,
    causation_id: str,
    moved_from: str | None = None,
) -> JournalEntry:
    """DR A/R (company, account token) / CR refunds payable (company) for `amount`.

    Raises ZeroAmount for 0 and InvalidAmount for a negative amount or one finer than the
    currency's minor unit (ISO 4217 exponent). The memo must carry no PHI: ids only.
    """
    value = quantize(amount, currency)
    if value <= 0:
        refusal = ZeroAmount if value == 0 else InvalidAmount
        message = f"refund amount {value} {currency} is not > 0"
        raise refusal(
            message, (LedgerError(code="bad_amount", message=message, entry_key=entry_key),)
        )
    lines = (
        dr(ar_account, value, currency, Dimensions(company=company, account_token=account_token)),
        cr(refunds_payable_account, value, currency, Dimensions(company=company)),
    )
    return require_valid(
        JournalEntry(
            entry_key=entry_key,
            posted_on=posted_on,
            period=period,
            channel=channel,
            memo=memo,
            lines=lines,
            correlation_id=correlation_id,
            causation_id=causation_id,
            moved_from=moved_from,
        )
    )
