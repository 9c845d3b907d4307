"""Fixtures for the ERP tests: the Tryton books template (`erp_tryton_setup`, ~45 s,
built once per machine and reused: tests/tryton_sites.py) served as fresh copies, one
per test; the same on PostgreSQL; and the REST ERP stub.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.connectors.erp.rest_stub import StubErp, StubServer
from tests.flows.helpers import Rig, make_rig
from tests.services import POSTGRES, require
from tests.tryton_sites import (
    TrytonPool,
    ensure_template,
    require_trytond,
    serve,
    serve_copies,
    unavailable,
)

import isthmus.connectors.erp_tryton_setup as setup_module
from isthmus.connectors.erp_tryton import TrytonErp
from isthmus.connectors.erp_tryton_server import TrytonSite
from isthmus.connectors.erp_tryton_setup import (
    build_database,
    copy_database,
    database_exists,
    drop_database,
)
from isthmus.demo.chart import demo_mappings

TEMPLATE = "isthmus_template"
POOL = 15  # fresh databases served by the session's server, one per test that asks


def cost_centers() -> dict[str, str]:
    return {cc: f"Cost center {cc}" for cc in set(demo_mappings().department_cost_center.values())}


@pytest.fixture(scope="session")
def tryton_template() -> TrytonSite:
    """The built template's site (skips, or fails under CI, when trytond cannot run)."""
    require_trytond()
    return ensure_template(
        "tryton",
        TEMPLATE,
        lambda site, name: build_database(site, name, cost_centers=cost_centers()),
        [setup_module],
    )


@pytest.fixture(scope="session")
def tryton_pool(
    tmp_path_factory: pytest.TempPathFactory, tryton_template: TrytonSite
) -> Iterator[TrytonPool]:
    yield from serve_copies(
        tmp_path_factory.mktemp("tryton"), tryton_template, TEMPLATE, [f"t{n}" for n in range(POOL)]
    )


PG_URI = "postgresql://postgres@{}:{}/".format(*POSTGRES)
PG_POOL = 10


def _pg_template(bin_dir: Path) -> tuple[TrytonSite, str]:
    """The PostgreSQL template database, kept between runs like the SQLite one (named by
    trytond version and setup code; built under a temporary name, then renamed, so a
    half-built one is never used)."""
    import trytond  # noqa: PLC0415

    digest = hashlib.sha256(Path(setup_module.__file__).read_bytes()).hexdigest()[:10]
    root = Path(tempfile.gettempdir()) / "isthmus-tryton-pg"
    root.mkdir(parents=True, exist_ok=True)
    site = TrytonSite(root, bin_dir, uri=PG_URI)
    name = f"isthmus_tpl_{trytond.__version__.replace('.', '_')}_{digest}"
    with open(root / "template.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not database_exists(site, name):
            for (old,) in setup_module._pg(
                site, "SELECT datname FROM pg_database WHERE datname LIKE 'isthmus\\_tpl\\_%'"
            ):
                drop_database(site, old)  # built by older setup code, or half built
            build_database(site, f"{name}_wip", cost_centers=cost_centers())
            setup_module._pg(site, f'ALTER DATABASE "{name}_wip" RENAME TO "{name}"')
    return site, name


def _drop_stale_copies(site: TrytonSite) -> None:
    """Copies left by a run that was killed (its pid is gone)."""
    for (name,) in setup_module._pg(
        site, "SELECT datname FROM pg_database WHERE datname LIKE 'isthmus_t\\_%'"
    ):
        pid = name.split("_")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            drop_database(site, name)


@pytest.fixture(scope="session")
def tryton_pg_pool(
    tmp_path_factory: pytest.TempPathFactory, tryton_template: TrytonSite
) -> Iterator[TrytonPool]:
    """A trytond on PostgreSQL serving PG_POOL copies of the PostgreSQL template (database
    names unique to this run, dropped afterwards)."""
    require("PostgreSQL", *POSTGRES)
    try:
        template_site, template = _pg_template(tryton_template.bin_dir)
    except (RuntimeError, OSError) as exc:
        unavailable(f"building the PostgreSQL template failed: {exc}")
    site = TrytonSite(tmp_path_factory.mktemp("tryton-pg"), template_site.bin_dir, uri=PG_URI)
    _drop_stale_copies(site)
    names = [f"isthmus_t_{os.getpid()}_{n}" for n in range(PG_POOL)]
    try:
        for name in names:
            copy_database(site, template, name)
        yield from serve(site, names)
    finally:
        for name in names:
            drop_database(site, name)


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


_tenants = itertools.count(1)


@pytest.fixture(scope="session")
def stub() -> Iterator[StubServer]:
    """The REST ERP stub (rest_stub.py) on a free port, for the session."""
    server = StubServer(StubErp(cost_centers()))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def base(stub: StubServer) -> str:
    """The base URL of a fresh set of books in the stub."""
    return f"{stub.url}/t{next(_tenants)}"
