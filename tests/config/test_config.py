"""Settings: defaults with no file, TOML tables, environment overrides, clear errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from isthmus.config import ConfigError, load_settings


def test_no_file_gives_local_only_defaults(tmp_path: Path) -> None:
    s = load_settings(None, data_dir=tmp_path, env={})
    assert (s.host, s.mllp_port, s.http_port) == ("127.0.0.1", 2575, 8470)
    assert s.store == "sqlite" and s.bus == "sqlite"
    # a safe default: no chart at all, so nothing posts to demonstration accounts
    assert s.mappings.charge_codes == {} and s.mappings.facility_company == {}
    assert s.mappings.department_cost_center == {} and s.mappings.include == ""
    assert s.reliability.sqlite_synchronous == "FULL"
    assert s.token_secret == ""  # a random per-site key is made in the data dir


def test_file_tables_replace_defaults_and_env_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(
        "[hub]\nmllp_port = 3000\nhttp_port = 3001\n"
        '[mappings.charge_codes]\n"X1" = { revenue_account = "4999", service_line = "Misc" }\n'
        '[mappings.department_cost_center]\nNURS = "CC-9"\n'
        '[channels.mllp]\nsummarization = "detailed"\n'
        '[posting]\nclosed_periods = ["2026-09"]\nclosed_period_policy = "reject"\n'
        "[reliability]\nmax_attempts = 3\n"
    )
    s = load_settings(cfg, env={"ISTHMUS_MLLP_PORT": "4000", "ISTHMUS_DATA_DIR": str(tmp_path)})
    assert s.mllp_port == 4000 and s.http_port == 3001
    assert s.data_dir == tmp_path
    assert set(s.mappings.charge_codes) == {"X1"}
    assert s.mappings.department_cost_center == {"NURS": "CC-9"}
    assert s.mappings.facility_company == {}  # no include: nothing from the demo chart
    assert s.channel("mllp").summarization == "detailed"
    assert s.channel("other").summarization == "summary"
    assert s.posting.closed_periods == ("2026-09",) and s.posting.closed_period_policy == "reject"
    assert s.reliability.max_attempts == 3


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[hub\n", "not valid TOML"),
        ('[channels.mllp]\nsummarization = "weekly"\n', "summarization"),
        ('[posting]\nclosed_period_policy = "ignore"\n', "closed_period_policy"),
        ("[reliability]\nno_such = 1\n", "unknown key reliability.no_such"),
        ('[hub]\nstore = "mongodb"\n', "store must be"),
        ('[mappings.charge_codes]\n"X" = { service_line = "A" }\n', "revenue_account"),
        ('[mappings]\ninclude = "acme"\n', "mappings.include must be one of demo"),
    ],
)
def test_bad_config_names_the_fault(tmp_path: Path, text: str, fragment: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_settings(cfg, data_dir=tmp_path, env={})


def test_include_demo_loads_the_demo_chart_under_the_files_rows(tmp_path: Path) -> None:
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(
        '[mappings]\ninclude = "demo"\n'
        '[mappings.department_cost_center]\nRAD = "CC-9"\nNURS = "CC-8"\n'
        '[mappings.charge_codes]\n"X1" = { revenue_account = "4999" }\n'
    )
    m = load_settings(cfg, data_dir=tmp_path, env={}).mappings
    assert m.include == "demo"
    assert m.facility_company["NORTH"] == "C100"  # from the demo chart
    assert m.department_cost_center["RAD"] == "CC-9"  # the file's row wins
    assert m.department_cost_center["NURS"] == "CC-8" and m.department_cost_center["LAB"]
    assert m.charge_codes["71045"].revenue_account == "4100"
    assert m.charge_codes["X1"].service_line == "General"
    assert "626.2" not in m.charge_codes  # a diagnosis code is never a charge code


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", env={})


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            '[mapping.charge_codes]\n"X" = { revenue_account = "4999" }\n',
            r"unknown table \[mapping\]: did you mean \[mappings\]\?",
        ),
        ("[hub]\nmllp_prot = 3000\n", r"unknown key hub\.mllp_prot: did you mean hub\.mllp_port\?"),
        ("[hub]\nhttp_prt = 3001\n", r"unknown key hub\.http_prt: did you mean hub\.http_port\?"),
        ("[nonsense]\na = 1\n", r"unknown table \[nonsense\]$"),
        ("mllp_port = 3000\n", r"unknown key mllp_port: it belongs in \[hub\]"),
        (
            '[mappings.charge_codes."7 1"]\nrevenue_acount = "4100"\n',
            r'mappings\.charge_codes\."7 1"\.revenue_acount: did you mean '
            r'mappings\.charge_codes\."7 1"\.revenue_account\?',
        ),
        ('[channels.mllp]\nsumarization = "detailed"\n', r"channels\.mllp\.sumarization"),
        ('[labor.pay_codes.overtime]\nrat = "50.00"\n', r"labor\.pay_codes\.overtime\.rat"),
        ('[erp]\nkind = "file"\ntimout_s = 5\n', r"erp\.timout_s: did you mean erp\.timeout_s\?"),
        (
            '[postgresql]\ndns = "postgresql://x"\n',
            r"postgresql\.dns: did you mean postgresql\.dsn\?",
        ),
        (
            '[oidc]\nissuer = "https://i"\naudiance = "a"\n',
            r"oidc\.audiance: did you mean oidc\.audience",
        ),
        ('[supply.accounts]\ninventry = "1300"\n', r"supply\.accounts\.inventry"),
        (
            '[supply.par_levels."STENT|OR"]\npar = 1\nreorder = 1\n',
            r'supply\.par_levels\."STENT\|OR"\.reorder',
        ),
    ],
)
def test_unknown_tables_and_keys_are_refused_with_path_and_guess(
    tmp_path: Path, text: str, fragment: str
) -> None:
    cfg = tmp_path / "typo.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_settings(cfg, data_dir=tmp_path, env={})


def test_every_typo_of_a_file_is_named_at_once(tmp_path: Path) -> None:
    cfg = tmp_path / "typos.toml"
    cfg.write_text("[hub]\nmllp_prot = 1\nhttp_prt = 2\n[nonsense]\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, data_dir=tmp_path, env={})
    assert all(k in str(err.value) for k in ("hub.mllp_prot", "hub.http_prt", "[nonsense]"))


def test_site_named_entries_are_not_mistaken_for_typos(tmp_path: Path) -> None:
    cfg = tmp_path / "site.toml"
    cfg.write_text(
        '[mappings.department_cost_center]\nNURS = "CC-9"\n'
        '[channels.fhir]\ncurrency = "EUR"\n'
        "[sla]\nqueue_age_hours = { denials = 72 }\n"
        '[erp.account_map]\n"1200" = "120000"\n'
        '[labor.employees]\nE1 = "RAD"\n'
    )
    s = load_settings(cfg, data_dir=tmp_path, env={})
    assert s.channel("fhir").currency == "EUR" and s.sla.queue_age_hours == {"denials": 72.0}


def test_settings_added_lately_are_known(tmp_path: Path) -> None:
    cfg = tmp_path / "new.toml"
    cfg.write_text(
        "[reliability]\ncontrol_id_reuse_window_hours = 12.0\n"
        'drop_quiet_period_s = 2.0\n[api]\ntrusted_proxies = ["10.0.0.0/8"]\n'
        "[refunds]\napproval_window_days = 7\n[tls]\n"
    )
    s = load_settings(cfg, data_dir=tmp_path, env={})
    assert s.reliability.drop_quiet_period_s == 2.0 and s.refunds.approval_window_days == 7


def test_scale_out_without_its_drivers_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if `isthmus[scaleout]` were absent
    with pytest.raises(ConfigError, match=r"pip install 'isthmus\[scaleout\]'"):
        load_settings(None, data_dir=tmp_path, env={"ISTHMUS_STORE": "postgresql"})
    monkeypatch.setitem(sys.modules, "nats", None)
    with pytest.raises(ConfigError, match=r"bus = \"nats\" needs the nats driver"):
        load_settings(None, data_dir=tmp_path, env={"ISTHMUS_BUS": "nats"})
    assert load_settings(None, data_dir=tmp_path, env={}).store == "sqlite"
