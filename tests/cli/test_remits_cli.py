"""`isthmus remits list|release`: a held 835 is listed, released only by a finance-approver
(or admin) with a reason, the release is in the audit trail with who and why, and the money
then posts; exit codes as README's Commands section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from isthmus.cli.main import run
from tests.chart import demo_config
from tests.flows.helpers import bar, charge
from tests.flows.remit.helpers import Clp, Remit

MRN = "500018"


def _call(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> Any:
    capsys.readouterr()
    got = run(argv)
    out = capsys.readouterr()
    assert got == code, (out.out, out.err)
    return json.loads(out.out) if out.out.strip().startswith(("{", "[")) else out.err


def test_release_a_held_835_by_a_finance_approver_with_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = ["--data-dir", str(tmp_path / "hub"), "--config", str(demo_config(tmp_path)), "--json"]
    hl7 = tmp_path / "day.hl7"
    hl7.write_bytes(b"FHS|^~\\&|EHR\r" + bar("B1", MRN) + charge("D1", MRN, amount="800.00"))
    _call(capsys, ["ingest", str(hl7), "--apply", *d])
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
            bpr="500.00",
        ).build()
    )
    out = _call(capsys, ["ingest", str(remit), "--apply", *d], code=1)
    [item] = out["items"]
    assert (item["status"], item["ack"], item["unbalanced_transaction_sets"]) == (
        "held",
        "999-E",
        ["0001"],
    )
    before = json.dumps(_call(capsys, ["ledger", "journal", "--limit", "500", *d]))
    assert '"1010"' not in before and '"1200"' in before  # the charge, not the payment
    [held] = _call(capsys, ["remits", "list", *d])
    assert held["control_id"] == "PAYERX:000000042"
    assert "BPR02 500.00 != sum of CLP04 - sum of PLB; out by 50.00" in held["detail"]

    admin = _call(capsys, ["init", *d])["token"]
    rita = _call(
        capsys,
        [
            "tokens",
            "create",
            "--principal",
            "rita",
            "--role",
            "revenue-cycle",
            "--token",
            admin,
            *d,
        ],
    )["token"]
    fiona = _call(
        capsys,
        [
            "tokens",
            "create",
            "--principal",
            "fiona",
            "--role",
            "finance-approver",
            "--token",
            admin,
            *d,
        ],
    )["token"]
    cid = held["control_id"]
    err = _call(capsys, ["remits", "release", cid, "--reason", "ok", "--token", rita, *d], code=2)
    assert "may not cli remits release" in err
    _call(capsys, ["remits", "release", cid, "--token", fiona, *d], code=2)  # no reason
    _call(capsys, ["remits", "release", "NOPE:1", "--reason", "x", "--token", fiona, *d], code=3)
    done = _call(
        capsys,
        [
            "remits",
            "release",
            cid,
            "--reason",
            "payer confirmed BPR by phone",
            "--apply",
            "--token",
            fiona,
            *d,
        ],
    )
    assert (done["released_by"], done["events"]) == ("fiona", 2) and done["applied"] >= 2
    again = _call(capsys, ["remits", "release", cid, "--reason", "x", "--token", fiona, *d], code=4)
    assert "accepted, not held" in again  # a refusal: one line on stderr
    assert _call(capsys, ["remits", "list", *d]) == []
    journal = json.dumps(_call(capsys, ["ledger", "journal", "--limit", "500", *d]))
    assert '"1010"' in journal
    audit = _call(capsys, ["audit", "list", *d])
    rows = [a for a in audit if a["action"] == "cli remits release"]
    ok = [a for a in rows if a["outcome"] == "ok"]
    assert [(a["actor"], a["target"]) for a in ok] == [("fiona", cid)]
    assert "payer confirmed BPR by phone" in json.dumps(ok[0]["detail"])
    assert any(a["actor"] == "rita" and a["outcome"] == "denied" for a in rows)
    items = _call(capsys, ["workitems", "list", "--status", "resolved", *d])
    assert any(w["kind"] == "unbalanced_remittance" for w in items)
