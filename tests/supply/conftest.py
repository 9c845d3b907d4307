"""Fixtures for the supply tests against a real Tryton with procurement configured.

One template database per machine, trytond version and setup code (the books of
`erp_tryton_setup` plus `erp_tryton_procure`: ~35 s on SQLite, built once under a file
lock, then reused by later runs), and one trytond per test session serving fresh copies of
it, one per test that asks. Skips with the reason when trytond cannot run; under CI=true
it fails instead (as tests/erp/conftest.py).
"""

from __future__ import annotations

import fcntl
import hashlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import isthmus.connectors.erp_tryton_procure as procure_module
import isthmus.connectors.erp_tryton_setup as setup_module
from isthmus.connectors.erp_rpc import TrytonRpc
from isthmus.connectors.erp_tryton_procure import build_procurement
from isthmus.connectors.erp_tryton_setup import (
    TrytonServer,
    TrytonSite,
    copy_database,
    default_bin_dir,
)
from tests.erp.conftest import _unavailable, cost_centers

TEMPLATE = "isthmus_procure"
POOL = 16


def ensure_template() -> TrytonSite:
    import trytond  # noqa: PLC0415 - only where Tryton runs

    digest = hashlib.sha256(Path(setup_module.__file__).read_bytes()
                            + Path(procure_module.__file__).read_bytes()).hexdigest()[:10]
    site = TrytonSite(Path(tempfile.gettempdir())
                      / f"isthmus-procure-{trytond.__version__}-{digest}", default_bin_dir())
    site.data_dir.mkdir(parents=True, exist_ok=True)
    marker = site.data_dir / "template.ready"
    with open(site.data_dir / "template.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder; the others wait and reuse it
        if not marker.exists():
            (site.data_dir / f"{TEMPLATE}.sqlite").unlink(missing_ok=True)
            t0 = time.monotonic()
            build_procurement(site, TEMPLATE, cost_centers=cost_centers())
            marker.write_text(f"{time.monotonic() - t0:.1f}\n")
    return site


class ProcurePool:
    """A running trytond with POOL fresh copies of the procurement template."""

    def __init__(self, site: TrytonSite, server: TrytonServer, names: list[str]) -> None:
        self.site, self.server, self._names = site, server, iter(names)

    def take(self) -> str:
        name = next(self._names, None)
        if name is None:
            pytest.fail(f"more than {POOL} procurement databases asked for in one session")
        return name

    def rpc(self, database: str) -> TrytonRpc:
        return TrytonRpc(self.server.url, database, "admin", self.site.password)


@pytest.fixture(scope="session")
def procure_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcurePool]:
    try:
        import trytond  # noqa: F401, PLC0415
    except ImportError as exc:
        _unavailable(f"trytond is not installed ({exc})")
    if not (default_bin_dir() / "trytond").exists():
        _unavailable(f"no trytond binary in {default_bin_dir()}")
    try:
        template = ensure_template()
    except (RuntimeError, OSError) as exc:
        _unavailable(f"building the procurement template failed: {exc}")
        raise
    site = TrytonSite(tmp_path_factory.mktemp("procure"), template.bin_dir)
    names = [f"p{n}" for n in range(POOL)]
    for name in names:
        copy_database(site, TEMPLATE, name, source=template.data_dir)
    server = TrytonServer(site, names)
    try:
        server.start()
    except RuntimeError as exc:
        _unavailable(str(exc))
    try:
        yield ProcurePool(site, server, names)
    finally:
        server.stop()


@pytest.fixture
def procure_db(procure_pool: ProcurePool) -> str:
    return procure_pool.take()


@pytest.fixture
def procure_rpc(procure_pool: ProcurePool, procure_db: str) -> Iterator[TrytonRpc]:
    rpc = procure_pool.rpc(procure_db)
    try:
        yield rpc
    finally:
        rpc.close()
