"""Every CLI command, as the real parser reads it, is open to an admin token (issue 16, 9).

tests/governance/test_rbac_matrix.py builds the command's namespace by hand; here each
command line goes through `isthmus`'s own parser, so a default the parser adds (`migrate`
sets `action`) is part of what the gate sees.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from isthmus.cli import gate as cli_gate
from isthmus.cli.main import parser, run
from isthmus.config import load_settings
from isthmus.governance import rbac


def _argv(name: str, p: argparse.ArgumentParser, act: str | None) -> list[str]:
    """The shortest command line the parser takes for this command and sub-action."""
    argv = [name] if act is None else [name, act]
    for a in p._actions:
        if a.option_strings and a.required:
            argv += [a.option_strings[0], "x"]
        elif not a.option_strings and a.dest != "action" and a.nargs == "+":
            argv.append("x")
    return argv


def _command_lines() -> list[list[str]]:
    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    out: list[list[str]] = []
    for name, p in sub.choices.items():
        act = next((a for a in p._actions if a.dest == "action" and a.choices), None)
        out += [_argv(name, p, str(c)) for c in act.choices] if act else [_argv(name, p, None)]
    return out


@pytest.fixture
def admin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str:
    monkeypatch.delenv("ISTHMUS_TOKEN", raising=False)
    monkeypatch.setenv("ISTHMUS_DATA_DIR", str(tmp_path / "data"))
    capsys.readouterr()
    assert run(["init", "--json"]) == 0
    token: str = json.loads(capsys.readouterr().out)["token"]
    return token


def test_admin_may_run_every_cli_command(admin: str) -> None:
    settings = load_settings(None)
    lines = _command_lines()
    assert ["migrate"] in lines and ["tokens", "revoke"] in lines
    refused: list[str] = []
    for argv in lines:
        args = parser().parse_args([*argv, "--token", admin])
        action = cli_gate.action_of(args)
        assert action in rbac.PERMISSIONS or action in rbac.LOCAL, action
        try:
            cli_gate.guard(settings, args)
        except cli_gate.Unauthorized as exc:
            refused.append(f"{' '.join(argv)}: {exc}")
    assert not refused, refused


def test_migrate_runs_with_an_admin_token(admin: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert run(["migrate", "--token", admin, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["schema_version"] >= 1
    assert run(["migrate"]) == 2, "still needs a token once the hub is initialized"
    assert "migrate needs a token" in capsys.readouterr().err
