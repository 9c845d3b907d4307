"""The demo's card settlement and bank files read clean, balance, and match the 835."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from isthmus.demo.deposits import card_day
from isthmus.demo.remit835 import ClaimToPay
from isthmus.formats.settlement import parse_bank, parse_settlement


def test_demo_card_day_files_parse_and_add_up() -> None:
    accounts = [ClaimToPay(f"A{i}", Decimal(f"{300 + i}.10")) for i in range(10)]
    day = card_day(
        accounts, day=date(2026, 11, 3), eft_trace="EFT1", eft_amount=Decimal("999.99"), seed=3
    )
    sf = parse_settlement(day.settlement)
    assert sf.ok and len(sf.deposits) == 2
    kinds = [t.kind for d in sf.deposits for t in d.transactions]
    assert kinds.count("payment") == 8 and kinds.count("refund") == 1
    assert day.card_total == sum((d.gross for d in sf.deposits), Decimal(0)) > 0
    assert day.deposits == tuple(
        (d.deposit_id, d.net) for d in sorted(sf.deposits, key=lambda d: d.deposit_id)
    )
    bf = parse_bank(day.bank)
    assert bf.ok
    refs = {(b.reference, b.amount) for b in bf.deposits}
    assert ("EFT1", Decimal("999.99")) in refs and day.deposits[0] in refs
    assert day.deposits[1] not in refs  # the second deposit is still in transit
    assert b"4111" not in day.settlement and b"DOE" not in day.settlement
