"""Balances: the trial balance and per-dimension account balances, computed from lines.

A trial balance is the first thing finance checks at close and the first thing
reconciliation compares with the ERP: per account and currency, total debits, total
credits and the balance (debit minus credit), plus per-currency totals that must be equal.
Currencies are never added together. `account_balances` answers "what does each patient
account owe on A/R", which an A40 merge needs to move a balance from one token to another.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import msgspec

from isthmus.ledger.journal import Dimensions, JournalLine

_DIMENSIONS = frozenset(Dimensions.__struct_fields__)


class TrialBalanceRow(msgspec.Struct, frozen=True, kw_only=True):
    """One trial balance row: total debits and credits of an account in one currency, and
    the balance (debit minus credit)."""

    account: str
    currency: str
    debit: Decimal
    credit: Decimal
    balance: Decimal  # debit - credit


class CurrencyTotal(msgspec.Struct, frozen=True, kw_only=True):
    """Trial balance totals of one currency; `balanced` when debits equal credits."""

    currency: str
    debit: Decimal
    credit: Decimal
    balanced: bool


class TrialBalance(msgspec.Struct, frozen=True, kw_only=True):
    """Rows sorted by (account, currency); totals sorted by currency."""

    rows: tuple[TrialBalanceRow, ...]
    totals: tuple[CurrencyTotal, ...]
    balanced: bool  # every currency balances

    def total(self, currency: str) -> CurrencyTotal | None:
        return next((t for t in self.totals if t.currency == currency), None)


def trial_balance(lines: Iterable[JournalLine]) -> TrialBalance:
    """Group lines per account and currency; total them per currency."""
    sums: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
    for line in lines:
        key = (line.account, line.currency)
        debit, credit = sums.get(key, (Decimal(0), Decimal(0)))
        sums[key] = (debit + line.debit, credit + line.credit)
    rows = tuple(
        TrialBalanceRow(account=acct, currency=cur, debit=d, credit=c, balance=d - c)
        for (acct, cur), (d, c) in sorted(sums.items())
    )
    per_currency: dict[str, tuple[Decimal, Decimal]] = {}
    for row in rows:
        debit, credit = per_currency.get(row.currency, (Decimal(0), Decimal(0)))
        per_currency[row.currency] = (debit + row.debit, credit + row.credit)
    totals = tuple(
        CurrencyTotal(currency=cur, debit=d, credit=c, balanced=d == c)
        for cur, (d, c) in sorted(per_currency.items())
    )
    return TrialBalance(rows=rows, totals=totals, balanced=all(t.balanced for t in totals))


def account_balances(
    lines: Iterable[JournalLine], *, account: str, by: str = "account_token"
) -> dict[tuple[str, str], Decimal]:
    """Balance (debit positive) of `account` per (dimension value, currency).

    `by` names a `Dimensions` field; the default groups A/R by patient-account token.
    Keys that net to zero are kept, so a caller can tell "settled" from "never seen".
    """
    if by not in _DIMENSIONS:
        raise ValueError(f"by={by!r} is not a dimension; use one of {sorted(_DIMENSIONS)}")
    out: dict[tuple[str, str], Decimal] = {}
    for line in lines:
        if line.account == account:
            key = (getattr(line.dims, by), line.currency)
            out[key] = out.get(key, Decimal(0)) + line.debit - line.credit
    return dict(sorted(out.items()))


def token_balances(lines: Iterable[JournalLine], *, account: str, token: str) -> dict[str, Decimal]:
    """Currency -> balance of one patient-account token on `account` (merge reclass input)."""
    return {
        cur: bal
        for (tok, cur), bal in account_balances(lines, account=account).items()
        if tok == token
    }
