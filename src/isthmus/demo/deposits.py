"""The demo's money arriving: a card processor's settlement file and the bank's deposits.

Patients pay part of their balance by card or online (a processor, DemoPay, settles them
in two deposits the next day, less 2.9% + 0.30 per payment; one payment is refunded), and
the bank account shows what landed: the payer's 835 EFT (same trace number and amount as
its BPR02/TRN02), the first DemoPay deposit, and a lockbox credit from weeks ago that
nothing explains. The second DemoPay deposit has not reached the bank yet. So the demo's
`recon deposits` has matches, a deposit in transit and a small aging. Deterministic for a
seed; account numbers only, never card data or names.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from isthmus.demo.remit835 import ClaimToPay

CENT = Decimal("0.01")
PROCESSOR = "DemoPay"
HEADER = (
    "processor,deposit_id,deposit_date,transaction_id,transaction_date,type,"
    "account_number,gross,fee,net,currency"
)


@dataclass(frozen=True)
class CardDay:
    """The demo's card money for one day: the processor's settlement file, the bank's deposit
    file, and the totals the reconciliation should find."""

    settlement: bytes  # the processor's settlement CSV
    bank: bytes  # the bank's deposit CSV
    card_total: Decimal  # payments less refunds: what leaves the patients' A/R
    deposits: tuple[tuple[str, Decimal], ...]  # (deposit id, net) per processor deposit


def _fee(gross: Decimal) -> Decimal:
    return (gross * Decimal("0.029") + Decimal("0.30")).quantize(CENT)


def card_day(
    accounts: Sequence[ClaimToPay],
    *,
    day: date,
    eft_trace: str,
    eft_amount: Decimal,
    seed: int = 7,
    payments: int = 8,
) -> CardDay:
    """Card payments on up to `payments` of `accounts` (10% to 40% of what each was
    charged), the first one refunded in part, in two deposits on `day` + 1; and the bank
    file for `day` + 2."""
    rng = random.Random(seed)
    paid_on = day + timedelta(days=1)
    rows: list[tuple[str, str, str, str, Decimal, Decimal]] = []
    chosen = list(accounts)[:payments]
    for i, acct in enumerate(chosen):
        gross = (acct.charged * Decimal(rng.uniform(0.1, 0.4))).quantize(CENT)
        dep = f"DP-{paid_on:%m%d}-{1 + i % 2}"
        rows.append(
            (dep, f"ch_{seed:02d}{i:04d}", "payment", acct.account_number, gross, _fee(gross))
        )
    if rows:
        dep, _, _, account, gross, _ = rows[0]
        rows.append(
            (
                dep,
                f"re_{seed:02d}0000",
                "refund",
                account,
                -(gross / 2).quantize(CENT),
                Decimal("0.00"),
            )
        )
    lines = [HEADER]
    nets: dict[str, Decimal] = {}
    for dep, txn, kind, account, gross, fee in rows:
        net = gross - fee
        nets[dep] = nets.get(dep, Decimal(0)) + net
        lines.append(
            f"{PROCESSOR},{dep},{paid_on.isoformat()},{txn},{day.isoformat()},{kind},"
            f"{account},{gross},{fee},{net},USD"
        )
    in_bank = day + timedelta(days=2)
    bank = [
        "Posted Date,Amount,Reference,Type,Description",
        f"{in_bank.isoformat()},{eft_amount},{eft_trace},ACH,HCCLAIMPMT DEMO HEALTH PLAN",
    ]
    first = sorted(nets)[:1]
    bank += [f"{in_bank.isoformat()},{nets[d]},{d},card,{PROCESSOR} PAYOUT" for d in first]
    bank.append(f"{(day - timedelta(days=40)).isoformat()},125.00,LBX-0917,check,LOCKBOX")
    return CardDay(
        settlement=("\n".join(lines) + "\n").encode(),
        bank=("\n".join(bank) + "\n").encode(),
        card_total=sum((r[4] for r in rows), Decimal(0)),
        deposits=tuple(sorted(nets.items())),
    )
