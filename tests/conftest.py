"""Session-wide hygiene for the scale-out pass (issue 22).

A hub's NATS streams are named after its data directory (`isthmus.app.site_name`), and
every data directory of a test lives under the session's temporary directory. When the
session ends, the streams of those directories are deleted: the server does not fill up
with a run's hundreds of streams, and nothing needs to drop every Isthmus stream before a
run, which would pull them from under a run going on beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest


def site_streams(root: Path) -> list[str]:
    """The stream name of a hub over any directory under `root` (whether one ran or not)."""
    from isthmus.app import site_name  # noqa: PLC0415 - scale-out pass only
    from isthmus.config import Settings  # noqa: PLC0415

    dirs = [root] + [Path(d) / n for d, names, _ in os.walk(root) for n in names]
    return [site_name(Settings(data_dir=d)).upper() for d in dirs]


@pytest.fixture(scope="session", autouse=True)
def _drop_session_streams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    if os.environ.get("ISTHMUS_BUS") != "nats":
        return
    from tests.e2e.scaleout import drop_streams  # noqa: PLC0415 - scale-out pass only

    names = site_streams(tmp_path_factory.getbasetemp())
    # hygiene, not a test: a broker gone by now must not turn the last test red (streams
    # left behind are dropped by the next run's scripts/scaleout_env.py once stale)
    with contextlib.suppress(Exception):
        asyncio.run(drop_streams(*names))
