"""A read command pointed at a data directory that holds no hub refuses (exit 3: what was
asked for does not exist) and creates nothing; `--version` and `python -m isthmus` answer
without a hub."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from isthmus import __version__
from isthmus.cli.main import run

READS = [
    ["status"],
    ["ledger", "trial-balance"],
    ["messages", "list"],
    ["workitems", "list"],
    ["dlq", "list"],
    ["audit", "verify"],
    ["recon", "deposits"],
    ["refunds", "list"],
    ["supply", "report"],
    ["tokens", "list"],
    ["backup", "--to", "/nonexistent/bk"],
]


@pytest.mark.parametrize("argv", READS, ids=lambda a: " ".join(a[:2]))
def test_read_command_on_a_mistyped_data_dir_refuses_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    typo = tmp_path / "isthmsu-data"
    assert run([*argv, "--data-dir", str(typo)]) == 3
    err = capsys.readouterr().err
    assert "no hub in" in err and "isthmus migrate" in err and err.count("\n") == 1
    assert str(typo) in err
    assert not typo.exists()  # no empty hub was made on the way


def test_the_same_command_reads_the_hub_once_it_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()  # an existing but empty folder is no hub either
    assert run(["ledger", "trial-balance", "--data-dir", str(data)]) == 3
    assert run(["migrate", "--data-dir", str(data)]) == 0
    capsys.readouterr()
    assert run(["ledger", "trial-balance", "--data-dir", str(data)]) == 0


def test_contracts_check_needs_no_hub(tmp_path: Path) -> None:
    assert run(["contracts", "check", "--data-dir", str(tmp_path / "none")]) in (0, 4)
    assert not (tmp_path / "none").exists()


def test_version_and_python_dash_m(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        run(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"isthmus {__version__}\n"
    res = subprocess.run(
        [sys.executable, "-m", "isthmus", "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (res.returncode, res.stdout) == (0, f"isthmus {__version__}\n")
