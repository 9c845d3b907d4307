"""Payment-processor settlement files: card and online patient payments and their deposits.

A processor (card acquirer, online payment portal) pays the hospital in deposits (payouts,
batches): each deposit sums the patient payments it settles, less the processor's fees, and
lands in the bank on its deposit date. The settlement file has one row per transaction:

    processor, deposit_id, deposit_date, transaction_id, transaction_date, type,
    account_number, gross, fee, net, currency

`type` is `payment` (the default), `refund` or `chargeback`, or `deposit` for an optional
control row that states a deposit's totals. `account_number` is the patient's billing
account number (PID-18, what 837 CLM01 carries), never card data: a card number in any
cell of the file (`formats.cards`, the one detector: 13 to 19 digits with any separators,
passing the Luhn check of ISO/IEC 7812) is refused by `formats.settlement.table`, and
`mask_cards` masks it in the copy that is kept. Amounts
carry their sign: a payment is positive, a refund or chargeback negative, a fee is what
the processor keeps (positive; negative when it gives a fee back). Every row must satisfy
gross - fee = net; every deposit must have one processor, deposit date and currency, and
when it has a control row, its gross, fee and net must equal the sums of its rows.

Pure: bytes in, a `SettlementFile` with its findings out; a file with a finding must not
post anything (the caller holds it whole).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Final

from isthmus.formats.cards import mask_bytes
from isthmus.formats.settlement.table import Cells, Finding, Row, read_table

REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "deposit_id": ("batch_id", "payout_id", "settlement_id", "deposit"),
    "deposit_date": ("payout_date", "settlement_date", "batch_date", "funding_date"),
    "transaction_id": ("txn_id", "payment_id", "charge_id", "reference"),
    "account_number": (
        "patient_account",
        "billing_account",
        "account",
        "account_no",
        "guarantor_account",
    ),
    "gross": ("amount", "gross_amount", "charge_amount"),
    "fee": ("fees", "fee_amount", "processing_fee"),
    "net": ("net_amount", "payout_amount"),
}
OPTIONAL: Final[dict[str, tuple[str, ...]]] = {
    "processor": ("acquirer", "gateway", "provider"),
    "transaction_date": ("txn_date", "payment_date", "created", "date"),
    "type": ("transaction_type", "txn_type", "kind"),
    "currency": ("currency_code", "ccy"),
}
KINDS: Final = ("payment", "refund", "chargeback")
CONTROL: Final = "deposit"
_ALIASES: Final = {
    "sale": "payment",
    "charge": "payment",
    "capture": "payment",
    "return": "refund",
    "dispute": "chargeback",
    "payout": CONTROL,
    "batch": CONTROL,
    "total": CONTROL,
}


@dataclass(frozen=True)
class CardPayment:
    """One settled transaction: a patient's card or online payment, refund or chargeback."""

    row: int
    transaction_id: str
    transaction_date: date
    kind: str  # payment | refund | chargeback
    account_number: str
    gross: Decimal
    fee: Decimal
    net: Decimal


@dataclass(frozen=True)
class Deposit:
    """One processor deposit (payout): its transactions and their totals."""

    processor: str
    deposit_id: str
    deposit_date: date
    currency: str
    transactions: tuple[CardPayment, ...]

    @property
    def gross(self) -> Decimal:
        return sum((t.gross for t in self.transactions), Decimal(0))

    @property
    def fee(self) -> Decimal:
        return sum((t.fee for t in self.transactions), Decimal(0))

    @property
    def net(self) -> Decimal:
        return sum((t.net for t in self.transactions), Decimal(0))


@dataclass(frozen=True)
class SettlementFile:
    """A settlement file read: its deposits and their transactions, and its findings (the file
    is refused when there is any)."""

    deposits: tuple[Deposit, ...]
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.findings


def mask_cards(data: bytes) -> bytes:
    """The file with every card number (`formats.cards`) masked but its last four digits,
    so what is kept for inspection never holds one (PCI DSS v4.0 requirement 3.4.1)."""
    return mask_bytes(data)


def _kind(cells: Cells) -> str:
    raw = cells.text("type", required=False).lower() or "payment"
    kind = _ALIASES.get(raw, raw)
    if kind not in (*KINDS, CONTROL):
        cells.findings.append(
            Finding(cells.row.number, "type", "is not payment, refund, chargeback or deposit", raw)
        )
    return kind


@dataclass(frozen=True)
class _Line:
    row: Row
    processor: str
    deposit_id: str
    deposit_date: date | None
    currency: str
    kind: str
    payment: CardPayment


def _line(row: Row, findings: list[Finding]) -> _Line:
    c = Cells(row, findings)
    before = len(findings)
    kind = _kind(c)
    deposit_id = c.text("deposit_id")
    deposit_date = c.day("deposit_date")
    gross, fee, net = c.money("gross"), c.money("fee", default=Decimal(0)), c.money("net")
    currency = c.currency("currency", "USD")
    txn = c.text("transaction_id", required=kind != CONTROL)
    account = c.text("account_number", required=kind != CONTROL)
    when = c.day("transaction_date", required=False) or deposit_date or date.min
    if len(findings) == before:
        if gross - fee != net:
            findings.append(
                Finding(
                    row.number, "net", f"gross {gross} - fee {fee} is {gross - fee}, not net {net}"
                )
            )
        if kind == "payment" and gross <= 0:
            findings.append(Finding(row.number, "gross", "a payment must be positive", str(gross)))
        if kind in ("refund", "chargeback") and gross >= 0:
            findings.append(Finding(row.number, "gross", f"a {kind} must be negative", str(gross)))
    return _Line(
        row,
        c.text("processor", required=False),
        deposit_id,
        deposit_date,
        currency,
        kind,
        CardPayment(row.number, txn, when, kind, account, gross, fee, net),
    )


def _deposit(lines: Sequence[_Line], findings: list[Finding]) -> Deposit | None:
    first = lines[0]
    for col, attr in (
        ("processor", "processor"),
        ("deposit_date", "deposit_date"),
        ("currency", "currency"),
    ):
        for x in lines[1:]:
            if getattr(x, attr) != getattr(first, attr):
                findings.append(
                    Finding(
                        x.row.number,
                        col,
                        f"deposit {first.deposit_id} "
                        f"has {getattr(first, attr)} on row "
                        f"{first.row.number}",
                        str(getattr(x, attr)),
                    )
                )
    controls = [x for x in lines if x.kind == CONTROL]
    txns = [x.payment for x in lines if x.kind != CONTROL]
    seen: dict[str, int] = {}
    for t in txns:
        if t.transaction_id in seen:
            findings.append(
                Finding(
                    t.row,
                    "transaction_id",
                    "appears twice in deposit "
                    f"{first.deposit_id} (first on row "
                    f"{seen[t.transaction_id]})",
                    t.transaction_id,
                )
            )
        seen.setdefault(t.transaction_id, t.row)
    if not txns:
        findings.append(
            Finding(first.row.number, "deposit_id", "deposit has no transactions", first.deposit_id)
        )
    dep = Deposit(
        first.processor,
        first.deposit_id,
        first.deposit_date or date.min,
        first.currency,
        tuple(txns),
    )
    if len(controls) > 1:
        findings.append(
            Finding(
                controls[1].row.number,
                "type",
                f"a second deposit control row for {first.deposit_id}",
            )
        )
    for ctl in controls[:1]:
        for col in ("gross", "fee", "net"):
            stated, summed = getattr(ctl.payment, col), getattr(dep, col)
            if stated != summed:
                findings.append(
                    Finding(
                        ctl.row.number,
                        col,
                        f"deposit {first.deposit_id} "
                        f"control total {stated} but its transactions sum "
                        f"to {summed}",
                    )
                )
    return dep


def parse_settlement(data: bytes) -> SettlementFile:
    """Read a processor settlement CSV; every problem is a finding with row and column."""
    table = read_table(data, required=REQUIRED, optional=OPTIONAL)
    findings = list(table.findings)
    if not table.rows:
        return SettlementFile((), tuple(findings))
    groups: dict[str, list[_Line]] = {}
    for row in table.rows:
        line = _line(row, findings)
        if line.deposit_id:
            groups.setdefault(line.deposit_id, []).append(line)
    deposits = [d for lines in groups.values() if (d := _deposit(lines, findings))]
    findings.sort(key=lambda f: (f.row, f.column))
    return SettlementFile(tuple(deposits), tuple(findings))
