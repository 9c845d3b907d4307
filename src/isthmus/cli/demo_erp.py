"""`isthmus demo --erp tryton`: the demo day posted to a real, local Tryton.

trytond comes with the test extras only (it is a large install, and the hub itself needs
nothing of it). The first run builds a Tryton database with the demo chart and procurement
(`erp_tryton_procure.build_procurement`: the books of `erp setup-tryton` plus purchase,
stock and supplier invoicing, ~30 s on SQLite) into a cache folder
(`$XDG_CACHE_HOME/isthmus/tryton-<version>`, or ISTHMUS_TRYTON_CACHE), keyed by the digest
of both setup modules; later runs copy it (about a second). A trytond is started on a free
local port for the run. The hub owns no AP there (`[supply] ap_owner = "erp"`, Tryton's
warehouse WH is the OR's stock location): the supply day runs through Tryton
(demo/supply_tryton.py), the hub posts the day's batches to it over JSON-RPC instead of
dropping files, `recon erp` compares the ledger with what Tryton holds, and the server is
stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from isthmus.app import Hub, open_erp
from isthmus.config import ErpSettings, Settings
from isthmus.errors import ConfigurationError

DEMO_DB = "isthmus_demo"
TEMPLATE = "isthmus_demo_template"
HOW_TO_GET_IT = (
    "the Tryton demo needs trytond (with trytond-account, "
    "trytond-analytic-account and the purchase modules): the `tryton` extra.\n"
    "  install it:     pip install -c requirements/test.lock 'isthmus[tryton]'\n"
    "  or, from a checkout, build the test environment once (python3 dev.py lint)\n"
    "  and run:        .venv/test/bin/isthmus demo --erp tryton"
)

Report = Callable[[Settings, argparse.Namespace, Callable[[dict[str, Any]], bool]], int]


def cache_dir(version: str) -> Path:
    """The Tryton site directory of the demo for this trytond version: ISTHMUS_TRYTON_CACHE,
    else $XDG_CACHE_HOME (or ~/.cache)/isthmus/tryton-<version>."""
    root = os.environ.get("ISTHMUS_TRYTON_CACHE")
    if root:
        return Path(root)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "isthmus" / f"tryton-{version}"


def template_digest() -> str:
    """The cached database is as good as the code that built it: both setup modules."""
    import isthmus.connectors.erp_tryton_procure as procure  # noqa: PLC0415
    import isthmus.connectors.erp_tryton_setup as setup  # noqa: PLC0415

    return hashlib.sha256(
        Path(setup.__file__).read_bytes() + Path(procure.__file__).read_bytes()
    ).hexdigest()[:10]


def tryton_demo(settings: Settings, args: argparse.Namespace, report: Report) -> int:
    """The demo day against a local Tryton: build (once, cached) the demo database, copy it,
    start trytond and report the day through `report`; exit 2 without the `tryton` extra."""
    try:
        import trytond  # noqa: PLC0415 - test extras only
    except ImportError as exc:
        raise ConfigurationError(HOW_TO_GET_IT) from exc
    from isthmus.connectors.erp_tryton_procure import build_procurement  # noqa: PLC0415
    from isthmus.connectors.erp_tryton_server import (  # noqa: PLC0415
        TrytonServer,
        TrytonSite,
        default_bin_dir,
    )
    from isthmus.connectors.erp_tryton_setup import copy_database  # noqa: PLC0415
    from isthmus.demo import supply_day  # noqa: PLC0415
    from isthmus.demo.supply_tryton import policy  # noqa: PLC0415

    site = TrytonSite(cache_dir(trytond.__version__), default_bin_dir())
    digest = template_digest()
    if not (site.bin_dir / "trytond").exists():
        raise ConfigurationError(HOW_TO_GET_IT)

    def say(message: str) -> None:
        if not args.json:
            print(message, flush=True)

    site.data_dir.mkdir(parents=True, exist_ok=True)
    marker = site.data_dir / f"{TEMPLATE}.ready"
    t0 = time.monotonic()
    with open(site.data_dir / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        built, _, made_by = (marker.read_text().strip() if marker.exists() else "").partition(" ")
        if made_by == digest:
            say(
                f"Tryton {trytond.__version__}: reusing the demo database in "
                f"{site.data_dir} (built in {built} s)"
            )
        else:
            say(
                f"Tryton {trytond.__version__}: building the demo database in "
                f"{site.data_dir} (once)"
            )
            for stale in site.data_dir.glob(f"{TEMPLATE}.sqlite*"):
                stale.unlink()
            centers = {
                cc: f"Cost center {cc} ({dept})"
                for dept, cc in sorted(
                    settings.mappings.department_cost_center.items(), reverse=True
                )
            }
            seconds = build_procurement(
                site, TEMPLATE, cost_centers=centers, progress=lambda m: say(f"  {m}")
            )
            marker.write_text(f"{seconds:.0f} {digest}\n")
    copy_database(site, TEMPLATE, DEMO_DB)
    install_s = time.monotonic() - t0
    server = TrytonServer(site, [DEMO_DB])
    server.start()
    say(f"Tryton ready after {install_s:.1f} s: {server.url}/{DEMO_DB}/ (log {server.log})")
    erp = ErpSettings(
        kind="tryton",
        url=server.url,
        database=DEMO_DB,
        user="admin",
        password_file=site.data_dir / "admin.pass",
        journal="HUB",
        master_data_every_s=0,
    )
    site.env()  # writes admin.pass
    supply = policy(settings.supply or supply_day.POLICY, supply_day.OR_LOCATION)
    settings = dataclasses.replace(settings, erp=erp, supply=supply)

    def recon(out: dict[str, Any]) -> bool:
        from isthmus.recon.erp import reconcile  # noqa: PLC0415

        hub, port = Hub.open(settings), open_erp(settings)
        try:
            r = reconcile(hub.store, port)
        finally:
            port.close()
            hub.close()
        out["erp"] = {
            "kind": "tryton",
            "url": f"{server.url}/{DEMO_DB}/",
            "install_seconds": round(install_s, 1),
            "batches_posted": sum(c["state"] == "posted" for c in r["batches"]),
            "batches": len(r["batches"]),
            "moves": sum(c["moves_in_erp"] for c in r["batches"]),
            "keys": len(r["rows"]),
            "absolute_variance": r["absolute_variance"],
            "zero_variance": r["zero_variance"],
        }
        return bool(r["zero_variance"])

    try:
        return report(settings, args, recon)
    finally:
        server.stop()
        say(f"Tryton stopped; the demo database stays in {site.data_dir / DEMO_DB}.sqlite")
