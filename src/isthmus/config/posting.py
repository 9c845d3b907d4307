"""[posting], [settlement] and [refunds]: where money posts, and who must approve a refund.

The A/R account and closed periods of the ledger (ledger/periods.py), the bank, clearing
and fee accounts of card settlements and deposits (ledger/settlement.py), and the refund
threshold above which a second person approves (segregation of duties).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from isthmus.config.values import ConfigError, non_negative_decimal

ClosedPeriodPolicy = Literal["reject", "next_open"]


@dataclass(frozen=True)
class PostingPolicy:
    """[posting]: the A/R account, the closed periods and what happens to a late posting
    into one (`reject` or `next_open`, ledger/periods.py), and the refunds-payable account."""

    ar_account: str = "1200"
    closed_periods: tuple[str, ...] = ()
    closed_period_policy: ClosedPeriodPolicy = "next_open"
    refunds_payable_account: str = "2100"


@dataclass(frozen=True)
class RefundSettings:
    """[refunds]: above `approval_threshold` (a decimal string, in the refund's currency) a
    refund waits for a second person's approval (segregation of duties). The threshold
    holds for the sum of an account's posted and pending refunds over the last
    `approval_window_days` days (0: each request alone), so split refunds add up."""

    approval_threshold: Decimal = Decimal("500.00")
    approval_window_days: int = 30


def refunds_from_table(raw: dict[str, Any]) -> RefundSettings:
    """The [refunds] table, checked."""
    threshold = non_negative_decimal(
        raw.get("approval_threshold", "500.00"), "refunds.approval_threshold"
    )
    days = raw.get("approval_window_days", RefundSettings.approval_window_days)
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 3660:
        raise ConfigError(
            "refunds.approval_window_days must be a whole number of days "
            f"from 0 to 3660, got {days!r}"
        )
    return RefundSettings(approval_threshold=threshold, approval_window_days=days)


@dataclass(frozen=True)
class SettlementPolicy:
    """[settlement]: where card settlements and bank deposits post (`ledger.settlement`),
    the ERP company of the bank side, and how many days an 835 payment or a deposit may
    stay unmatched before `isthmus recon deposits` exits 4."""

    bank_account: str = "1050"
    card_clearing_account: str = "1020"
    cash_clearing_account: str = "1010"  # where 835 claim payments are debited
    fees_account: str = "6100"
    company: str = "C100"
    match_limit_days: int = 30


def settlement_from_table(raw: dict[str, Any]) -> SettlementPolicy:
    """The [settlement] table, checked."""
    d = SettlementPolicy()
    policy = SettlementPolicy(
        bank_account=str(raw.get("bank_account", d.bank_account)),
        card_clearing_account=str(raw.get("card_clearing_account", d.card_clearing_account)),
        cash_clearing_account=str(raw.get("cash_clearing_account", d.cash_clearing_account)),
        fees_account=str(raw.get("fees_account", d.fees_account)),
        company=str(raw.get("company", d.company)),
        match_limit_days=int(raw.get("match_limit_days", d.match_limit_days)),
    )
    if policy.match_limit_days < 0:
        raise ConfigError("settlement.match_limit_days must be 0 or more")
    return policy
