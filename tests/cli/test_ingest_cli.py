"""`isthmus ingest` through Hub.open (embedded, or PostgreSQL + NATS when the suite runs
in scale-out mode): HL7 then 835, acknowledgements written, re-ingest idempotent,
malformed X12 answered with a 999/TA1 that says where, and no PHI in what leaves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from isthmus.cli.main import run
from tests.chart import demo_config
from tests.flows.helpers import bar, charge
from tests.flows.remit.helpers import PATIENT_FAMILY, PATIENT_GIVEN, Clp, Remit

MRN = "500018"


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> Any:
    capsys.readouterr()
    got = run(argv)
    out = capsys.readouterr().out
    assert got == code, out
    return json.loads(out)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    hl7 = tmp_path / "day.hl7"
    hl7.write_bytes(b"FHS|^~\\&|EHR\r" + bar("B1", MRN) + charge("D1", MRN, amount="800.00"))
    remit = tmp_path / "remit.835"
    remit.write_bytes(
        Remit(
            [
                Clp(
                    pcn="A" + MRN,
                    paid="450.00",
                    responsibility="300.00",
                    cas=[("CO", "45", "50.00")],
                    line_cas=[("PR", "1", "300.00")],
                )
            ],
            icn=42,
        ).build()
    )
    return {"hl7": hl7, "remit": remit}


def test_ingest_hl7_then_835_posts_and_acknowledges(
    tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    d = ["--data-dir", str(tmp_path / "hub"), "--config", str(demo_config(tmp_path)), "--json"]
    first = _json(capsys, ["ingest", str(files["hl7"]), "--apply", *d])
    assert [r["ack"] for r in first["items"]] == ["AA", "AA"]
    out = _json(capsys, ["ingest", str(files["remit"]), "--apply", *d])
    [item] = out["items"]
    assert (item["status"], item["ack"], item["claims"], item["paid"]) == (
        "accepted",
        "999-A",
        1,
        "450.00",
    )
    ack = Path(item["ack_file"])
    assert ack == tmp_path / "hub" / "outbound" / "x12" / "000000042.999"
    assert b"IK5*A" in ack.read_bytes()
    tb = _json(capsys, ["ledger", "trial-balance", *d])
    assert tb["balanced"] is True
    rows = {r["account"]: r["balance"] for r in tb["rows"]}
    assert rows["1010"] == "450.00" and rows["1210"] == "300.00" and rows["4900"] == "50.00"
    assert rows["1200"] == "0.00"
    again = _json(capsys, ["ingest", str(files["remit"]), "--apply", *d])
    assert again["items"][0]["duplicate"] is True and again["applied"] == 0
    assert _json(capsys, ["ledger", "trial-balance", *d]) == tb
    # nothing that leaves carries the patient's name (NM1*QC)
    capsys.readouterr()
    assert run(["ledger", "export", *d]) == 0
    journal = json.dumps(_json(capsys, ["ledger", "journal", *d]))
    shown = json.dumps(_json(capsys, ["messages", "show", "x12/PAYERX:000000042", *d]))
    exported = b"".join(p.read_bytes() for p in (tmp_path / "hub" / "exports" / "erp").iterdir())
    assert exported
    for name in (PATIENT_FAMILY, PATIENT_GIVEN):
        assert name not in journal and name not in shown
        assert name.encode() not in exported


def test_truncated_isa_gets_a_ta1_and_is_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.835"
    bad.write_bytes(b"ISA*00*          *00*   ~GS*HP~")
    d = ["--data-dir", str(tmp_path / "hub"), "--config", str(demo_config(tmp_path)), "--json"]
    out = _json(capsys, ["ingest", str(bad), *d], code=1)
    [item] = out["items"]
    assert item["status"] == "rejected" and item["ack"] == "TA1-R"
    assert "segment 0 ISA" in item["error"]
    ack = Path(item["ack_file"])
    assert ack.suffix == ".ta1" and b"TA1*" in ack.read_bytes()
    rows = _json(capsys, ["messages", "list", "--status", "rejected", *d])["messages"]
    assert [r["type"] for r in rows] == ["X12"]


def test_envelope_error_gets_a_ta1_naming_the_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = Remit([Clp(pcn="A1", paid="10.00")], icn=7).build()
    bad = tmp_path / "iea.835"
    bad.write_bytes(raw.replace(b"IEA*1*000000007", b"IEA*1*000000008"))
    out = _json(capsys, ["ingest", str(bad), "--data-dir", str(tmp_path / "hub"), "--json"], code=1)
    [item] = out["items"]
    assert item["ack_file"].endswith("000000007.ta1")
    assert b"TA1*000000007*" in Path(item["ack_file"]).read_bytes()
    assert "IEA" in item["error"]


def test_bad_claim_amount_gets_a_999_with_its_location_and_posts_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = Remit([Clp(pcn="A1", paid="10.00", charge="10.00")], icn=8).build()
    bad = tmp_path / "amount.835"
    bad.write_bytes(raw.replace(b"CLP*A1*1*10.00*", b"CLP*A1*1*1O.00*"))
    d = ["--data-dir", str(tmp_path / "hub"), "--config", str(demo_config(tmp_path)), "--json"]
    out = _json(capsys, ["ingest", str(bad), "--apply", *d], code=1)
    [item] = out["items"]
    assert item["status"] == "rejected" and item["ack"] == "999-E"
    assert item["held_transaction_sets"] == ["0001"] and item["events"] == 0
    body = Path(item["ack_file"]).read_bytes()
    assert b"IK3*CLP*9*2100*8" in body, body and b"IK4*3*" in body
    assert "CLP03" in item["error"]
    assert _json(capsys, ["ledger", "journal", *d]) == []


def test_unknown_file_is_refused_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "note.txt"
    f.write_text("hello")
    assert run(["ingest", str(f), "--data-dir", str(tmp_path / "hub")]) == 1
    assert run(["ingest", str(tmp_path / "missing.835"), "--data-dir", str(tmp_path / "hub")]) == 1
    err = capsys.readouterr().err
    assert "missing.835" in err and "Traceback" not in err
