"""The analytics feed beside the hub: `serve`'s scheduled export, and the hub without the
`analytics` extra (it installs, migrates, reports and serves the console; the export
command names the extra and exits 2; the schedule is simply not started)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from isthmus.app import Hub
from isthmus.config import load_settings
from isthmus.runtime import loops
from tests.analytics.helpers import duckdb, query
from tests.store.contract import entry, post
from tests.support import await_until

REPO = Path(__file__).resolve().parents[2]
BLOCK = "import sys; sys.modules.update(duckdb=None, pyarrow=None); "


def test_the_scheduled_export_follows_the_journal(tmp_path: Path) -> None:
    hub = Hub.open(load_settings(None, data_dir=tmp_path))
    db = tmp_path / "analytics" / "warehouse.duckdb"

    def exported() -> int:
        if not db.is_file():
            return 0
        try:
            return int(query(db, "SELECT count(*) FROM fact_journal_line")[0][0])
        except duckdb.Error:  # the export holds the file: ask again
            return 0

    async def scenario() -> None:
        post(hub.store, entry("E1", corr="c1"), entry("E2", corr="c2"))
        task = asyncio.create_task(loops.analytics_loop(hub, "worker-1", every_s=0.05))
        try:
            await await_until(
                lambda: exported() == 4, timeout=60, what="the first scheduled export"
            )
            post(hub.store, entry("E3", corr="c3"))
            await await_until(lambda: exported() == 6, timeout=60, what="the next scheduled export")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    try:
        asyncio.run(scenario())
    finally:
        hub.close()
    keys = query(db, "SELECT entry_key, line_no FROM fact_journal_line")
    assert len(keys) == len(set(keys)) == 6


def test_the_hub_runs_without_the_extra(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ISTHMUS_STORE", "ISTHMUS_BUS", "ISTHMUS_CONFIG")
    }
    data = str(tmp_path)
    script = (
        BLOCK + "import importlib.util; from isthmus.cli.main import run; "
        "from isthmus.console.app import build_console; "
        "assert importlib.util.find_spec('duckdb') is None; "
        f"assert run(['migrate', '--data-dir', {data!r}]) == 0; "
        f"assert run(['status', '--data-dir', {data!r}]) == 0; "
        f"sys.exit(run(['analytics', 'export', '--data-dir', {data!r}]))"
    )
    res = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    assert res.returncode == 2, res.stderr
    assert "pip install 'isthmus[analytics]'" in res.stderr
    assert "Traceback" not in res.stderr
