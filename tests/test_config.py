"""Settings: defaults with no file, TOML tables, environment overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from isthmus.config import ConfigError, load_settings


def test_no_file_gives_local_only_defaults(tmp_path: Path) -> None:
    s = load_settings(None, data_dir=tmp_path, env={})
    assert (s.host, s.mllp_port, s.http_port) == ("127.0.0.1", 2575, 8470)
    assert s.store == "sqlite" and s.bus == "sqlite"
    assert s.mappings.charge_codes["71045"].revenue_account == "4100"
    assert s.reliability.sqlite_synchronous == "FULL"
    assert s.token_secret == ""  # a random per-site key is made in the data dir


def test_file_tables_replace_defaults_and_env_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(
        '[hub]\nmllp_port = 3000\nhttp_port = 3001\n'
        '[mappings.charge_codes]\n"X1" = { revenue_account = "4999", service_line = "Misc" }\n'
        '[mappings.department_cost_center]\nNURS = "CC-9"\n'
        '[channels.mllp]\nsummarization = "detailed"\n'
        '[posting]\nclosed_periods = ["2026-09"]\nclosed_period_policy = "reject"\n'
        '[reliability]\nmax_attempts = 3\n'
    )
    s = load_settings(cfg, env={"ISTHMUS_MLLP_PORT": "4000", "ISTHMUS_DATA_DIR": str(tmp_path)})
    assert s.mllp_port == 4000 and s.http_port == 3001
    assert s.data_dir == tmp_path
    assert set(s.mappings.charge_codes) == {"X1"}
    assert s.mappings.department_cost_center == {"NURS": "CC-9"}
    assert s.mappings.facility_company["NORTH"] == "C100"  # untouched table keeps defaults
    assert s.channel("mllp").summarization == "detailed"
    assert s.channel("other").summarization == "summary"
    assert s.posting.closed_periods == ("2026-09",) and s.posting.closed_period_policy == "reject"
    assert s.reliability.max_attempts == 3


@pytest.mark.parametrize(("text", "fragment"), [
    ("[hub\n", "not valid TOML"),
    ('[channels.mllp]\nsummarization = "weekly"\n', "summarization"),
    ('[posting]\nclosed_period_policy = "ignore"\n', "closed_period_policy"),
    ('[reliability]\nno_such = 1\n', "invalid setting"),
    ('[hub]\nstore = "mongodb"\n', "store must be"),
    ('[mappings.charge_codes]\n"X" = { service_line = "A" }\n', "revenue_account"),
])
def test_bad_config_names_the_fault(tmp_path: Path, text: str, fragment: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_settings(cfg, data_dir=tmp_path, env={})


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", env={})
