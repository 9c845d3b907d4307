"""`recon.deposits`: matched pairs, unmatched items aged into buckets with totals, the
limit that makes `isthmus recon deposits` exit 4, and the hint for a near miss."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from isthmus.cli.main import run
from isthmus.recon.deposits import bucket_of, deposit_report
from isthmus.store.ports import DepositRecord
from tests.flows.helpers import bar, charge
from tests.flows.remit.helpers import Clp, Remit
from tests.flows.settlement.files import bank_csv, settlement_csv

AS_OF = date(2026, 12, 31)


def _rec(eid: str, side: str, ref: str, amount: str, on: date, matched: str = "") -> DepositRecord:
    return DepositRecord(eid, side, ref, Decimal(amount), "USD", on, "P", "c/" + eid, matched)


@pytest.mark.parametrize(
    ("age", "bucket"),
    [
        (0, "0-30"),
        (30, "0-30"),
        (31, "31-60"),
        (60, "31-60"),
        (61, "61-90"),
        (90, "61-90"),
        (91, "90+"),
        (400, "90+"),
        (-3, "0-30"),
    ],
)
def test_buckets_have_inclusive_edges(age: int, bucket: str) -> None:
    assert bucket_of(age) == bucket


def test_report_ages_what_is_unmatched_and_pairs_what_is_matched() -> None:
    records = [
        _rec("e1", "eft", "T1", "100.00", date(2026, 12, 20), matched="b1"),
        _rec("b1", "bank", "T1", "100.00", date(2026, 12, 22), matched="e1"),
        _rec("e2", "eft", "T2", "250.00", date(2026, 11, 15)),  # 46 days
        _rec("e3", "eft", "T3", "10.00", date(2026, 8, 1)),  # 152 days
        _rec("e4", "eft", "T4", "5.00", date(2026, 12, 30)),  # 1 day
        _rec("b2", "bank", "T2", "240.00", date(2026, 11, 17)),  # near miss of e2
        _rec("p1", "processor", "D1", "77.10", date(2026, 12, 1)),
        _rec("e5", "eft", "T5", "1.00", date(2027, 1, 5)),  # after the as-of day
    ]
    d = deposit_report(records, as_of=AS_OF, limit_days=60)
    [pair] = d["matched"]
    assert (pair["reference"], pair["days_to_bank"], pair["bank_event_id"]) == ("T1", 2, "b1")
    eft = d["unmatched"]["eft"]
    assert [x["reference"] for x in eft["items"]] == ["T3", "T2", "T4"]  # oldest first
    assert eft["aging"]["0-30"] == {"count": 1, "total": {"USD": "5.00"}}
    assert eft["aging"]["31-60"] == {"count": 1, "total": {"USD": "250.00"}}
    assert eft["aging"]["61-90"] == {"count": 0, "total": {}}
    assert eft["aging"]["90+"] == {"count": 1, "total": {"USD": "10.00"}}
    assert [x["reference"] for x in d["unmatched"]["bank"]["items"]] == ["T2"]
    assert [x["reference"] for x in d["unmatched"]["processor"]["items"]] == ["D1"]
    assert d["hints"] == [
        "bank deposit T2 of 240.00 USD on 2026-11-17: the eft with this "
        "reference is 250.00 (differs by -10.00)"
    ]
    assert d["over_limit"] == 1 and d["oldest_unmatched_days"] == 152
    assert deposit_report(records, as_of=AS_OF, limit_days=200)["over_limit"] == 0


def _run(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> Any:
    capsys.readouterr()
    got = run(argv)
    out = capsys.readouterr().out
    assert got == code, out
    return json.loads(out) if "--json" in argv else out


def test_recon_deposits_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = ["--data-dir", str(tmp_path / "hub")]
    hl7 = tmp_path / "day.hl7"
    hl7.write_bytes(bar("B1", "500018") + charge("D1", "500018", amount="800.00"))
    remit = tmp_path / "remit.835"
    remit.write_bytes(
        Remit(
            [
                Clp(
                    pcn="A500018",
                    paid="450.00",
                    responsibility="350.00",
                    line_cas=[("PR", "1", "350.00")],
                )
            ],
            icn=7,
            trace="EFT7",
        ).build()
    )
    remit2 = tmp_path / "remit2.835"
    remit2.write_bytes(
        Remit(
            [
                Clp(
                    pcn="A500018",
                    paid="20.00",
                    responsibility="780.00",
                    line_cas=[("PR", "1", "780.00")],
                )
            ],
            icn=8,
            trace="EFT8",
            sender="PAYERY",
        ).build()
    )
    settle = tmp_path / "settle.csv"
    settle.write_bytes(settlement_csv([("D1", "T1", "payment", "A500018", "50.00", "1.50")]))
    bank = tmp_path / "bank.csv"
    bank.write_bytes(
        bank_csv(
            [
                ("2026-11-06", "450.00", "EFT7", "ACH"),
                ("2026-11-05", "48.50", "D1", "card"),
                ("2026-11-07", "12.00", "MYSTERY", "ACH"),
            ]
        )
    )
    _run(
        capsys,
        [
            "ingest",
            str(hl7),
            str(remit),
            str(remit2),
            str(settle),
            str(bank),
            "--apply",
            *d,
            "--json",
        ],
    )
    out = _run(capsys, ["recon", "deposits", "--as-of", "2026-11-20", *d, "--json"])
    assert sorted((m["reference"], m["side"]) for m in out["matched"]) == [
        ("D1", "processor"),
        ("EFT7", "eft"),
    ]
    assert [x["reference"] for x in out["unmatched"]["eft"]["items"]] == ["EFT8"]
    assert [x["reference"] for x in out["unmatched"]["bank"]["items"]] == ["MYSTERY"]
    assert out["over_limit"] == 0
    late = _run(capsys, ["recon", "deposits", "--as-of", "2027-01-20", *d, "--json"], code=4)
    assert late["over_limit"] == 2
    assert late["unmatched"]["eft"]["aging"]["61-90"]["total"] == {"USD": "20.00"}
    text = _run(capsys, ["recon", "deposits", "--as-of", "2027-01-20", "--limit-days", "90", *d])
    assert "835 payments not in the bank: 1" in text and "MYSTERY" in text
    assert "nothing unmatched is older than the limit" in text
    capsys.readouterr()
    assert run(["recon", "deposits", "--as-of", "20-01-2027", *d]) == 2
    assert "--as-of must be YYYY-MM-DD" in capsys.readouterr().err
