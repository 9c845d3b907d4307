"""Settlement and bank files through `isthmus ingest`: card payments reduce the patient's
A/R, processor deposits clear through the bank with their fees, an 835's EFT is matched to
its bank deposit, bad files post nothing, replays post nothing twice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from isthmus.cli.main import run
from tests.chart import demo_config
from tests.flows.helpers import bar, charge
from tests.flows.remit.helpers import Clp, Remit
from tests.flows.settlement.files import bank_csv, settlement_csv

MRN = "500018"
ACCOUNT = "A" + MRN


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> Any:
    capsys.readouterr()
    got = run(argv)
    out = capsys.readouterr().out
    assert got == code, out
    return json.loads(out)


def _balances(capsys: pytest.CaptureFixture[str], d: list[str]) -> dict[str, str]:
    tb = _json(capsys, ["ledger", "trial-balance", *d])
    assert tb["balanced"] is True
    return {r["account"]: r["balance"] for r in tb["rows"]}


@pytest.fixture
def hub(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    d = ["--data-dir", str(tmp_path / "hub"), "--config", str(demo_config(tmp_path)), "--json"]
    hl7 = tmp_path / "day.hl7"
    hl7.write_bytes(b"FHS|^~\\&|EHR\r" + bar("B1", MRN) + charge("D1", MRN, amount="800.00"))
    _json(capsys, ["ingest", str(hl7), "--apply", *d])
    return d


def test_card_payments_and_deposit_post_and_replay_changes_nothing(
    tmp_path: Path, hub: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "settle.csv"
    f.write_bytes(
        settlement_csv(
            [
                ("D1", "T1", "payment", ACCOUNT, "100.00", "3.20"),
                ("D1", "T2", "refund", ACCOUNT, "-25.00", "0.00"),
            ],
            crlf=True,
            bom=True,
        )
    )
    out = _json(capsys, ["ingest", str(f), "--apply", *hub])
    [item] = out["items"]
    assert (item["format"], item["status"], item["events"], item["deposits"]) == (
        "settlement",
        "accepted",
        3,
        1,
    )
    assert item["total"] == "71.80"
    rows = _balances(capsys, hub)
    assert rows["1200"] == "725.00"  # 800 charged - 100 paid + 25 refunded
    assert rows["1050"] == "71.80" and rows["6100"] == "3.20" and rows["1020"] == "0.00"
    again = _json(capsys, ["ingest", str(f), "--apply", *hub])
    assert again["items"][0]["duplicate"] is True and again["applied"] == 0
    # the same transactions in another file (columns reordered) are the same events
    g = tmp_path / "settle-again.csv"
    text = f.read_bytes().decode("utf-8-sig").replace("\r\n", "\n").splitlines()
    g.write_text("\n".join(",".join(reversed(line.split(","))) for line in text) + "\n")
    third = _json(capsys, ["ingest", str(g), "--apply", *hub])
    assert third["items"][0]["status"] == "accepted" and not third["items"][0]["duplicate"]
    assert _balances(capsys, hub) == rows


def test_unknown_account_is_unapplied_cash_then_posts_on_resubmit(
    tmp_path: Path, hub: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "settle.csv"
    f.write_bytes(settlement_csv([("D2", "T9", "payment", "A999999", "40.00", "1.00")]))
    _json(capsys, ["ingest", str(f), "--apply", *hub])
    items = _json(capsys, ["workitems", "list", "--status", "open", *hub])
    [w] = [i for i in items if i["kind"] == "unapplied_cash"]
    assert w["queue"] == "cash-posting" and "A999999" in w["detail"]
    rows = _balances(capsys, hub)
    assert rows["1020"] == "-40.00" and rows["1200"] == "800.00"  # deposit posted, A/R not
    late = tmp_path / "late.hl7"
    late.write_bytes(bar("B9", "999999"))
    _json(capsys, ["ingest", str(late), "--apply", *hub])
    _json(capsys, ["workitems", "resubmit", str(w["id"]), "--apply", *hub])
    rows = _balances(capsys, hub)
    assert rows["1020"] == "0.00" and rows["1200"] == "760.00"
    assert not [
        i
        for i in _json(capsys, ["workitems", "list", "--status", "open", *hub])
        if i["kind"] == "unapplied_cash"
    ]


def test_bad_file_is_refused_whole_with_row_and_column(
    tmp_path: Path, hub: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "bad.csv"
    f.write_bytes(
        settlement_csv(
            [
                ("D3", "T1", "payment", ACCOUNT, "100.00", "3.00"),
                ("D3", "T2", "payment", ACCOUNT, "50.00", "1.00"),
            ],
            net={"T2": "48.00"},
        )
    )
    before = _balances(capsys, hub)
    out = _json(capsys, ["ingest", str(f), "--apply", *hub], code=1)
    [item] = out["items"]
    assert item["status"] == "rejected" and item["events"] == 0
    assert item["findings"] == ["row 3, column net: gross 50.00 - fee 1.00 is 49.00, not net 48.00"]
    assert _balances(capsys, hub) == before  # the good row did not post either
    listed = _json(capsys, ["messages", "list", "--status", "rejected", *hub])["messages"]
    assert any(m["control_id"] == item["control_id"] for m in listed)


def test_eft_matches_bank_deposit_in_either_order(
    tmp_path: Path, hub: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    bank = tmp_path / "bank.csv"
    bank.write_bytes(
        bank_csv(
            [("2026-11-06", "450.00", "EFT0001", "ACH"), ("2026-11-06", "99.00", "UNKNOWN1", "ACH")]
        )
    )
    _json(capsys, ["ingest", str(bank), "--apply", *hub])
    assert _balances(capsys, hub).get("1050", "0.00") == "0.00"  # nothing to match yet
    remit = tmp_path / "remit.835"
    remit.write_bytes(
        Remit(
            [
                Clp(
                    pcn=ACCOUNT,
                    paid="450.00",
                    responsibility="300.00",
                    cas=[("CO", "45", "50.00")],
                    line_cas=[("PR", "1", "300.00")],
                )
            ],
            icn=42,
        ).build()
    )
    _json(capsys, ["ingest", str(remit), "--apply", *hub])
    rows = _balances(capsys, hub)
    assert rows["1050"] == "450.00" and rows["1010"] == "0.00"
    _json(capsys, ["ingest", str(remit), str(bank), "--apply", *hub])  # duplicates
    assert _balances(capsys, hub) == rows
