"""`isthmus erp setup-tryton` refuses what it cannot build, with exit 2 and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from isthmus.cli.main import run


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ([], "--database"),
        (["--database", "x", "--dsn", "mysql://db/"], "--dsn must be sqlite:// or postgresql://"),
    ],
)
def test_setup_tryton_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], says: str
) -> None:
    assert run(["erp", "setup-tryton", "--data-dir", str(tmp_path), *extra]) == 2
    assert says in capsys.readouterr().err


def test_drift_needs_an_erp_with_an_api(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["erp", "drift", "--data-dir", str(tmp_path)]) == 2
    assert "file drop" in capsys.readouterr().err
