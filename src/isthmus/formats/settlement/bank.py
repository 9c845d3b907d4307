"""Bank deposit files: what actually landed in the hospital's bank account.

An export of the bank account's credits (a statement or a BAI2/camt report flattened to
CSV), one row per deposit:

    deposit_date, amount, reference, type, currency, bank_account

`reference` is what the bank shows to match the deposit on: the 835 EFT trace number
(TRN02, the ACH addenda's reassociation trace, 005010X221A1 section 1.10.2.3) for a payer's
payment, the processor's deposit (payout) id for a card settlement. `type` is ACH, card,
check, wire or other (empty: unknown). Amounts are credits: a row must be positive. The
same (date, reference, amount) twice in one file is a finding, because a bank gives each
credit once. Other columns (descriptions can name patients) are never read.

Pure: bytes in, a `BankFile` with its findings out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Final

from isthmus.formats.settlement.table import Cells, Finding, read_table

REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "deposit_date": ("date", "posted_date", "posting_date", "value_date", "credit_date"),
    "amount": ("credit", "deposit_amount", "credit_amount"),
    "reference": ("trace", "trace_number", "reference_number", "ref", "eft_trace"),
}
OPTIONAL: Final[dict[str, tuple[str, ...]]] = {
    "type": ("method", "payment_type", "deposit_type", "transaction_type"),
    "currency": ("currency_code", "ccy"),
    "bank_account": ("account_id", "bank_account_number"),
}
METHODS: Final = {
    "ach": "ACH",
    "eft": "ACH",
    "card": "CARD",
    "check": "CHECK",
    "chk": "CHECK",
    "wire": "WIRE",
    "fwt": "WIRE",
    "other": "OTHER",
    "": "",
}


@dataclass(frozen=True)
class BankDeposit:
    """One bank credit of a deposit file, with its row number in the file."""

    row: int
    deposit_date: date
    amount: Decimal
    reference: str
    method: str  # ACH | CARD | CHECK | WIRE | OTHER | "" (unknown)
    currency: str
    bank_account: str


@dataclass(frozen=True)
class BankFile:
    """A bank deposit file read: its deposits and its findings (the file is refused when
    there is any)."""

    deposits: tuple[BankDeposit, ...]
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.findings


def parse_bank(data: bytes) -> BankFile:
    """Read a bank deposit CSV; every problem is a finding with row and column."""
    table = read_table(data, required=REQUIRED, optional=OPTIONAL)
    findings = list(table.findings)
    out: list[BankDeposit] = []
    seen: dict[tuple[date, str, Decimal], int] = {}
    for row in table.rows:
        c = Cells(row, findings)
        before = len(findings)
        when = c.day("deposit_date")
        amount = c.money("amount")
        reference = c.text("reference")
        raw_method = c.text("type", required=False)
        method = METHODS.get(raw_method.lower())
        if method is None:
            findings.append(
                Finding(row.number, "type", "is not ACH, card, check, wire or other", raw_method)
            )
        currency = c.currency("currency", "USD")
        if len(findings) > before or when is None or method is None or row.carded:
            continue
        if amount <= 0:
            findings.append(
                Finding(row.number, "amount", "a deposit must be positive", str(amount))
            )
            continue
        key = (when, reference.upper(), amount)
        if key in seen:
            findings.append(
                Finding(row.number, "reference", f"the same deposit as row {seen[key]}", reference)
            )
            continue
        seen[key] = row.number
        out.append(
            BankDeposit(
                row.number,
                when,
                amount,
                reference,
                method,
                currency,
                c.text("bank_account", required=False),
            )
        )
    findings.sort(key=lambda f: (f.row, f.column))
    return BankFile(tuple(out), tuple(findings))
