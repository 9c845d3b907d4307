"""Fixtures for the ERP tests: one Tryton template database per machine and trytond
version (built once, ~45 s, reused by later runs: a marker file under a file lock), and one
trytond server per test session serving fresh copies of it, one copy per test.

When trytond cannot run, the real-Tryton tests skip with the reason; under CI=true they
fail instead (tests/services.py does the same for PostgreSQL and NATS).
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import isthmus.connectors.erp_tryton_setup as setup_module
from isthmus.config import default_mappings
from isthmus.connectors.erp_rpc import TrytonRpc
from isthmus.connectors.erp_tryton import TrytonErp
from isthmus.connectors.erp_tryton_setup import (
    TrytonServer,
    TrytonSite,
    build_database,
    copy_database,
    default_bin_dir,
)
from tests.flows.helpers import Rig, make_rig

TEMPLATE = "isthmus_template"
POOL = 15  # fresh databases served by the session's server, one per test that asks


def cost_centers() -> dict[str, str]:
    return {cc: f"Cost center {cc}" for cc in set(default_mappings()
                                                  .department_cost_center.values())}


def _unavailable(why: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Tryton unavailable: {why}; CI=true requires it")
    pytest.skip(f"Tryton unavailable: {why}")


def _template_site() -> TrytonSite:
    """The template's folder, keyed by trytond version and the setup code."""
    import trytond  # noqa: PLC0415 - only where Tryton runs

    digest = hashlib.sha256(Path(setup_module.__file__).read_bytes()).hexdigest()[:10]
    root = Path(tempfile.gettempdir()) / f"isthmus-tryton-{trytond.__version__}-{digest}"
    root.mkdir(parents=True, exist_ok=True)
    return TrytonSite(root, default_bin_dir())


def ensure_template() -> TrytonSite:
    site = _template_site()
    marker = site.data_dir / "template.ready"
    with open(site.data_dir / "template.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder; the others wait and reuse it
        if not marker.exists():
            (site.data_dir / f"{TEMPLATE}.sqlite").unlink(missing_ok=True)
            t0 = time.monotonic()
            build_database(site, TEMPLATE, cost_centers=cost_centers())
            marker.write_text(f"{time.monotonic() - t0:.1f}\n")
    return site


class TrytonPool:
    """A running trytond with POOL fresh copies of the template; `take` hands one out."""

    def __init__(self, site: TrytonSite, server: TrytonServer, names: list[str]) -> None:
        self.site, self.server, self._names = site, server, iter(names)

    def take(self) -> str:
        name = next(self._names, None)
        if name is None:
            pytest.fail(f"more than {POOL} Tryton databases asked for in one session")
        return name

    def rpc(self, database: str, **kw: object) -> TrytonRpc:
        return TrytonRpc(self.server.url, database, "admin", self.site.password,
                         **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def tryton_template() -> TrytonSite:
    """The built template's site (skips, or fails under CI, when trytond cannot run)."""
    try:
        import trytond  # noqa: F401, PLC0415
    except ImportError as exc:
        _unavailable(f"trytond is not installed ({exc})")
    if not (default_bin_dir() / "trytond").exists():
        _unavailable(f"no trytond binary in {default_bin_dir()}")
    try:
        return ensure_template()
    except (RuntimeError, OSError) as exc:
        _unavailable(f"building the template failed: {exc}")
        raise


@pytest.fixture(scope="session")
def tryton_pool(tmp_path_factory: pytest.TempPathFactory,
                tryton_template: TrytonSite) -> Iterator[TrytonPool]:
    template = tryton_template
    site = TrytonSite(tmp_path_factory.mktemp("tryton"), template.bin_dir)
    names = [f"t{n}" for n in range(POOL)]
    for name in names:
        copy_database(site, TEMPLATE, name, source=template.data_dir)
    server = TrytonServer(site, names)
    try:
        server.start()
    except RuntimeError as exc:
        _unavailable(str(exc))
    try:
        yield TrytonPool(site, server, names)
    finally:
        server.stop()


@pytest.fixture
def tryton_db(tryton_pool: TrytonPool) -> str:
    return tryton_pool.take()


@pytest.fixture
def tryton(tryton_pool: TrytonPool, tryton_db: str) -> Iterator[TrytonErp]:
    erp = TrytonErp(tryton_pool.rpc(tryton_db), journal="HUB")
    try:
        yield erp
    finally:
        erp.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = make_rig(tmp_path)
    try:
        yield r
    finally:
        r.store.close()


_seq = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{os.getpid()}x{next(_seq)}"
