"""`isthmus demo --erp tryton`: the demo day posted to a local Tryton and reconciled to zero
variance; without trytond, a clear message and exit 2. The session's template database is
put in the demo's cache, so the test does not build a second one."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest

import isthmus.connectors.erp_tryton_setup as tryton_setup
from isthmus.cli.demo_erp import DEMO_DB, TEMPLATE
from isthmus.cli.main import run
from isthmus.connectors.erp_tryton_setup import TrytonSite, checkpoint
from tests.erp.conftest import TEMPLATE as TEST_TEMPLATE


def test_without_trytond_it_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "trytond", None)  # import trytond -> ImportError
    assert run(["demo", "--erp", "tryton", "--data-dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "trytond" in err and ".venv/test/bin/isthmus demo --erp tryton" in err


@pytest.mark.slow
@pytest.mark.service
@pytest.mark.timeout(600)
def test_demo_posts_the_day_to_tryton_and_reconciles(
        tmp_path: Path, tryton_template: TrytonSite, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    source = tryton_template.data_dir / f"{TEST_TEMPLATE}.sqlite"
    checkpoint(source)
    shutil.copyfile(source, cache / f"{TEMPLATE}.sqlite")
    digest = hashlib.sha256(Path(tryton_setup.__file__).read_bytes()).hexdigest()[:10]
    (cache / f"{TEMPLATE}.ready").write_text(f"46 {digest}\n")
    monkeypatch.setenv("ISTHMUS_TRYTON_CACHE", str(cache))
    code = run(["demo", "--erp", "tryton", "--messages", "300", "--json",
                "--data-dir", str(tmp_path / "data")])
    out = json.loads(capsys.readouterr().out)
    erp = out["erp"]
    assert erp["zero_variance"], erp
    assert erp["batches_posted"] == erp["batches"] == out["store"]["batches"] > 0
    assert erp["moves"] > 0 and DEMO_DB in erp["url"]
    assert out["work_items"].get("finance-gl/erp_rejected", 0) == 0
    assert code == 0
    assert (cache / f"{DEMO_DB}.sqlite").exists()
