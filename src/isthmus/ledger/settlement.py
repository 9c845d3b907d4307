"""Posting rules for patient card payments, processor deposits and bank deposits.

* A card or online patient payment settled by a processor: DR card clearing / CR A/R of
  the patient's account token, for the gross amount (what the patient paid). A refund or
  chargeback (negative) posts the mirror: the A/R comes back, card clearing goes down.
* A processor deposit (payout): DR bank (net), DR processor fees (fee), CR card clearing
  (gross). The clearing account nets to zero once every payment of a deposit and the
  deposit itself are posted; a negative net (refunds above payments) credits the bank.
* A bank deposit matched to an 835 payment (same trace number and amount): DR bank /
  CR cash clearing (the account 835 claim payments debit, `ledger.remit`), so cash
  clearing keeps only what the payers announced and the bank has not yet shown.

Pure functions of amounts and plain mapping values. Entries balance per currency by
construction and pass `validate_entry`; an amount finer than the currency's minor unit
raises `InvalidAmount` (the flow turns it into a work item).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from isthmus.ledger.currency import quantize
from isthmus.ledger.journal import (
    Dimensions,
    JournalEntry,
    JournalLine,
    Posting,
    cr,
    dr,
    require_valid,
)


@dataclass(frozen=True)
class SettlementAccounts:
    """The chart accounts settlements post to (defaults: the demonstration chart)."""

    ar: str = "1200"
    bank: str = "1050"
    card_clearing: str = "1020"
    cash_clearing: str = "1010"
    processor_fees: str = "6100"


def _signed(account: str, amount: Decimal, currency: str, dims: Dimensions) -> list[JournalLine]:
    """A debit for a positive amount, a credit for a negative one, nothing for zero."""
    amount = quantize(amount, currency)
    if amount > 0:
        return [dr(account, amount, currency, dims)]
    if amount < 0:
        return [cr(account, -amount, currency, dims)]
    return []


def _entry(p: Posting, lines: list[JournalLine]) -> JournalEntry | None:
    if not lines:
        return None
    return require_valid(
        JournalEntry(
            entry_key=p.entry_key,
            posted_on=p.posted_on,
            period=p.period,
            channel=p.channel,
            memo=p.memo,
            lines=tuple(lines),
            correlation_id=p.correlation_id,
            causation_id=p.causation_id,
            moved_from=p.moved_from,
        )
    )


def card_payment_entry(
    *,
    gross: Decimal,
    currency: str,
    accounts: SettlementAccounts,
    company: str,
    account_token: str,
    posting: Posting,
) -> JournalEntry | None:
    """DR card clearing / CR A/R (the token's) for a payment; the mirror for a refund or
    chargeback. None for a zero amount."""
    ar = Dimensions(company=company, account_token=account_token)
    clearing = Dimensions(company=company)
    return _entry(
        posting,
        _signed(accounts.card_clearing, gross, currency, clearing)
        + _signed(accounts.ar, -gross, currency, ar),
    )


def processor_deposit_entry(
    *,
    gross: Decimal,
    fee: Decimal,
    net: Decimal,
    currency: str,
    accounts: SettlementAccounts,
    company: str,
    posting: Posting,
) -> JournalEntry | None:
    """DR bank (net), DR processor fees (fee), CR card clearing (gross). Raises
    InvalidEntry (through `require_valid`) when gross - fee is not net."""
    dims = Dimensions(company=company)
    return _entry(
        posting,
        _signed(accounts.bank, net, currency, dims)
        + _signed(accounts.processor_fees, fee, currency, dims)
        + _signed(accounts.card_clearing, -gross, currency, dims),
    )


def bank_match_entry(
    *, amount: Decimal, currency: str, accounts: SettlementAccounts, company: str, posting: Posting
) -> JournalEntry | None:
    """DR bank / CR cash clearing: an 835 payment seen arriving in the bank."""
    dims = Dimensions(company=company)
    return _entry(
        posting,
        _signed(accounts.bank, amount, currency, dims)
        + _signed(accounts.cash_clearing, -amount, currency, dims),
    )
