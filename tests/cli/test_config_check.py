"""`isthmus config check [--json] FILE` (issue 19 item 2): every problem of a file at once,
each with its dotted path (and the key meant), exit 4; a good file exit 0; the mapped
accounts checked against a REST ERP that answers (the stub of tests/connectors/erp), "not checked:
ERP unreachable" when it does not; a missing file exit 3, no file at all exit 2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from isthmus.cli.config_check import check
from isthmus.cli.main import run
from isthmus.demo.chart import demo_mappings
from tests.connectors.erp.rest_stub import TOKEN, StubErp, StubServer
from tests.e2e.helpers import free_port

BAD = """\
[hub]
mllp_prot = 2575
http_port = "8470"
store = "sqlit"

[mapping.charge_codes]
"1" = {revenue_account = "4000"}

[nonsense]
a = 1

[reliability]
workers = "4"
backoff_base_s = true

[channels.mllp]
summarisation = "detailed"
currency = 840

[mappings.charge_codes."80053"]
service_line = "Lab"

[mappings.department_cost_center]
LAB = ""

[mappings.transaction_types]
XX = "refund"

[labor]
pay_period_anchor = "2025-01-06"
"""


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, Any]]:
    code = run(argv)
    return code, json.loads(capsys.readouterr().out)


def test_every_problem_at_once_with_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(BAD)
    code, report = _json(capsys, ["config", "check", "--json", str(cfg)])
    assert code == 4 and report["ok"] is False
    found = {f["path"]: f for f in report["findings"]}
    assert found["hub.mllp_prot"]["suggestion"] == "hub.mllp_port"
    assert found["mapping"]["suggestion"] == "mappings"
    assert found["mapping"]["problem"] == "unknown table: did you mean [mappings]?"
    assert found["nonsense"]["problem"] == "unknown table"
    assert found["channels.mllp.summarisation"]["suggestion"] == "channels.mllp.summarization"
    assert "whole number" in found["hub.http_port"]["problem"]
    assert "'sqlite', 'postgresql'" in found["hub.store"]["problem"]
    assert "whole number" in found["reliability.workers"]["problem"]
    assert "a number" in found["reliability.backoff_base_s"]["problem"]
    assert "a string" in found["channels.mllp.currency"]["problem"]
    assert found["mappings.charge_codes.80053.revenue_account"]["problem"] == "is required"
    assert "maps to nothing" in found["mappings.department_cost_center.LAB"]["problem"]
    assert "'refund'" in found["mappings.transaction_types.XX"]["problem"]
    assert "a date" in found["labor.pay_period_anchor"]["problem"]
    assert len(found) == 13 and all(f["severity"] == "error" for f in found.values())
    assert report["erp"] == {"checked": False, "status": "not checked: the file has errors"}
    # the text form: one line each, and the ERP line
    assert run(["config", "check", str(cfg)]) == 4
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("13 problems") and len(out) == 15
    assert "  hub.mllp_prot: unknown key: did you mean hub.mllp_port?" in out
    assert out[-1] == "ERP accounts: not checked: the file has errors"


def test_a_good_file_passes_and_says_the_erp_was_not_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(
        '[hub]\nmllp_port = 2576\n[mappings]\ninclude = "demo"\n'
        '[mappings.charge_codes."99999"]\nrevenue_account = "4100"\n'
    )
    code, report = _json(capsys, ["config", "check", str(cfg), "--json"])
    assert code == 0 and report["ok"] and report["findings"] == []
    assert report["erp"]["status"] == "not checked: [erp] kind is 'file': no ERP API to ask"
    # --config names the file too; notes do not fail the check
    bare = tmp_path / "bare.toml"
    bare.write_text("[hub]\nhttp_port = 8471\n")
    assert run(["config", "check", "--config", str(bare)]) == 0
    assert "note: mappings.charge_codes: no charge code is mapped" in capsys.readouterr().out


def test_toml_that_does_not_parse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text("[hub]\nmllp_port = = 1\n")
    code, report = _json(capsys, ["config", "check", "--json", str(cfg)])
    assert code == 4
    [f] = report["findings"]
    assert f["path"] == "" and "not valid TOML" in f["problem"] and "line 2" in f["problem"]


def test_a_missing_file_is_exit_3_and_no_file_is_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(["config", "check", str(tmp_path / "nope.toml")]) == 3
    assert "does not exist" in capsys.readouterr().err
    monkeypatch.delenv("ISTHMUS_CONFIG", raising=False)
    assert run(["config", "check"]) == 2
    # a broken ISTHMUS_CONFIG does not stop the check of another file
    broken = tmp_path / "broken.toml"
    broken.write_text("[nonsense]\n")
    good = tmp_path / "good.toml"
    good.write_text('[mappings]\ninclude = "demo"\n')
    monkeypatch.setenv("ISTHMUS_CONFIG", str(broken))
    assert run(["config", "check", str(good)]) == 0
    assert run(["config", "check"]) == 4  # and without FILE, it is the one checked


@pytest.fixture(scope="module")
def erp() -> Iterator[str]:
    centers = {
        cc: f"Cost center {cc}" for cc in set(demo_mappings().department_cost_center.values())
    }
    server = StubServer(StubErp(centers))
    server.start()
    try:
        yield f"{server.url}/site"
    finally:
        server.stop()


def _rest(tmp_path: Path, url: str, extra: str = "") -> Path:
    token = tmp_path / "erp.token"
    token.write_text(TOKEN + "\n")
    cfg = tmp_path / "isthmus.toml"
    cfg.write_text(
        f'[erp]\nkind = "rest"\nurl = "{url}"\ntoken_file = "{token}"\n'
        '[mappings]\ninclude = "demo"\n' + extra
    )
    return cfg


def test_mapped_accounts_are_checked_against_a_reachable_erp(
    tmp_path: Path, erp: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = _json(capsys, ["config", "check", "--json", str(_rest(tmp_path, erp))])
    assert code == 0, report
    assert report["erp"]["checked"] and report["erp"]["missing"] == 0
    assert report["erp"]["accounts"] > 5
    missing = _rest(
        tmp_path,
        erp,
        '[mappings.charge_codes."71045"]\n'
        'revenue_account = "4999"\n'
        '[mappings.department_cost_center]\nNEURO = "CC-NOPE"\n',
    )
    code, report = _json(capsys, ["config", "check", "--json", str(missing)])
    assert code == 4 and report["erp"]["missing"] == 2
    found = {f["path"]: f["problem"] for f in report["findings"]}
    assert found["mappings.charge_codes.71045.revenue_account"] == (
        "account 4999 is not in the ERP (mapped from charge code 71045)"
    )
    assert "cost center CC-NOPE" in found["mappings.department_cost_center.NEURO"]


def test_an_unreachable_erp_is_not_checked_and_said_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _rest(tmp_path, f"http://127.0.0.1:{free_port()}")
    assert run(["config", "check", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "ERP accounts: not checked: ERP unreachable (" in out
    report = check(cfg)
    assert report["erp"]["checked"] is False and report["erp"]["reason"]
