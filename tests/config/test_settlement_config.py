"""[settlement]: accounts, company and the match limit from the config file; a typo is a
configuration error that names the setting, not a silent default."""

from __future__ import annotations

from pathlib import Path

import pytest

from isthmus.config import ConfigError, SettlementPolicy, load_settings


def test_defaults_and_overrides(tmp_path: Path) -> None:
    assert load_settings(None, data_dir=tmp_path, env={}).settlement == SettlementPolicy()
    cfg = tmp_path / "site.toml"
    cfg.write_text(
        '[settlement]\nbank_account = "1001"\nfees_account = "6200"\n'
        'company = "C200"\nmatch_limit_days = 10\n'
    )
    s = load_settings(cfg, data_dir=tmp_path, env={}).settlement
    assert (s.bank_account, s.fees_account, s.company, s.match_limit_days) == (
        "1001",
        "6200",
        "C200",
        10,
    )
    assert s.card_clearing_account == "1020"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'bank_acount = "1001"',
            "unknown key settlement.bank_acount: did you mean settlement.bank_account?",
        ),
        ("match_limit_days = -1", "match_limit_days must be 0 or more"),
        ('match_limit_days = "soon"', "invalid setting"),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, body: str, message: str) -> None:
    cfg = tmp_path / "site.toml"
    cfg.write_text(f"[settlement]\n{body}\n")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(cfg, data_dir=tmp_path, env={})
