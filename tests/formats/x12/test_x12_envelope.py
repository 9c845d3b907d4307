"""Envelope checks over every corpus file, and malformed variants located precisely."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.formats.x12.x12_corpus import corpus_files, file_id, interchange

from isthmus.formats.x12 import Finding, Level, check_envelope, read

ALL = corpus_files("*/*")
BODY = ["BPR*I*10.00*C*CHK************20240102", "TRN*1*T1*P1"]

# The one envelope defect of the corpus: SE02 does not repeat ST02.
CORPUS_ENVELOPE: dict[str, list[str]] = {
    "271_005010X279A1/subscriber-health-benefit-check-error.271": ["transaction:3:SE:9:2"],
}


def brief(findings: list[Finding]) -> list[str]:
    return [
        f"{x.level.value}:{x.code}:{x.segment_id}:{x.segment_index}:{x.element}" for x in findings
    ]


@pytest.mark.parametrize("path", ALL, ids=file_id)
def test_every_corpus_file_passes_the_envelope_checks(path: Path) -> None:
    env = check_envelope(read(path.read_bytes()))
    assert brief(env.findings) == CORPUS_ENVELOPE.get(file_id(path), [])
    assert env.end == len(read(path.read_bytes())) - 1
    assert len(env.groups) == 1
    group = env.groups[0]
    assert group.transactions
    for t in group.transactions:
        assert t.end > t.start and t.stop == t.end + 1


def test_corpus_covers_every_transaction_type() -> None:
    kinds = {read(p.read_bytes()).raw[2].split("*")[1] for p in ALL}
    assert kinds == {"270", "271", "276", "277", "834", "835", "837"}
    assert len(ALL) == 61


def test_well_formed_interchange_has_no_findings() -> None:
    env = check_envelope(read(interchange(BODY, BODY)))
    assert env.findings == []
    assert [t.control for t in env.groups[0].transactions] == ["0001", "0002"]
    assert not env.rejected


def test_wrong_se01_is_located() -> None:
    text = interchange(BODY).replace("SE*4*0001", "SE*5*0001")
    env = check_envelope(read(text))
    assert brief(env.findings) == ["transaction:4:SE:5:1"]
    assert "set has 4 segments" in env.findings[0].text


def test_se02_mismatch() -> None:
    env = check_envelope(read(interchange(BODY).replace("SE*4*0001", "SE*4*0002")))
    assert brief(env.findings) == ["transaction:3:SE:5:2"]


def test_iea02_mismatch_is_an_interchange_error() -> None:
    env = check_envelope(read(interchange(BODY).replace("IEA*1*000000123", "IEA*1*000000124")))
    assert brief(env.findings) == ["interchange:001:IEA:7:2"]
    assert env.rejected


def test_iea01_and_ge01_counts() -> None:
    text = interchange(BODY).replace("IEA*1*", "IEA*2*").replace("GE*1*7", "GE*3*7")
    assert brief(check_envelope(read(text)).findings) == [
        "group:5:GE:6:1",
        "interchange:021:IEA:7:1",
    ]


def test_ge02_mismatch_and_bad_gs06() -> None:
    text = interchange(BODY, gs_control="X1").replace("GE*1*X1", "GE*1*X2")
    assert brief(check_envelope(read(text)).findings) == [
        "group:6:GS:1:6",
        "group:4:GE:6:2",
    ]


def test_truncated_file_reports_premature_end_and_missing_trailers() -> None:
    text = interchange(BODY)
    cut = text[: text.index("TRN") + 6]
    env = check_envelope(read(cut))
    assert brief(env.findings) == [
        "transaction:2:ST:2:0",
        "group:3:GS:1:0",
        "interchange:023:TRN:4:0",
    ]
    assert env.groups[0].transactions[0].stop == 5


def test_missing_iea() -> None:
    text = interchange(BODY)
    env = check_envelope(read(text[: text.index("IEA")]))
    assert brief(env.findings) == ["interchange:023::6:0"]


def test_bad_isa_length_names_the_element() -> None:
    text = interchange(BODY).replace("*ZZ*SENDER         *", "*ZZ*SENDER*")
    ic = read(text)
    assert ic.isa_length == 106 - 9
    assert brief(check_envelope(ic).findings) == ["interchange:006:ISA:0:6"]


@pytest.mark.parametrize(
    ("old", "new", "code", "element"),
    [
        ("*240102*1200*", "*241302*1200*", "014", 9),
        ("*240102*1200*", "*240102*2460*", "015", 10),
        ("*000000123*0*T*", "*00000012X*0*T*", "018", 13),
        ("*000000123*0*T*", "*000000123*2*T*", "019", 14),
        ("*000000123*0*T*", "*000000123*0*Q*", "020", 15),
        ("*^*00501*", "*^*00601*", "003", 12),
    ],
)
def test_isa_values(old: str, new: str, code: str, element: int) -> None:
    text = interchange(BODY).replace(old, new)
    if code == "018":
        text = text.replace("IEA*1*000000123", "IEA*1*00000012X")
    assert brief(check_envelope(read(text)).findings) == [f"interchange:{code}:ISA:0:{element}"]


def test_structure_errors() -> None:
    text = interchange(BODY)
    stray = text.replace("GE*1*7~", "GE*1*7~N3*LOST~")
    assert brief(check_envelope(read(stray)).findings) == ["interchange:024:N3:7:0"]
    two_st = text.replace("SE*4*0001~", "")
    found = brief(check_envelope(read(two_st)).findings)
    assert found == ["transaction:2:ST:2:0"]
    dup = (
        interchange(BODY, BODY)
        .replace("ST*835*0002", "ST*835*0001")
        .replace("SE*4*0002", "SE*4*0001")
    )
    assert brief(check_envelope(read(dup)).findings) == ["transaction:23:ST:6:2"]
    after = text + "N3*AFTER~"
    assert brief(check_envelope(read(after)).findings) == ["interchange:024:N3:8:0"]
    no_gs = text.replace("GS*HP*SENDER*RECEIVER*20240102*1200*7*X*005010X221A1~", "")
    assert brief(check_envelope(read(no_gs)).findings) == [
        "interchange:024:ST:1:0",
        "group:4:GE:5:2",  # the ST opened a stand-in group, which GE closes
    ]


def test_findings_print_their_location() -> None:
    env = check_envelope(read(interchange(BODY).replace("SE*4*0001", "SE*5*0001")))
    assert str(env.findings[0]).startswith("transaction 4 SE01 (segment 5)")
    assert env.findings[0].level is Level.TRANSACTION
