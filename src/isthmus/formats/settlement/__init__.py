"""Settlement and bank deposit CSV files: bytes -> typed rows and findings. Pure.

`detect` tells the two kinds apart by their header alone (a file whose header names the
columns of neither is neither), so the drop folder and `isthmus ingest` need no hint.
"""

from __future__ import annotations

from typing import Final

from isthmus.formats.cards import looks_like_card
from isthmus.formats.settlement import bank, processor
from isthmus.formats.settlement.bank import BankDeposit, BankFile, parse_bank
from isthmus.formats.settlement.processor import (
    CardPayment,
    Deposit,
    SettlementFile,
    mask_cards,
    parse_settlement,
)
from isthmus.formats.settlement.table import Finding, header_of, norm

SETTLEMENT: Final = "settlement"
BANK: Final = "bank"


def _has(header: set[str], required: dict[str, tuple[str, ...]]) -> bool:
    return all(
        any(norm(a) in header for a in (name, *aliases)) for name, aliases in required.items()
    )


def detect(data: bytes) -> str:
    """ "settlement", "bank" or "" from the header line of a CSV file."""
    header = set(header_of(data))
    if _has(header, processor.REQUIRED):
        return SETTLEMENT
    if _has(header, bank.REQUIRED):
        return BANK
    return ""


__all__ = [
    "BANK",
    "SETTLEMENT",
    "BankDeposit",
    "BankFile",
    "CardPayment",
    "Deposit",
    "Finding",
    "SettlementFile",
    "detect",
    "looks_like_card",
    "mask_cards",
    "parse_bank",
    "parse_settlement",
]
