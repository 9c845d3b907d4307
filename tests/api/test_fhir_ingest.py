"""FHIR Bundles from files: `isthmus ingest FILE...` and the drop folder take them through
the same inbox as `POST /fhir` (one transaction per file), a bad one is refused with its
OperationOutcome issues, kept, and the file stays where it was."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from isthmus.app import Hub
from isthmus.cli.main import run
from isthmus.config import load_settings
from isthmus.connectors.folder import DropFolder
from isthmus.flows.file_intake import FileIntake
from tests.api.test_fhir_api import CORPUS, SYNTHEA
from tests.chart import DEMO_CHART
from tests.synthea_chart import mapping_tables

EXAMPLES = CORPUS / "examples"


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> Any:
    capsys.readouterr()
    got = run(argv)
    out = capsys.readouterr().out
    assert got == code, out
    return json.loads(out)


def _config(tmp_path: Path, orgs: list[str]) -> Path:
    config = tmp_path / "site.toml"
    config.write_text(
        DEMO_CHART + "[mappings.facility_company]\n" + "".join(f'"{o}" = "C100"\n' for o in orgs)
    )
    return config


# The payer examples name Patient/1, which the R4 examples do not define: a site gets it
# from its EHR feed. Without it their cash waits for it (`flows.references`).
PATIENT_1 = {
    "resourceType": "Patient",
    "id": "1",
    "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-1"}],
}


# What the EHR charged Patient/1 before the payer paid: a payment is applied only to an
# account with charges (issue 15), so the payer examples' cash needs it.
CHARGE_1 = {
    "resourceType": "ChargeItem",
    "id": "ci-1",
    "status": "billable",
    "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "80053"}]},
    "subject": {"reference": "Patient/1"},
    "occurrenceDateTime": "2014-08-01",
    "priceOverride": {"value": 500.00, "currency": "USD"},
    "performingOrganization": {"reference": "Organization/1"},
    "costCenter": {"reference": "Organization/LAB"},
}


def _charged(tmp_path: Path) -> Path:
    f = tmp_path / "charges.json"
    f.write_text(
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": PATIENT_1}, {"resource": CHARGE_1}],
            }
        )
    )
    return f


def _collection(*names: str) -> bytes:
    return json.dumps(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": json.loads((EXAMPLES / n).read_bytes())} for n in names]
            + [{"resource": PATIENT_1}],
        }
    ).encode()


def test_ingest_synthea_bundles_posts_the_eob_cash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = SYNTHEA[:3]
    config = tmp_path / "site.toml"  # charges from the Claims: Synthea sends no ChargeItem
    config.write_text(DEMO_CHART + mapping_tables(paths))
    d = ["--data-dir", str(tmp_path / "hub"), "--config", str(config), "--json"]
    out = _json(capsys, ["ingest", *map(str, paths), "--apply", *d])
    assert [(r["format"], r["status"], r["ack"]) for r in out["items"]] == [
        ("fhir", "accepted", "200")
    ] * 3
    assert out["items"][0]["created"] == out["items"][0]["entries"] > 100
    expected = sum(
        (
            Decimal(str(e["resource"]["payment"]["amount"]["value"])).quantize(
                Decimal("0.01"), ROUND_HALF_UP
            )
            for p in paths
            for e in json.loads(p.read_bytes())["entry"]
            if e["resource"]["resourceType"] == "ExplanationOfBenefit"
        ),
        Decimal(0),
    )
    tb = _json(capsys, ["ledger", "trial-balance", *d])
    assert tb["balanced"] is True
    assert {r["account"]: Decimal(r["balance"]) for r in tb["rows"]}["1010"] == expected
    again = _json(capsys, ["ingest", str(paths[0]), "--apply", *d])
    assert again["items"][0]["duplicate"] is True and again["applied"] == 0
    assert _json(capsys, ["ledger", "trial-balance", *d]) == tb
    assert _json(capsys, ["workitems", "list", "--status", "open", *d]) == []


def test_ingest_a_collection_of_payer_resources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "payer.json"
    f.write_bytes(_collection("ClaimResponse-R3500.json", "PaymentReconciliation-ER2500.json"))
    d = ["--data-dir", str(tmp_path / "hub"), "--config", str(_config(tmp_path, ["1"])), "--json"]
    _json(capsys, ["ingest", str(_charged(tmp_path)), "--apply", *d])
    [item] = _json(capsys, ["ingest", str(f), "--apply", *d])["items"]
    # Patient/1 came with its charges: 200, the payer resources 201
    assert (item["status"], item["entries"], item["created"]) == ("accepted", 3, 2)
    rows = {
        r["account"]: r["balance"] for r in _json(capsys, ["ledger", "trial-balance", *d])["rows"]
    }
    assert rows["1010"] == "100.47" and rows["1210"] == "10.00"


def test_a_bad_bundle_is_refused_with_its_issues_and_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    charge = json.loads((EXAMPLES / "ChargeItem-example.json").read_bytes())
    del charge["subject"]
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [{"resource": charge, "request": {"method": "POST", "url": "ChargeItem"}}],
            }
        )
    )
    search = tmp_path / "search.json"
    search.write_text('{"resourceType": "Bundle", "type": "searchset", "entry": []}')
    d = ["--data-dir", str(tmp_path / "hub"), "--json"]
    out = _json(capsys, ["ingest", str(bad), str(search), *d], code=1)
    first, second = out["items"]
    assert (first["status"], first["ack"]) == ("rejected", "422")
    assert "ChargeItem.subject" in first["error"] and "Bundle.entry[0]" in first["error"]
    assert (second["status"], second["ack"]) == ("rejected", "400")
    assert "Bundle.type" in second["error"] and "searchset" in second["error"]
    assert out["refused"] == 2 and bad.exists() and search.exists()
    rejected = _json(capsys, ["messages", "list", "--status", "rejected", *d])
    assert sum(m["control_id"].startswith("Bundle/") for m in rejected["messages"]) == 2
    capsys.readouterr()
    assert run(["ingest", str(bad), "--data-dir", str(tmp_path / "hub")]) == 1
    text = capsys.readouterr().out
    assert "bad.json: fhir Bundle rejected (422)" in text
    assert "error required at Bundle.entry[0].resource.subject" in text


def test_drop_folder_takes_a_bundle_and_fails_a_bad_one(tmp_path: Path) -> None:
    hub = Hub.open(load_settings(_config(tmp_path, ["1"]), data_dir=tmp_path / "hub"))
    try:
        intake = FileIntake(hub.store, hub.bus, hub.settings)
        folder = DropFolder(tmp_path / "drop", intake, hub.settings, quiet_s=0.0)
        intake.take(_charged(tmp_path), "charges.json", 0.0)
        intake.relay()
        hub.worker().drain()
        (folder.inbound / "payer.json").write_bytes(_collection("ClaimResponse-R3500.json"))
        (folder.inbound / "broken.json").write_bytes(b'{"resourceType": "Bundle", "type"')
        folder.run_once(0.0)  # sizes noted; taken on the next pass once settled
        reports = folder.run_once(1.0)
        assert len(reports) == 2
        assert (folder.done / "payer.json").exists()
        assert (folder.failed / "broken.json").exists()
        assert "structure" in (folder.failed / "broken.json.error.txt").read_text()
        hub.worker().drain()
        cash = sum(
            (ln.debit - ln.credit for ln in hub.store.journal_lines() if ln.account == "1010"),
            Decimal(0),
        )
        assert cash == Decimal("100.47")
    finally:
        hub.close()
