"""Posting rules: how a finance event becomes a balanced journal entry.

Each rule is a pure function of the event and plain mapping values (accounts, dimensions,
period) that the caller looked up; the ledger never reads configuration itself. A rule
either returns an entry that passes `validate_entry` or raises one `LedgerRefusal` naming
what to do (a work item, usually). The transaction types come from HL7 table 0017 (FT1-6):
CG charge and CD credit are posted here; PY payments and AJ adjustments arrive through
their own flows (835 remittances, settlements) and are refused by `charge_entry`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from isthmus.ledger.currency import quantize
from isthmus.ledger.errors import (
    InvalidAmount,
    LedgerError,
    UnsupportedTransaction,
    ZeroAmount,
)
from isthmus.ledger.journal import Dimensions, JournalEntry, JournalLine, cr, dr, require_valid
from isthmus.model import Charge

CHARGE = "CG"
CREDIT = "CD"


def charge_entry(
    charge: Charge,
    *,
    entry_key: str,
    ar_account: str,
    revenue_account: str,
    service_line: str,
    cost_center: str,
    company: str,
    account_token: str,
    period: str,
    posted_on: date,
    channel: str,
    correlation_id: str,
    causation_id: str,
    moved_from: str | None = None,
) -> JournalEntry:
    """DFT P03 FT1 -> journal entry.

    CG: DR A/R (company, account_token) / CR revenue (company, cost_center, service_line).
    CD: the mirror image, DR revenue / CR A/R: a charge credit reverses revenue.
    The amount is FT1-11, always positive (a credit is carried positive with type CD).
    Raises ZeroAmount for 0, InvalidAmount for a negative or too precise amount, and
    UnsupportedTransaction for any other FT1-6 type.
    """
    kind = charge.transaction_type
    if kind not in (CHARGE, CREDIT):
        message = f"FT1-6 transaction type {kind!r} has no posting rule (only CG, CD)"
        raise UnsupportedTransaction(
            message, (LedgerError(code="unsupported", message=message, entry_key=entry_key),)
        )
    money = charge.amount
    amount = quantize(money.amount, money.currency)
    if amount <= 0:
        refusal = ZeroAmount if amount == 0 else InvalidAmount
        message = f"{kind} {charge.transaction_id}: amount {amount} {money.currency} not > 0"
        raise refusal(
            message, (LedgerError(code="bad_amount", message=message, entry_key=entry_key),)
        )
    ar_dims = Dimensions(company=company, account_token=account_token)
    revenue_dims = Dimensions(company=company, cost_center=cost_center, service_line=service_line)
    lines: tuple[JournalLine, ...]
    if kind == CHARGE:
        lines = (
            dr(ar_account, amount, money.currency, ar_dims),
            cr(revenue_account, amount, money.currency, revenue_dims),
        )
    else:
        lines = (
            dr(revenue_account, amount, money.currency, revenue_dims),
            cr(ar_account, amount, money.currency, ar_dims),
        )
    return require_valid(
        JournalEntry(
            entry_key=entry_key,
            posted_on=posted_on,
            period=period,
            channel=channel,
            memo=f"{kind} {charge.charge_code} txn {charge.transaction_id}",
            lines=lines,
            correlation_id=correlation_id,
            causation_id=causation_id,
            moved_from=moved_from,
        )
    )


def merge_reclass_entry(
    balances: Mapping[str, Decimal],
    *,
    from_token: str,
    to_token: str,
    ar_account: str,
    company: str,
    entry_key: str,
    posted_on: date,
    period: str,
    channel: str,
    correlation_id: str,
    causation_id: str,
    memo: str = "A40 merge: A/R reclass to surviving account",
    moved_from: str | None = None,
) -> JournalEntry | None:
    """ADT A40 merge: move the merged account's A/R balance onto the surviving account
    (and the moves of `flows.merges`: A41..A50, under their own `memo`).

    `balances` maps currency -> A/R balance of `from_token` (debit positive). A debit
    balance moves as CR A/R(from) / DR A/R(to); a credit balance (the patient is owed
    money) as DR A/R(from) / CR A/R(to). Returns None when there is nothing to move:
    every balance is zero, or both tokens are the same account.
    """
    if from_token == to_token:
        return None
    lines: list[JournalLine] = []
    for currency in sorted(balances):
        balance = quantize(balances[currency], currency)
        if balance == 0:
            continue
        source = Dimensions(company=company, account_token=from_token)
        target = Dimensions(company=company, account_token=to_token)
        if balance > 0:
            lines += [
                dr(ar_account, balance, currency, target),
                cr(ar_account, balance, currency, source),
            ]
        else:
            lines += [
                dr(ar_account, -balance, currency, source),
                cr(ar_account, -balance, currency, target),
            ]
    if not lines:
        return None
    return require_valid(
        JournalEntry(
            entry_key=entry_key,
            posted_on=posted_on,
            period=period,
            channel=channel,
            memo=memo,
            lines=tuple(lines),
            correlation_id=correlation_id,
            causation_id=causation_id,
            moved_from=moved_from,
        )
    )
