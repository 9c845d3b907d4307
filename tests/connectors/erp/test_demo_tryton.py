"""`isthmus demo --erp tryton`: the demo day, its supply day through Tryton's procurement
(requisitions made there, receipts, one invoice matched and posted in Tryton by the hub, one
held and left unposted), posted to a local Tryton and reconciled to zero variance; without
trytond, a clear message and exit 2. The supply tests' procurement template is put in the
demo's cache, so the test does not build another one."""

from __future__ import annotations

import json
import shutil
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.flows.supply.conftest import TEMPLATE as PROCURE_TEMPLATE
from tests.flows.supply.conftest import procure_template

from isthmus.cli.demo_erp import DEMO_DB, TEMPLATE, template_digest
from isthmus.cli.main import run
from isthmus.connectors.erp_rpc import TrytonRpc
from isthmus.connectors.erp_tryton_server import TrytonServer, TrytonSite
from isthmus.connectors.erp_tryton_setup import checkpoint, copy_database


def test_without_trytond_it_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "trytond", None)  # import trytond -> ImportError
    assert run(["demo", "--erp", "tryton", "--data-dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "trytond" in err and ".venv/test/bin/isthmus demo --erp tryton" in err


@pytest.fixture(scope="session", name="procure_template")
def procure_template_fixture() -> TrytonSite:
    """The supply tests' procurement template (built once per machine; skips, or fails
    under CI, when trytond cannot run)."""
    return procure_template()


def tryton_holds(cache: Path, bin_dir: Path) -> dict[str, Any]:
    """What the demo's database holds once the demo is over: its requisitions and supplier
    invoices (a trytond of our own on a copy, the demo's server being stopped)."""
    site = TrytonSite(cache / "after", bin_dir)
    site.data_dir.mkdir()
    copy_database(site, DEMO_DB, "after", source=cache)
    server = TrytonServer(site, ["after"])
    server.start()
    rpc = TrytonRpc(server.url, "after", "admin", site.password)
    try:
        return {
            "requisitions": rpc.model(
                "purchase.requisition",
                "search_read",
                [],
                0,
                None,
                None,
                ["number", "state", "description"],
            ),
            "invoices": {
                str(r["number"]): r
                for r in rpc.model(
                    "account.invoice",
                    "search_read",
                    [("type", "=", "in")],
                    0,
                    None,
                    None,
                    ["number", "state", "move.state"],
                )
            },
        }
    finally:
        rpc.close()
        server.stop()


@pytest.mark.slow
@pytest.mark.service
@pytest.mark.timeout(600)
def test_demo_runs_the_supply_day_through_tryton_and_reconciles(
    tmp_path: Path,
    procure_template: TrytonSite,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    source = procure_template.data_dir / f"{PROCURE_TEMPLATE}.sqlite"
    checkpoint(source)
    shutil.copyfile(source, cache / f"{TEMPLATE}.sqlite")
    (cache / f"{TEMPLATE}.ready").write_text(f"70 {template_digest()}\n")
    monkeypatch.setenv("ISTHMUS_TRYTON_CACHE", str(cache))
    code = run(
        [
            "demo",
            "--erp",
            "tryton",
            "--messages",
            "300",
            "--json",
            "--data-dir",
            str(tmp_path / "data"),
        ]
    )
    out = json.loads(capsys.readouterr().out)
    erp = out["erp"]
    assert erp["zero_variance"], erp
    assert erp["batches_posted"] == erp["batches"] == out["store"]["batches"] > 0
    assert erp["moves"] > 0 and DEMO_DB in erp["url"]
    assert out["work_items"].get("finance-gl/erp_rejected", 0) == 0
    assert code == 0
    assert (cache / f"{DEMO_DB}.sqlite").exists()

    supply = out["supply"]
    t = supply["tryton"]
    assert t["opening_purchase"]
    reqs = {r["item"]: r for r in t["requisitions"]}
    assert {k: r["quantity"] for k, r in reqs.items()} == {"STENT-01": "6", "SUTURE-3": "25"}
    assert supply["invoices"] == {"posted": 1, "held": 1}
    invoices = {i["item"]: i for i in t["invoices"]}
    matched, held = invoices["STENT-01"], invoices["SUTURE-3"]
    assert (matched["hub"], matched["state"], matched["posted_by_hub"]) == (
        "matched",
        "posted",
        True,
    )
    assert (held["hub"], held["state"], held["posted_by_hub"]) == ("held", "validated", False)
    assert Decimal(matched["amount"]) == 6 * Decimal("450.00")
    assert Decimal(held["amount"]) == 25 * Decimal("6.90")
    assert out["work_items"].get("procurement/invoice_mismatch") == 1
    [unmatched] = supply["unmatched"]  # aging in the hub's supply report
    assert unmatched.startswith(f"invoice/{held['id']}/")
    [surgery] = [m for m in supply["margin"] if m["service_line"] == "Surgery"]
    assert Decimal(surgery["supply"]) == 7 * Decimal("450.00") + 30 * Decimal("6.25")

    held_in_tryton = tryton_holds(cache, procure_template.bin_dir)
    by_number = {r["number"]: r for r in held_in_tryton["requisitions"]}
    for r in reqs.values():  # made by the hub, approved by the buyer
        assert by_number[r["number"]]["description"] == r["req_id"]
        assert by_number[r["number"]]["state"] in ("processing", "done")
    tryton_invoices = held_in_tryton["invoices"]
    assert tryton_invoices[matched["number"]]["state"] == "posted"
    assert tryton_invoices[matched["number"]]["move."]["state"] == "posted"
    assert tryton_invoices[held["number"]]["state"] == "validated"
    assert (tryton_invoices[held["number"]].get("move.") or {}).get("state") != "posted"
