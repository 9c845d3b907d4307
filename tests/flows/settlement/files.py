"""Settlement and bank deposit files written for the tests (there is no public corpus).

`settlement_csv` writes a processor file from (deposit, transaction, type, account, gross,
fee) rows, computing net = gross - fee unless a test wants it wrong; `bank_csv` writes a
bank deposit file from (date, amount, reference, type) rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

SETTLEMENT_HEADER = (
    "processor,deposit_id,deposit_date,transaction_id,transaction_date,type,"
    "account_number,gross,fee,net,currency"
)


def settlement_csv(
    rows: Sequence[tuple[str, str, str, str, str, str]],
    *,
    processor: str = "DemoPay",
    deposit_date: str = "2026-11-04",
    net: dict[str, str] | None = None,
    crlf: bool = False,
    bom: bool = False,
) -> bytes:
    lines = [SETTLEMENT_HEADER]
    for dep, txn, kind, account, gross, fee in rows:
        n = (net or {}).get(txn) or f"{Decimal(gross) - Decimal(fee):.2f}"
        lines.append(
            f"{processor},{dep},{deposit_date},{txn},2026-11-03,{kind},{account},"
            f"{gross},{fee},{n},USD"
        )
    text = ("\r\n" if crlf else "\n").join(lines) + "\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


def bank_csv(rows: Sequence[tuple[str, str, str, str]]) -> bytes:
    lines = ["Posted Date,Amount,Reference,Type,Description"]
    lines += [f"{d},{a},{r},{t},CREDIT {r}" for d, a, r, t in rows]
    return ("\n".join(lines) + "\n").encode()
