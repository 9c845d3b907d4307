"""835 to canonical remittances: every corpus file, golden values, balancing, quirks."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from tests.formats.x12.x12_corpus import corpus_files, file_id, interchange

from isthmus.formats.x12 import (
    Adjustment,
    AmountValue,
    DateValue,
    Finding,
    Level,
    Procedure,
    Reference,
    X12Error,
    parse_835,
    read,
)
from isthmus.formats.x12.balancing import check_balance, claim_difference, line_difference

FILES = corpus_files("835_*/*.835")
D = Decimal

# file -> (BPR02, claim count, sum of CLP04, PLB total)
TOTALS: dict[str, tuple[str, int, str, str]] = {
    "cob-contractural-adjustment.835": ("34.00", 1, "34.00", "0"),
    "managed-care.835": ("945.00", 2, "945.00", "0"),
    "medicare-part-a.835": ("150000.00", 2, "149998.73", "-1.27"),
    "secondary-payment.835": ("1222.00", 2, "1222.00", "0"),
    "tertiary-payment.835": ("187.50", 1, "187.50", "0"),
}

# Every finding of the corpus 835s, and why.
FINDINGS: dict[str, list[str]] = {
    # the CHK files put the check date in BPR15: BPR16 (required) is empty
    "cob-contractural-adjustment.835": ["element:1:BPR:3:16"],
    # BPR16 is 20002316: month 23
    "managed-care.835": ["element:8:BPR:3:16"],
    "medicare-part-a.835": [],
    "secondary-payment.835": ["element:1:BPR:3:16"],
    # SVC*HC*24599.00*1766.50*187.50**1: the procedure code went into its own element,
    # so SVC01 has no code, SVC02 reads 24599.00 and SVC03 1766.50; the line is out by
    # 24599.00 - 1766.50 - 1579.00. The claim itself balances.
    "tertiary-payment.835": [
        "element:1:SVC:19:1",
        "element:1:BPR:3:16",
        "balance:LINE_UNBALANCED:SVC:19:0",
    ],
}


def brief(findings: tuple[Finding, ...]) -> list[str]:
    return [
        f"{x.level.value}:{x.code}:{x.segment_id}:{x.segment_index}:{x.element}" for x in findings
    ]


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_every_835_parses_with_expected_totals_and_findings(path: Path) -> None:
    batch = parse_835(path.read_bytes())
    assert len(batch.remittances) == 1
    rem = batch.remittances[0]
    amount, count, paid, plb = TOTALS[path.name]
    assert rem.amount == D(amount)
    assert len(rem.claims) == count
    assert rem.total_paid() == D(paid)
    assert sum((p.amount for p in rem.provider_adjustments), D(0)) == D(plb)
    assert brief(rem.findings) == FINDINGS[path.name]
    assert batch.findings == rem.findings  # no envelope findings in the 835s
    assert rem.interchange_control == "000000907"
    assert rem.version == "005010X221A1"
    assert rem.payer is not None and rem.payee is not None
    for claim in rem.claims:
        assert claim.patient_control_number
        for line in claim.service_lines:
            assert line.procedure.qualifier == "HC"


def test_FILES_is_the_whole_835_corpus() -> None:
    assert sorted(p.name for p in FILES) == sorted(TOTALS)


def one(name: str):  # type: ignore[no-untyped-def]
    path = next(p for p in FILES if p.name == name)
    return parse_835(path.read_bytes()).remittances[0]


def test_managed_care_golden() -> None:
    rem = one("managed-care.835")
    assert (rem.handling_code, rem.credit_debit, rem.method, rem.payment_format) == (
        "I",
        "C",
        "ACH",
        "CCP",
    )
    assert rem.payment_date is None  # invalid, reported
    assert (rem.trace_type, rem.trace_number, rem.payer_id) == ("1", "7170066655", "1935665544")
    assert rem.production_date == date(2002, 3, 14)
    assert rem.payer is not None and rem.payer.name == "RUSHMORE LIFE"
    assert rem.payee is not None
    assert (rem.payee.name, rem.payee.npi, rem.payee.tin) == (
        "ACME MEDICAL CENTER",
        "5544667733",
        "777667755",
    )
    first = rem.claims[0]
    assert first.patient_control_number == "5554555444"
    assert first.status == "1"
    assert (first.charge, first.paid, first.patient_responsibility) == (
        D("800.00"),
        D("450.00"),
        D("300.00"),
    )
    assert first.filing_indicator == "12"
    assert first.payer_claim_control_number == "94060555410000"
    assert first.adjustments == (Adjustment("CO", "A2", D("50.00"), None),)
    assert first.patient is not None and first.patient.last == "BUDD"
    assert first.patient.id == "33344555510"
    line = first.service_lines[0]
    assert line.procedure == Procedure("HC", "99211")
    assert (line.charge, line.paid) == (D("800.00"), D("500.00"))
    assert line.adjustments == (Adjustment("PR", "1", D("300.00"), None),)
    assert [(d.qualifier, d.date) for d in line.dates] == [
        ("150", date(2002, 3, 1)),
        ("151", date(2002, 3, 4)),
    ]
    second = rem.claims[1]
    assert [a.reason for a in second.all_adjustments()] == ["A2", "1", "45"]


def test_medicare_part_a_golden_with_plb() -> None:
    rem = one("medicare-part-a.835")
    assert rem.payment_date == date(2002, 9, 13)
    assert rem.method == "ACH" and rem.handling_code == "C"
    assert [c.filing_indicator for c in rem.claims] == ["MA", "MB"]
    assert [(c.facility_type, c.frequency) for c in rem.claims] == [("11", "1"), ("13", "1")]
    assert rem.claims[1].remarks == ("MA02",)
    assert rem.claims[0].service_lines == ()
    plb = rem.provider_adjustments[0]
    assert (plb.provider_id, plb.fiscal_period, plb.reason, plb.reference, plb.amount) == (
        "6543210903",
        date(2002, 12, 31),
        "CV",
        "CP",
        D("-1.27"),
    )
    assert rem.payer is not None and rem.payer.references[0].value == "999"


def test_secondary_payment_quirk_gt_in_svc01_and_two_triplets() -> None:
    rem = one("secondary-payment.835")
    assert rem.receiver_id == "030240928"
    claim = rem.claims[1]
    assert claim.status == "2"
    assert [ln.procedure for ln in claim.service_lines] == [
        Procedure("HC", "12345", ("26",)),
        Procedure("HC", "66543", ("26",)),
    ]
    line = claim.service_lines[1]
    assert line.revenue_code == "220" and line.units == D("1.00")
    assert line.adjustments == (
        Adjustment("PR", "1", D("150.00"), None),
        Adjustment("PR", "2", D("70.00"), None),
        Adjustment("CO", "42", D("85.00"), None),
    )
    assert line.allowed == D("500.00")
    assert line.references[0].qualifier == "1B"
    assert rem.claims[0].amounts[0].amount == D("912.00")


def test_cob_claim_balances_through_negative_line_cas() -> None:
    claim = one("cob-contractural-adjustment.835").claims[0]
    assert [a.amount for a in claim.all_adjustments()] == [D("516.00"), D("-9.00")]
    assert claim_difference(claim) == 0
    assert line_difference(claim.service_lines[0]) == 0


def test_tertiary_line_out_of_balance_by_the_misplaced_element() -> None:
    rem = one("tertiary-payment.835")
    line = rem.claims[0].service_lines[0]
    assert line.procedure == Procedure("HC", "")
    assert line_difference(line) == D("21253.50")
    assert claim_difference(rem.claims[0]) == 0
    bad = rem.findings[-1]
    assert bad.level is Level.BALANCE and bad.difference == D("21253.50")
    assert bad.loop == "2110" and bad.position == 18  # ST is position 1


BASE = [
    "BPR*I*100.00*C*ACH*CCP*01*1*DA*2*3**01*4*DA*5*20240105",
    "TRN*1*EFT1*1999999999",
    "N1*PR*PAYER",
    "N1*PE*CLINIC*XX*1234567893",
    "LX*1",
]


def remit(*segs: str):  # type: ignore[no-untyped-def]
    return parse_835(interchange([*BASE, *segs])).remittances[0]


def test_reversal_and_correction_balance_with_negative_amounts() -> None:
    rem = remit(
        "CLP*PCN1*22*-150.00*-100.00**12*ICN1",
        "CAS*CO*45*-50.00",
        "CLP*PCN1*1*150.00*200.00**12*ICN2",
        "CAS*CO*45*-50.00",
    )
    assert [c.is_reversal for c in rem.claims] == [True, False]
    assert rem.findings == ()


def test_claim_and_payment_imbalance_are_reported() -> None:
    rem = remit("CLP*PCN1*1*150.00*90.00**12*ICN1", "CAS*CO*45*50.00", "PLB*1*20241231*WO:X*-5")
    assert brief(rem.findings) == [
        "balance:CLAIM_UNBALANCED:CLP:8:0",
        "balance:PAYMENT_UNBALANCED:BPR:3:0",
    ]
    assert [x.difference for x in rem.findings] == [D("10.00"), D("5.00")]


def test_six_triplets_and_quantities() -> None:
    rem = remit(
        "CLP*P*1*70*0**12*I",
        "CAS*CO*1*10*1*2*10**3*10*2*4*10**5*10**6*10*3*7*10",
        "PLB*1*20241231*WO:X*-100",
    )
    adj = rem.claims[0].adjustments
    assert [a.reason for a in adj] == ["1", "2", "3", "4", "5", "6"]  # the 7th is not CAS
    assert [a.quantity for a in adj] == [D(1), None, D(2), None, None, D(3)]
    assert brief(rem.findings) == ["balance:CLAIM_UNBALANCED:CLP:8:0"]


def test_element_errors_are_findings_not_exceptions() -> None:
    rem = remit("CLP**1*abc*0**12*I", "CAS*XX*1*1.2.3", "SVC*HC:1*1*1", "DTM*472*20241341", "ZZZ*1")
    assert brief(rem.findings) == [
        "element:7:CAS:9:1",
        "element:6:CAS:9:3",
        "element:8:DTM:11:2",
        "segment:2:ZZZ:12:0",
        "element:1:CLP:8:1",
        "element:6:CLP:8:3",
        "balance:PAYMENT_UNBALANCED:BPR:3:0",  # the claim reads 0 - 0 - 0 and balances
    ]


def test_segments_with_no_elements_are_read_as_empty_ones() -> None:
    # a bare REF, DTM, AMT or LQ once raised IndexError: each reads as if its elements
    # were empty, a missing value is a finding as usual
    rem = remit("REF", "CLP*A*1*10*10**12", "DTM", "AMT", "LQ", "REF")
    assert rem.claims[0].references == (Reference("", ""),)
    assert rem.claims[0].dates == (DateValue("", None),)
    assert rem.claims[0].amounts == (AmountValue("", D(0)),)
    assert brief(rem.findings) == [
        "element:8:DTM:10:2",
        "element:1:AMT:11:2",
        "balance:PAYMENT_UNBALANCED:BPR:3:0",
    ]


def test_service_line_details() -> None:
    rem = remit(
        "CLP*P*1*120*100**12*I",
        "SVC*HC:99213:25:59*120*100*0450*2*HC:99214",
        "DTM*472*20240101",
        "CAS*CO*45*20",
        "REF*6R*LINE-1",
        "AMT*B6*100",
        "LQ*HE*N130",
        "LQ*RX*X",
    )
    line = rem.claims[0].service_lines[0]
    assert line.procedure == Procedure("HC", "99213", ("25", "59"))
    assert line.original_procedure == Procedure("HC", "99214")
    assert (line.revenue_code, line.units, line.control_number) == ("0450", D(2), "LINE-1")
    assert line.remarks == ("N130",)
    assert rem.findings == ()


def test_missing_bpr_and_other_currency() -> None:
    rem = parse_835(interchange(["TRN*1*X*Y", "CUR*PR*CAD"])).remittances[0]
    assert rem.currency == "CAD"
    assert brief(rem.findings) == ["segment:3:BPR:2:0"]


def test_check_balance_without_locations() -> None:
    rem = one("tertiary-payment.835")
    found = check_balance(rem.amount, rem.claims, rem.provider_adjustments)
    assert [(x.code, x.segment_index) for x in found] == [("LINE_UNBALANCED", -1)]


def test_only_835_sets_are_read_and_bad_isa_raises() -> None:
    assert parse_835(interchange(BASE).replace("ST*835", "ST*999")).remittances == ()
    with pytest.raises(X12Error):
        parse_835(b"not x12")
    assert parse_835(read(interchange(BASE))).remittances[0].amount == D(100)


def test_repeated_values_read_alike_and_a_repeated_bad_one_is_reported_each_time() -> None:
    # amounts and dates are parsed once per distinct text in a set: a valid one read again
    # gives an equal value, an invalid one read again is a finding again, at its own place
    rem = remit(
        "CLP*A*1*1x*10.00**12",
        "DTM*232*20241341",
        "SVC*HC:1*1x*10.00**2",
        "DTM*472*20241341",
        "CAS*CO*45*1x",
        "AMT*B6*1x",
        "CLP*B*1*10.00*10.00**12",
        "DTM*232*20240102",
        "SVC*HC:1*10.00*10.00**2",
        "DTM*472*20240102",
        "AMT*B6*10.00",
    )
    a, b = rem.claims
    assert (b.charge, b.paid, b.service_lines[0].units) == (D("10.00"), D("10.00"), D(2))
    assert [d.date for d in b.dates + b.service_lines[0].dates] == [date(2024, 1, 2)] * 2
    assert b.service_lines[0].amounts == (AmountValue("B6", D("10.00")),)
    assert a.service_lines[0].adjustments == (Adjustment("CO", "45", D(0)),)  # bad: zero
    assert brief(rem.findings) == [
        "element:8:DTM:9:2",
        "element:8:DTM:11:2",
        "element:6:CAS:12:3",
        "element:6:AMT:13:2",
        "element:6:CLP:8:3",
        "element:6:SVC:10:2",
        "balance:LINE_UNBALANCED:SVC:10:0",
        "balance:CLAIM_UNBALANCED:CLP:8:0",
        "balance:PAYMENT_UNBALANCED:BPR:3:0",
    ]
