"""The 835 claim payment event carries its service lines (loop 2110): golden values from
every corpus 835 with SVC loops, and the REF*6R line control number."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from tests.formats.x12.x12_corpus import ISA, corpus_files, file_id

from isthmus.formats.x12 import parse_835
from isthmus.formats.x12.events import remittance_events
from isthmus.model import ClaimRemitted, RemitAdjustment, RemitServiceLine

FILES = corpus_files("835_*/*.835")
D = Decimal

# file -> CLP01 -> (qualifier, code, modifiers, SVC02, SVC03, SVC05, CAS, date) per line,
# read off the files: SVC*HC>12345>26*166.50*30.00**1.00 / DTM*472 / CAS*OA*23*136.50 ...
GOLDEN: dict[str, dict[str, list[tuple[object, ...]]]] = {
    "cob-contractural-adjustment.835": {
        "0001000055": [
            (
                "HC",
                "55669",
                (),
                "541.00",
                "34.00",
                "1.00",
                [("OA", "23", "516.00"), ("OA", "94", "-9.00")],
                date(2005, 2, 2),
            )
        ]
    },
    "managed-care.835": {  # DTM*150 (service period start), no DTM*472
        "5554555444": [
            ("HC", "99211", (), "800.00", "500.00", None, [("PR", "1", "300.00")], date(2002, 3, 1))
        ],
        "8765432112": [
            (
                "HC",
                "93555",
                (),
                "1200.00",
                "550.00",
                None,
                [("PR", "1", "600.00"), ("CO", "45", "50.00")],
                date(2002, 3, 10),
            )
        ],
    },
    "medicare-part-a.835": {"666123": [], "777777": []},  # claim level only
    "secondary-payment.835": {
        "L0004828311": [],
        "0001000053": [
            (
                "HC",
                "12345",
                ("26",),
                "166.50",
                "30.00",
                "1.00",
                [("OA", "23", "136.50")],
                date(2005, 1, 6),
            ),
            (
                "HC",
                "66543",
                ("26",),
                "585.00",
                "280.00",
                "1.00",
                [("PR", "1", "150.00"), ("PR", "2", "70.00"), ("CO", "42", "85.00")],
                date(2005, 1, 6),
            ),
        ],
    },
    # SVC*HC*24599.00*...: the code went into its own element (see test_x12_835.py)
    "tertiary-payment.835": {
        "0001000054": [
            (
                "HC",
                "",
                (),
                "24599.00",
                "1766.50",
                None,
                [("OA", "23", "1579.00")],
                date(2005, 1, 20),
            )
        ]
    },
}


def claims_of(data: bytes | str) -> list[ClaimRemitted]:
    events = remittance_events(parse_835(data), interchange_id="golden")
    return [k.event for k in events if isinstance(k.event, ClaimRemitted)]


def brief(line: RemitServiceLine) -> tuple[object, ...]:
    return (
        line.qualifier,
        line.code,
        line.modifiers,
        str(line.charge),
        str(line.paid),
        None if line.units is None else str(line.units),
        [(a.group, a.reason, str(a.amount)) for a in line.adjustments],
        line.service_date,
    )


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_every_corpus_835_carries_its_service_lines(path: Path) -> None:
    got = {
        c.patient_control_number: [brief(x) for x in c.lines] for c in claims_of(path.read_bytes())
    }
    assert got == GOLDEN[path.name]


def test_GOLDEN_covers_the_corpus() -> None:
    assert sorted(GOLDEN) == sorted(p.name for p in FILES)


def test_lines_sum_to_the_claim_and_keep_the_6r_control_number() -> None:
    text = (
        ISA + "GS*HP*PAYER*HOSP*20270115*1200*1*X*005010X221A1~"
        "ST*835*0001~BPR*I*70.00*C*ACH*CCP*01*999*DA*1*1234567890**01*999*DA*2*"
        "20270115~TRN*1*EFT1*1512345678~N1*PR*PAYER~N1*PE*HOSP*XX*1234567893~LX*1~"
        "CLP*A100*1*150.00*70.00**12*PCN1~"
        "SVC*HC:99213:25*100.00*40.00**1~DTM*472*20270101~CAS*CO*45*60.00~REF*6R*L1~"
        "SVC*NU:0300*50.00*30.00*0300*2~DTM*472*20270102~CAS*CO*45*20.00~REF*6R*L2~"
        "SE*16*0001~GE*1*1~IEA*1*000000123~"
    )
    (claim,) = claims_of(text)
    first, second = claim.lines
    assert (first.code, first.modifiers, first.control_number) == ("99213", ("25",), "L1")
    assert (
        second.qualifier,
        second.code,
        second.revenue_code,
        second.units,
        second.control_number,
    ) == ("NU", "0300", "0300", D(2), "L2")
    assert second.adjustments == (RemitAdjustment("CO", "45", D("20.00")),)
    assert sum(x.paid for x in claim.lines) == claim.paid
    assert sum(x.charge for x in claim.lines) == claim.charge
