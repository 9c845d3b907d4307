"""[claims] settings: parsed, checked, and the fee schedules loaded beside the data."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from isthmus.config import ConfigError, load_settings
from isthmus.flows.claim_pricing import ClaimPolicy


def settings(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    f = tmp_path / "hub.toml"
    f.write_text(text)
    return load_settings(f, data_dir=tmp_path)


def test_claims_table_and_fee_schedules(tmp_path: Path) -> None:
    (tmp_path / "fees").mkdir()
    (tmp_path / "fees" / "acme.csv").write_text("code,allowed\n99213,72.15\n")
    s = settings(
        tmp_path,
        '[claims]\nusage = "T"\nwrite_off_threshold = "25.00"\n'
        '[claims.turnaround_days]\n"99999" = 14\n[claims.fee_schedules]\n'
        '"99999/GOLD" = "fees/acme.csv"\n',
    )
    c = s.claims
    assert (c.usage, c.write_off_threshold, c.turnaround_days) == (
        "T",
        Decimal("25.00"),
        {"99999": 14},
    )
    policy = ClaimPolicy.load(c, tmp_path)
    got = policy.schedule("99999", "GOLD")
    assert got is not None and got.allowed == {"99213": Decimal("72.15")}
    assert policy.schedule("99999", "SILVER") is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('[claims]\nusage = "X"\n', "usage must be P or T"),
        ("[claims]\nappeal_days = -1\n", "appeal_days"),
        ("[claims]\nwrite_off_threshold = 5.5\n", "write_off_threshold"),
        ('[claims]\ndestination = "nope"\n', "names no"),
        ('[claims]\nsender = "X"\n', "claims.sender"),
    ],
)
def test_claims_table_refusals(tmp_path: Path, text: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        settings(tmp_path, text)
