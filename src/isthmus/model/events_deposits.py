"""Deposit events: patient payments a processor settles, its payouts, and bank credits.

From the processors' settlement files and the bank's deposit file; what the 835 payments
and processor payouts are matched with when the money arrives. Never card data. Imported
through `isthmus.model.events`, which re-exports every type.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import msgspec


class PatientPaymentSettled(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A card or online patient payment (or its refund or chargeback) settled by a payment
    processor, from its settlement file. `account_number` is the billing account (PID-18),
    never card data. Amounts carry their sign: a refund or chargeback is negative;
    gross - fee = net."""

    processor: str
    deposit_id: str
    transaction_id: str
    kind: str  # payment | refund | chargeback
    account_number: str
    transaction_date: date
    deposit_date: date
    gross: Decimal
    fee: Decimal
    net: Decimal
    currency: str = "USD"


class ProcessorDeposited(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A processor's deposit (payout): the sum of the payments it settles, less its fees,
    paid into the bank on `deposit_date`."""

    processor: str
    deposit_id: str
    deposit_date: date
    gross: Decimal
    fee: Decimal
    net: Decimal
    currency: str = "USD"
    transactions: int = 0


class BankDeposited(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A credit on the hospital's bank account, from a bank deposit file. `reference` is
    what it matches on: an 835 trace number (TRN02) or a processor deposit id."""

    deposit_date: date
    amount: Decimal
    reference: str
    method: str = ""  # ACH | CARD | CHECK | WIRE | OTHER | "" (unknown)
    currency: str = "USD"
    bank_account: str = ""
