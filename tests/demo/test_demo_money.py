"""`isthmus demo` ends with money arriving: card payments settled, the 835's EFT and the
first processor deposit matched in the bank, the second deposit in transit and an old
lockbox credit aging; A/R still equals what was charged less what was paid."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from isthmus.cli.main import run


def test_demo_matches_deposits_and_ages_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["demo", "--data-dir", str(tmp_path / "d"), "--messages", "300", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    dp = out["deposits"]
    assert dp["matched"] == 2 and dp["card_payments"] == 8 and dp["refunds"] == 1
    report = dp["report"]
    assert sorted(m["side"] for m in report["matched"]) == ["eft", "processor"]
    assert [x["bucket"] for x in report["unmatched"]["processor"]["items"]] == ["0-30"]
    assert [(x["reference"], x["bucket"]) for x in report["unmatched"]["bank"]["items"]] == [
        ("LBX-0917", "31-60")
    ]
    assert report["unmatched"]["eft"]["items"] == []
    assert out["expected_net_usd"] == out["ledger_ar_usd"]
    rows = {r["account"]: Decimal(r["balance"]) for r in out["trial_balance"]["rows"]}
    assert rows["1010"] == 0 and rows["1020"] == 0  # both clearings cleared
    assert rows["6100"] == Decimal(dp["fees"]) > 0
