"""837P/837I to claim register entries: every corpus file, goldens, matching keys."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from tests.formats.x12.x12_corpus import corpus_files, file_id

from isthmus.formats.x12 import Level, Procedure, parse_835, parse_837

FILES = corpus_files("837_*/*.837*")
D = Decimal


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_every_837_parses_to_balanced_claims(path: Path) -> None:
    batch = parse_837(path.read_bytes())
    assert batch.findings == ()
    assert batch.claims
    institutional = "X223" in path.parent.name or "X096" in path.parent.name
    for claim in batch.claims:
        assert claim.kind == ("institutional" if institutional else "professional")
        assert claim.patient_control_number
        assert claim.total_charge == sum((x.charge for x in claim.lines), D(0))
        assert claim.billing_provider.name
        assert claim.subscriber.last and claim.patient.last and claim.payer.name
        for line in claim.lines:
            assert line.procedure.code or line.revenue_code


def test_corpus_has_every_837_file() -> None:
    assert len(FILES) == 33


def one(name: str):  # type: ignore[no-untyped-def]
    return parse_837(next(p for p in FILES if p.name == name).read_bytes())


def test_professional_golden() -> None:
    (claim,) = one("demo.example1.837").claims
    assert claim.version == "005010X222A2"
    assert claim.transaction_control == "0021"
    assert claim.patient_control_number == "26463774"
    assert claim.total_charge == D("100.00")
    assert (claim.facility_code, claim.frequency) == ("11", "1")
    assert claim.clearinghouse_trace == "17312345600006351"
    bp = claim.billing_provider
    assert (bp.name, bp.npi, bp.tin) == ("BEN KILDARE SERVICE", "1912301953", "587654321")
    assert (claim.subscriber.last, claim.subscriber.id) == ("SMITH", "JS00111223333")
    assert (claim.patient.last, claim.patient.first) == ("SMITH", "TED")
    assert (claim.payer.name, claim.payer.id) == ("KEY INSURANCE COMPANY", "999996666")
    assert (claim.payer_responsibility, claim.filing_indicator) == ("P", "CI")
    assert [(x.number, x.procedure.code, x.charge, x.service_date) for x in claim.lines] == [
        ("1", "99213", D("40.00"), date(2006, 10, 3)),
        ("2", "87070", D("15.00"), date(2006, 10, 3)),
        ("3", "99214", D("35.00"), date(2006, 10, 10)),
        ("4", "86663", D("10.00"), date(2006, 10, 10)),
    ]
    assert claim.lines[0].units == D("1.00") and claim.lines[0].unit_basis == "UN"


def test_institutional_two_claims_one_provider() -> None:
    batch = one("two-claims-single-provider.837i")
    assert [c.patient_control_number for c in batch.claims] == ["756048Q", "756049Q"]
    assert [c.subscriber.last for c in batch.claims] == ["DOE", "SMITH"]
    assert {c.billing_provider.npi for c in batch.claims} == {"1234567890"}
    line = batch.claims[0].lines[1]
    assert (line.revenue_code, line.procedure, line.charge, line.units) == (
        "0730",
        Procedure("HC", "93005"),
        D("76.56"),
        D("3.00"),
    )
    assert batch.claims[0].frequency == "1" and batch.claims[0].facility_code == "13"


def test_other_payer_ref_f8_is_not_the_claims() -> None:
    for name in ("demo.cob.example3.A.837", "demo.cob.example3.B.837"):
        for claim in one(name).claims:
            assert claim.payer_claim_control_number == ""


def test_4010_claims() -> None:
    (claim,) = one("patient-is-dependent.837").claims
    assert claim.version == "004010X098A1"
    assert claim.billing_provider.tin == "587654321"
    assert claim.patient.id == "JS01111223333"
    (inst,) = one("institutional-ppo-repriced.837").claims
    assert inst.kind == "institutional"
    assert all(x.revenue_code for x in inst.lines)


SYNTHETIC = (
    "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       "
    "*240102*1200*^*00501*000000001*0*T*:~"
    "GS*HC*S*R*20240102*1200*1*X*005010X222A2~ST*837*0001*005010X222A2~"
    "HL*1**20*1~NM1*85*2*CLINIC*****XX*1234567893~REF*EI*111222333~"
    "HL*2*1*22*0~SBR*P*18*******CI~NM1*IL*1*DOE*JANE****MI*M1~NM1*PR*2*PAYER*****PI*P1~"
    "CLM*PCN-9*90***11:B:7*Y*A*Y*Y~REF*F8*ICN-1~"
    "LX*1~SV1*HC:99213*50*UN*1***1~DTP*472*RD8*20240101-20240103~REF*6R*L1~"
    "LX*2~SV1*HC:99214*30*UN*1***1~"
    "SE*17*0001~GE*1*1~IEA*1*000000001~"
)


def test_corrected_claim_matches_its_remittance_and_charge_imbalance() -> None:
    batch = parse_837(SYNTHETIC)
    (claim,) = batch.claims
    assert (claim.patient_control_number, claim.payer_claim_control_number) == ("PCN-9", "ICN-1")
    assert claim.frequency == "7"
    assert claim.patient == claim.subscriber
    assert claim.lines[0].control_number == "L1"
    assert (claim.lines[0].service_date, claim.lines[0].service_end) == (
        date(2024, 1, 1),
        date(2024, 1, 3),
    )
    (finding,) = batch.findings
    assert (finding.level, finding.code, finding.segment_index) == (
        Level.BALANCE,
        "CHARGE_UNBALANCED",
        10,
    )
    assert finding.difference == D(10)
    remit = (
        SYNTHETIC.split("GS*", maxsplit=1)[0]
        + "GS*HP*S*R*20240102*1200*1*X*005010X221A1~ST*835*0001~"
        + "BPR*I*80*C*ACH*CCP*01*1*DA*2*3**01*4*DA*5*20240105~TRN*1*T*1~"
        + "N1*PR*PAYER~N1*PE*CLINIC*XX*1234567893~LX*1~"
        + "CLP*PCN-9*1*80*80**12*ICN-1~SE*8*0001~GE*1*1~IEA*1*000000001~"
    )
    paid = parse_835(remit).remittances[0].claims[0]
    assert (paid.patient_control_number, paid.payer_claim_control_number) == (
        claim.patient_control_number,
        claim.payer_claim_control_number,
    )


def test_bad_amounts_and_missing_procedure_are_findings() -> None:
    text = SYNTHETIC.replace("SV1*HC:99214*30", "SV1*HC*3O").replace("CLM*PCN-9*90", "CLM*PCN-9*80")
    codes = [(x.level.value, x.code, x.segment_id) for x in parse_837(text).findings]
    assert codes == [
        ("element", "6", "SV1"),
        ("balance", "CHARGE_UNBALANCED", "CLM"),
        ("element", "1", "SV1"),
    ]
