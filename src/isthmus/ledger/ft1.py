"""Posting rules for FT1 payments and adjustments (HL7 table 0017: PY, AJ), pure.

A DFT^P03/P11 FT1 line is mapped by the site ([mappings.transaction_types]) to a charge,
a credit, a payment or an adjustment. Charges and credits are `rules.charge_entry`; this
module posts the other two against the patient's A/R (account token dimension):
- payment: DR cash clearing / CR A/R (a payment always lowers the balance, whatever sign
  the sender gave it);
- adjustment sent negative (the usual): DR adjustments (contra revenue) / CR A/R;
  adjustment sent positive: DR A/R / CR adjustments (a debit adjustment raises it).
The amount arrives positive (`Charge.amount`); a zero or over-precise one is refused.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from isthmus.ledger.currency import quantize
from isthmus.ledger.errors import InvalidAmount, LedgerError, ZeroAmount
from isthmus.ledger.journal import Dimensions, JournalEntry, cr, dr, require_valid
from isthmus.model import Money

BalanceKind = Literal["payment", "adjustment"]


def balance_entry(
    kind: BalanceKind,
    money: Money,
    *,
    raises: bool,
    ar_account: str,
    counter_account: str,
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
    """The entry of one FT1 payment or adjustment (module docstring)."""
    amount = quantize(money.amount, money.currency)
    if amount <= 0:
        refusal = ZeroAmount if amount == 0 else InvalidAmount
        message = f"{kind}: amount {amount} {money.currency} not > 0"
        raise refusal(
            message, (LedgerError(code="bad_amount", message=message, entry_key=entry_key),)
        )
    ar = Dimensions(company=company, account_token=account_token)
    counter = Dimensions(company=company)
    if kind == "adjustment" and raises:
        lines = (
            dr(ar_account, amount, money.currency, ar),
            cr(counter_account, amount, money.currency, counter),
        )
    else:
        lines = (
            dr(counter_account, amount, money.currency, counter),
            cr(ar_account, amount, money.currency, ar),
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
