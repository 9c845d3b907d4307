"""Posting rules for remittances (X12 835): claim payments, adjustments, PLB.

A claim payment (CLP) becomes one entry against the patient's A/R (account token):

* payment, CLP04: DR cash clearing / CR A/R;
* CAS group CO (contractual obligation): DR contractual allowance / CR A/R;
* CAS group PR (patient responsibility): DR patient self-pay A/R / CR A/R (a transfer of
  the balance from the payer's side to the patient's side, both on the same token);
* CAS groups OA, PI, CR (other, payer-initiated, corrections): DR other adjustments / CR A/R.

A negative amount (a reversal, CLP02 = 22, carries negated amounts; a CAS may be negative
too) posts the same pair with the sides swapped, so a reversal mirrors the original entry
exactly. A provider-level adjustment (PLB) is DR provider adjustments / CR cash clearing
when positive (the payer withholds it) and the mirror when negative (e.g. interest).

Pure functions of the amounts and plain mapping values; the caller looks up accounts and
dimensions. Entries balance per currency by construction and pass `validate_entry`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from isthmus.ledger.currency import quantize
from isthmus.ledger.journal import Dimensions, JournalEntry, JournalLine, cr, dr, require_valid

PATIENT_RESPONSIBILITY = "PR"
CONTRACTUAL = "CO"


@dataclass(frozen=True)
class RemitAccounts:
    """The chart accounts remittances post to (defaults: the demonstration chart)."""

    ar: str = "1200"
    cash_clearing: str = "1010"
    patient_ar: str = "1210"
    contractual: str = "4900"
    other_adjustments: str = "4910"
    provider_adjustments: str = "4920"

    def for_group(self, group: str) -> str:
        """The debit account of a CAS group code (005010X221A1 CAS01)."""
        if group == CONTRACTUAL:
            return self.contractual
        if group == PATIENT_RESPONSIBILITY:
            return self.patient_ar
        return self.other_adjustments


def _pair(
    debit_account: str,
    credit_account: str,
    amount: Decimal,
    currency: str,
    debit_dims: Dimensions,
    credit_dims: Dimensions,
) -> list[JournalLine]:
    """DR/CR for a positive amount, the sides swapped for a negative one, nothing for 0."""
    amount = quantize(amount, currency)
    if amount > 0:
        return [
            dr(debit_account, amount, currency, debit_dims),
            cr(credit_account, amount, currency, credit_dims),
        ]
    if amount < 0:
        return [
            dr(credit_account, -amount, currency, credit_dims),
            cr(debit_account, -amount, currency, debit_dims),
        ]
    return []


def claim_payment_entry(
    *,
    paid: Decimal,
    adjustments: Iterable[tuple[str, str, Decimal]],
    currency: str,
    accounts: RemitAccounts,
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
) -> JournalEntry | None:
    """One 835 claim (CLP04 paid, CAS (group, CARC, amount) triplets) -> a journal entry.

    Returns None when every amount is zero (nothing moves). Raises InvalidAmount when an
    amount is finer than the currency's minor unit.
    """
    ar = Dimensions(company=company, account_token=account_token)
    cash = Dimensions(company=company)
    lines = _pair(accounts.cash_clearing, accounts.ar, paid, currency, cash, ar)
    for group, reason, amount in adjustments:
        debit_dims = (
            ar
            if group == PATIENT_RESPONSIBILITY
            else Dimensions(company=company, service_line=f"CARC {group}-{reason}")
        )
        lines += _pair(accounts.for_group(group), accounts.ar, amount, currency, debit_dims, ar)
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


def provider_adjustment_entry(
    *,
    amount: Decimal,
    currency: str,
    accounts: RemitAccounts,
    company: str,
    entry_key: str,
    posted_on: date,
    period: str,
    channel: str,
    memo: str,
    correlation_id: str,
    causation_id: str,
    moved_from: str | None = None,
) -> JournalEntry | None:
    """PLB04: positive (withheld) DR provider adjustments / CR cash clearing, negative
    the mirror. None for a zero amount."""
    dims = Dimensions(company=company)
    lines = _pair(
        accounts.provider_adjustments, accounts.cash_clearing, amount, currency, dims, dims
    )
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
