"""Fixtures for the supply tests against a real Tryton with procurement configured: the
books of `erp_tryton_setup` plus `erp_tryton_procure` (~35 s on SQLite, built once per
machine and reused: tests/tryton_sites.py), served as fresh copies, one per test that asks.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import isthmus.connectors.erp_tryton_procure as procure_module
import isthmus.connectors.erp_tryton_setup as setup_module
from isthmus.connectors.erp_rpc import TrytonRpc
from isthmus.connectors.erp_tryton_procure import build_procurement
from isthmus.connectors.erp_tryton_server import TrytonSite
from tests.connectors.erp.conftest import cost_centers
from tests.tryton_sites import TrytonPool, ensure_template, require_trytond, serve_copies

TEMPLATE = "isthmus_procure"
POOL = 16
ProcurePool = TrytonPool


def procure_template() -> TrytonSite:
    """The procurement template's site (built here the first time)."""
    require_trytond()
    return ensure_template(
        "procure",
        TEMPLATE,
        lambda site, name: build_procurement(site, name, cost_centers=cost_centers()),
        [setup_module, procure_module],
    )


@pytest.fixture(scope="session")
def procure_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcurePool]:
    yield from serve_copies(
        tmp_path_factory.mktemp("procure"),
        procure_template(),
        TEMPLATE,
        [f"p{n}" for n in range(POOL)],
    )


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
