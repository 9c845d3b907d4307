"""270/276/999 built here read back the same; a 277CA is read; no input makes the new
readers raise anything but X12Error (as test_x12_properties does for 835/837)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.formats.x12.x12_corpus import ISA, corpus_files

from isthmus.formats.x12 import X12Error, build_999, check_envelope, parse_837, read
from isthmus.formats.x12.acknowledgement import parse_999
from isthmus.formats.x12.claim_status import ClaimStatus, build_276, parse_status
from isthmus.formats.x12.eligibility import (
    EligibilityRequest,
    build_270,
    parse_270,
    parse_271,
)
from isthmus.formats.x12.remittance import Party, Person

AT = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
PAYER = Party(name="ACME HEALTH", id_qualifier="PI", id="99999")
PROVIDER = Party(name="GENERAL HOSPITAL", id_qualifier="XX", id="1234567893", npi="1234567893")

# A 277CA in the shape of 005010X214 section 3 example 1 (claim level acceptance of one
# claim, rejection of another), written for this test.
CA = (
    ISA.replace("000000123", "000000777")
    + "GS*HN*CLEARING*HOSP*20240302*0800*77*X*005010X214~ST*277*0001*005010X214~"
    "BHT*0085*08*BATCH1*20240302*0800*TH~HL*1**20*1~NM1*AY*2*CLEARINGHOUSE*****46*CH1~"
    "TRN*1*BATCH1~DTP*050*D8*20240302~DTP*009*D8*20240302~HL*2*1*21*1~"
    "NM1*41*2*GENERAL HOSPITAL*****46*HOSP~TRN*2*ISA000000042~STC*A1:19:PR*20240302*WQ*250~"
    "QTY*90*1~QTY*AA*1~AMT*YU*100~AMT*YY*150~HL*3*2*19*1~"
    "NM1*85*2*GENERAL HOSPITAL*****XX*1234567893~TRN*1*0~REF*TJ*123456789~"
    "QTY*QA*1~QTY*QC*1~AMT*YU*100~AMT*YY*150~HL*4*3*PT~NM1*QC*1*DOE*JANE****MI*M1~"
    "TRN*2*PCN-1~STC*A2:20:PR*20240302*WQ*100~REF*1K*PAYER-CLM-1~REF*D9*PCN-1~"
    "DTP*472*RD8*20240220-20240220~HL*5*3*PT~NM1*QC*1*ROE*RICH****MI*M2~TRN*2*PCN-2~"
    "STC*A7:562:85*20240302*U*150~REF*D9*PCN-2~DTP*472*D8*20240221~"
    "SE*37*0001~GE*1*77~IEA*1*000000777~"
)


def test_277ca_accepts_one_claim_rejects_another() -> None:
    batch = parse_status(CA)
    assert batch.findings == () and batch.guide == "005010X214"
    got = [
        (
            c.patient_control_number,
            c.payer_claim_control_number,
            c.category(),
            c.statuses[0].code,
            c.statuses[0].entity,
        )
        for c in batch.claims
    ]
    assert got == [
        ("PCN-1", "PAYER-CLM-1", "accepted", "20", "PR"),
        ("PCN-2", "", "rejected", "562", "85"),
    ]
    assert batch.claims[0].patient is not None and batch.claims[0].patient.last == "DOE"
    assert [(lv.level, lv.statuses[0].category) for lv in batch.levels] == [("21", "A1")]


def test_270_built_reads_back() -> None:
    asks = [
        EligibilityRequest(
            transaction_control="",
            trace="T-1",
            payer=PAYER,
            provider=PROVIDER,
            subscriber=Person(last="DOE", first="JANE", id="M1"),
            plan_date=date(2024, 3, 4),
        ),
        EligibilityRequest(
            transaction_control="",
            trace="T-2",
            payer=PAYER,
            provider=PROVIDER,
            subscriber=Person(last="DOE", first="JOHN", id="M2"),
            dependent=Person(last="DOE", first="KID"),
            service_types=("30", "98"),
        ),
    ]
    text = build_270(
        asks, sender="HOSP", receiver="ACME", interchange_control=41, group_control=41, at=AT
    )
    assert check_envelope(read(text)).findings == []
    batch = parse_270(text)
    assert [
        (
            r.trace,
            r.subscriber.id,
            r.dependent.first if r.dependent else "",
            r.service_types,
            r.plan_date,
        )
        for r in batch.requests
    ] == [("T-1", "M1", "", ("30",), date(2024, 3, 4)), ("T-2", "M2", "KID", ("30", "98"), None)]
    assert batch.requests[0].payer.id == "99999" and batch.interchange_control == "000000041"
    assert "**~" not in text and "*~" not in text  # no trailing separators


def test_276_built_reads_back() -> None:
    ask = ClaimStatus(
        transaction_control="",
        trace="S-1",
        payer=PAYER,
        provider=PROVIDER,
        subscriber=Person(last="DOE", first="JANE", id="M1"),
        patient_control_number="PCN-1",
        payer_claim_control_number="PC-9",
        charge=Decimal("120.50"),
        service_date=date(2024, 2, 20),
    )
    text = build_276(
        [ask], sender="HOSP", receiver="ACME", interchange_control=5, group_control=5, at=AT
    )
    assert check_envelope(read(text)).findings == []
    (got,) = parse_status(text).claims
    assert (
        got.trace,
        got.patient_control_number,
        got.payer_claim_control_number,
        got.charge,
        got.service_date,
        got.service_end,
    ) == ("S-1", "PCN-1", "PC-9", Decimal("120.50"), date(2024, 2, 20), date(2024, 2, 20))


def test_999_read_back_from_build_999_names_sets_and_errors() -> None:
    path = next(p for p in corpus_files("837_005010X222A2/*") if p.name == "demo.example1.837")
    clean = read(path.read_bytes())
    ack = parse_999(build_999(clean, parse_837(clean).findings, at=AT))
    ((g,),) = [ack.groups]
    assert (g.functional_id, g.control, g.status, g.accepted) == ("HC", "1", "A", 1)
    assert [(s.control, s.status, s.accepted) for s in g.sets] == [("0021", "A", True)]
    bad = read(path.read_text().replace("CLM*26463774*100", "CLM*26463774*101"))
    ack = parse_999(build_999(bad, parse_837(bad).findings, at=AT))
    (s,) = ack.groups[0].sets
    assert s.status == "E" and s.codes == ("I5",)
    (seg,) = s.segments
    assert (seg.segment_id, seg.loop, seg.code) == ("CLM", "2300", "8")
    assert [(x.element, x.reference, x.code) for x in seg.elements] == [(2, "782", "I12")]


def _rejected_999() -> str:
    return (
        ISA + "GS*FA*R*S*20240101*1200*9*X*005010X231A1~ST*999*0001*005010X231A1~"
        "AK1*HC*12*005010X222A1~AK2*837*0001*005010X222A1~IK3*NM1*8*2010AA*8~"
        "IK4*9*67*7*123~IK5*R*5~AK2*837*0002*005010X222A1~IK5*A~AK9*P*2*2*1~"
        "SE*10*0001~GE*1*9~IEA*1*000000123~"
    )


def test_999_partial_acceptance() -> None:
    (g,) = parse_999(_rejected_999()).groups
    assert (g.control, g.status, g.included, g.accepted) == ("12", "P", 2, 1)
    assert [(s.control, s.accepted) for s in g.sets] == [("0001", False), ("0002", True)]
    assert g.sets[0].segments[0].elements[0].value == "123"


READERS = (parse_270, parse_271, parse_status, parse_999)
SEGMENTS = [
    "HL*1**20*1",
    "HL*2*1*22*0",
    "HL*3*2*PT",
    "NM1*PR*2*X",
    "NM1*IL*1*A",
    "NM1*QC",
    "TRN*2*T",
    "TRN",
    "STC*A1:20*2024",
    "STC*E0",
    "STC",
    "REF*EJ*P",
    "REF*1K",
    "REF",
    "AMT*T3*x",
    "AMT",
    "DTP*472*RD8*2024-",
    "DTP",
    "SVC*HC:1*1",
    "SVC",
    "EB*1**30^1*HM*P*29*1.5",
    "EB",
    "EB*C***x**29*-",
    "LS*2120",
    "LE",
    "AAA*Y**50",
    "AAA",
    "EQ*30",
    "AK1*HC*1",
    "AK2*837",
    "IK3*CLM*x",
    "IK4*2:1",
    "IK4",
    "IK5*R*5",
    "AK9*P*1*a",
    "AK9",
    "ST*277*1",
    "SE*2*1",
]


def exercise(data: bytes | str) -> None:
    for reader in READERS:
        try:
            reader(data)  # type: ignore[operator]
        except X12Error as exc:
            assert exc.code


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_x12error(data: bytes) -> None:
    exercise(data)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(SEGMENTS), max_size=30),
    st.sampled_from(["270", "271", "276", "277", "999"]),
)
def test_plausible_sets_raise_nothing(body: list[str], kind: str) -> None:
    segs = [f"ST*{kind}*0001", *body, f"SE*{len(body) + 2}*0001"]
    text = (
        ISA
        + "GS*HS*S*R*20240101*1200*1*X*005010X279A1~"
        + "~".join(segs)
        + "~GE*1*1~IEA*1*000000123~"
    )
    exercise(text)
    for path in corpus_files("27[0167]_*/*")[:2]:
        exercise(Path(path).read_bytes()[: len(body) * 7])
