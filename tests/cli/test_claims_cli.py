"""`isthmus claims ...` on an embedded hub: submit an 837, apply its 999, list, show the
timeline, and the refusals with their exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from isthmus.cli.main import run
from isthmus.formats.x12 import build_999, parse_837, read
from tests.chart import demo_config
from tests.flows.claims.claim_files import institutional, professional


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ISTHMUS_TOKEN", raising=False)
    monkeypatch.setenv("ISTHMUS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("ISTHMUS_STORE", raising=False)
    monkeypatch.setenv("ISTHMUS_CONFIG", str(demo_config(tmp_path)))
    return tmp_path / "data"


def cli(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> Any:
    capsys.readouterr()
    assert run([*argv, "--json"]) == code
    out, err = capsys.readouterr()
    return json.loads(out) if code == 0 else (out, err)


def test_submit_ack_list_show(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f1, f2 = tmp_path / "p.837", tmp_path / "i.837"
    f1.write_text(professional().replace("11:B:1", "11:B:9"))  # fails its edits
    f2.write_text(institutional())
    got = cli(capsys, ["claims", "submit", str(f1), str(f2)])
    assert [(r["file"], r["submitted"], list(r["failed"])) for r in got] == [
        ("p.837", [], ["26463774"]),
        ("i.837", ["756048Q", "756049Q"], []),
    ]
    sent = data / "outbound" / "claims" / got[1]["sent"]
    ic = read(sent.read_bytes())
    ack = tmp_path / "ack.999"
    ack.write_bytes(build_999(ic, parse_837(ic).findings))
    got = cli(capsys, ["claims", "ack", str(ack)])
    assert got == [
        {"file": "ack.999", "claims": {"756048Q": "accepted", "756049Q": "accepted"}, "unknown": 0}
    ]
    rows = cli(capsys, ["claims", "list", "--state", "accepted"])
    assert [r["claim"] for r in rows] == ["756048Q", "756049Q"]
    shown = cli(capsys, ["claims", "show", "756049Q"])
    assert [e["to"] for e in shown["timeline"]] == ["created", "scrubbed", "submitted", "accepted"]
    assert shown["controls"] == "000000001/1/0001"
    _, err = cli(capsys, ["claims", "show", "NOPE"], code=3)
    assert "NOPE" in err
    _, err = cli(capsys, ["claims", "appeal", "756049Q"], code=4)
    assert "cannot happen in state 'accepted'" in err  # a refusal: one line on stderr
    cli(capsys, ["claims", "submit"], code=2)


def test_ingest_applies_a_999_as_claims_ack_does(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`isthmus ingest --apply` takes the 999 through the inbox and the worker; `claims ack`
    of the same file afterwards finds the claims accepted already (a fact, no move)."""
    f = tmp_path / "i.837"
    f.write_text(institutional())
    [got] = cli(capsys, ["claims", "submit", str(f)])
    ic = read((data / "outbound" / "claims" / got["sent"]).read_bytes())
    ack = tmp_path / "ack.999"
    ack.write_bytes(build_999(ic, parse_837(ic).findings))
    taken = cli(capsys, ["ingest", str(ack), "--apply"])
    assert [(r["kind"], r["status"], r["events"]) for r in taken["items"]] == [
        ("999", "accepted", 1)
    ]
    assert taken["applied"] >= 1
    rows = cli(capsys, ["claims", "list", "--state", "accepted"])
    assert [r["claim"] for r in rows] == ["756048Q", "756049Q"]
    again = cli(capsys, ["ingest", str(ack), "--apply"])
    assert again["items"][0]["duplicate"] is True
    shown = cli(capsys, ["claims", "show", "756048Q"])
    assert [e["kind"] for e in shown["timeline"]] == [
        "created",
        "edits_passed",
        "submitted",
        "ack_accepted",
    ]
    assert shown["timeline"][-1]["cause"].startswith("x12/")
