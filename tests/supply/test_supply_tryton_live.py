"""The procurement connector's reads against a live trytond with the procurement modules.

A bare database with purchase_requisition, purchase_request, purchase, stock,
account_invoice and account_invoice_stock activated (built once per machine and trytond
version, ~2 min on SQLite, then reused), no books configured: this checks that every
domain and dotted field name `connectors/erp_tryton_supply.py` sends is one Tryton
accepts, and that the requisition line has the fields the connector writes. The full
requisition -> purchase order -> receipt -> invoice run is not here yet (see README).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from isthmus.connectors.erp_rpc import TrytonRpc
from isthmus.connectors.erp_tryton_setup import TrytonServer, TrytonSite, default_bin_dir
from isthmus.connectors.erp_tryton_supply import TrytonSupply

MODULES = ("purchase_requisition", "purchase_request", "purchase", "stock", "account_invoice",
           "account_invoice_stock")
NAME = "isthmus_supply"


def _unavailable(why: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Tryton unavailable: {why}; CI=true requires it")
    pytest.skip(f"Tryton unavailable: {why}")


@pytest.fixture(scope="module")
def rpc() -> Iterator[TrytonRpc]:
    try:
        import trytond  # noqa: PLC0415 - only where Tryton runs
    except ImportError as exc:
        _unavailable(str(exc))
    site = TrytonSite(Path(tempfile.gettempdir()) / f"isthmus-supply-{trytond.__version__}",
                      default_bin_dir())
    site.data_dir.mkdir(parents=True, exist_ok=True)
    marker = site.data_dir / "ready"
    with open(site.data_dir / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            db = site.data_dir / f"{NAME}.sqlite"
            db.unlink(missing_ok=True)
            db.touch()
            try:
                subprocess.run(
                    [str(site.bin_dir / "trytond-admin"), "-c", str(site.config(0)), "-d",
                     NAME, "--all", "-u", *MODULES, "--activate-dependencies", "--email",
                     "admin@localhost"], env=site.env(), check=True, capture_output=True,
                    timeout=900)
            except (OSError, subprocess.SubprocessError) as exc:
                _unavailable(f"trytond-admin: {exc}")
            marker.write_text("ok\n")
    server = TrytonServer(site, [NAME])
    try:
        server.start()
    except RuntimeError as exc:
        _unavailable(str(exc))
    client = TrytonRpc(server.url, NAME, "admin", site.password)
    try:
        yield client
    finally:
        client.close()
        server.stop()


def test_reads_are_accepted_by_tryton(rpc: TrytonRpc) -> None:
    t = TrytonSupply(rpc, company="C100")
    assert t.order_lines() == []
    assert t.receipts({}) == [] and t.invoice_lines({}) == []
    assert t.product_ids(["STENT-01"]) == {}


def test_requisition_models_have_the_fields_written(rpc: TrytonRpc) -> None:
    def names(model: str) -> set[str]:
        rows = rpc.model("ir.model.field", "search_read", [("model.model", "=", model)],
                         0, None, None, ["name"])
        return {str(r["name"]) for r in rows}

    assert {"description", "employee", "warehouse", "supply_date", "currency", "lines",
            "state"} <= names("purchase.requisition")
    assert {"product", "quantity", "unit", "unit_price", "supplier",
            "purchase_requests"} <= names("purchase.requisition.line")
