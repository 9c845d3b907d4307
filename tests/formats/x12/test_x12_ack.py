"""999 and TA1: built from findings, read back by our reader and by pyx12."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pyx12.x12file
from tests.formats.x12.x12_corpus import corpus_files, file_id, interchange

from isthmus.formats.x12 import (
    X12Error,
    build_999,
    build_ta1,
    check_envelope,
    parse_835,
    read,
    recover_isa,
    ta1_note,
)

AT = datetime(2024, 3, 4, 5, 6, tzinfo=UTC)
BODY = ["BPR*I*0*C*NON************20240102", "TRN*1*T1*P1"]


def segments(ack: bytes) -> list[str]:
    ic = read(ack)
    assert check_envelope(ic).findings == []
    return ic.raw


def pyx12_reads(ack: bytes) -> None:
    with pyx12.x12file.X12Reader(io.StringIO(ack.decode())) as r:
        ids = [seg.get_seg_id() for seg in r]
        assert r.pop_errors() == []
    assert ids[0] == "ISA" and ids[-1] == "IEA"


@pytest.mark.parametrize("path", corpus_files("*/*"), ids=file_id)
def test_every_corpus_file_gets_a_999(path: Path) -> None:
    ic = read(path.read_bytes())
    env = check_envelope(ic)
    ack = build_999(ic, env.findings, control_number=42, at=AT)
    raw = segments(ack)
    pyx12_reads(ack)
    group = env.groups[0]
    assert raw[2] == "ST*999*0001*005010X231A1"
    assert raw[3] == f"AK1*{group.functional_id}*{group.control}*{group.version}"
    n = len(group.transactions)
    if env.findings:  # the 271 whose SE02 does not match ST02
        assert "IK5*R*3" in raw
        assert raw[-4] == f"AK9*R*{n}*{n}*0"
    else:
        assert raw.count("IK5*A") == n
        assert raw[-4] == f"AK9*A*{n}*{n}*{n}"


def test_accepted_999_layout() -> None:
    ic = read(interchange(BODY))
    ack = build_999(ic, [], control_number=7, at=AT)
    assert segments(ack) == [
        "ISA*00*          *00*          *ZZ*RECEIVER       *ZZ*SENDER         "
        "*240304*0506*^*00501*000000007*0*T*:",
        "GS*FA*RECEIVER*SENDER*20240304*0506*7*X*005010X231A1",
        "ST*999*0001*005010X231A1",
        "AK1*HP*7*005010X221A1",
        "AK2*835*0001",
        "IK5*A",
        "AK9*A*1*1*1",
        "SE*6*0001",
        "GE*1*7",
        "IEA*1*000000007",
    ]


def test_rejected_set_names_segment_position_loop_and_element() -> None:
    text = interchange([*BODY, "LX*1", "CLP*P1*1*abc*0**12*I", "ZZZ*1"], BODY).replace(
        "SE*7*0001", "SE*8*0001"
    )
    ic = read(text)
    batch = parse_835(ic)
    ack = build_999(ic, batch.findings, at=AT)
    raw = segments(ack)
    pyx12_reads(ack)
    body = raw[raw.index("AK2*835*0001") : raw.index("AK2*835*0002")]
    assert body == [
        "AK2*835*0001",
        "IK3*CLP*5*2100*8",
        "IK4*3**6*abc",
        "IK3*ZZZ*6*2100*2",
        "IK5*R*4*5",
    ]
    assert raw[raw.index("AK2*835*0002") + 1] == "IK5*A"
    assert raw[-4] == "AK9*P*2*2*1"


def test_element_only_errors_accept_with_errors_noted() -> None:
    ic = read(interchange(["BPR*I*0*C*NON************2024010X", "TRN*1*T1*P1"]))
    raw = segments(build_999(ic, parse_835(ic).findings, at=AT))
    assert raw[5:9] == ["IK3*BPR*2**8", "IK4*16**8*2024010X", "IK5*E*I5", "AK9*E*1*1*1"]


def test_group_errors_reject_the_group() -> None:
    ic = read(interchange(BODY).replace("GE*1*7", "GE*2*7"))
    raw = segments(build_999(ic, check_envelope(ic).findings, at=AT))
    assert raw[-4] == "AK9*R*1*1*1*5"


def test_truncated_interchange_gets_ta1_and_999() -> None:
    text = interchange(BODY)
    ic = read(text[: text.index("TRN") + 4])
    env = check_envelope(ic)
    assert ta1_note(env.findings) == "023"
    ta1 = build_ta1(ic.isa, ta1_note(env.findings), at=AT, delimiters=ic.delimiters)
    assert segments(ta1)[1] == "TA1*000000123*240102*1200*R*023"
    pyx12_reads(ta1)
    raw = segments(build_999(ic, env.findings, at=AT))
    assert "IK5*R*2" in raw and raw[-4] == "AK9*R*1*1*0*3"


def test_iea02_mismatch_ta1() -> None:
    ic = read(interchange(BODY).replace("IEA*1*000000123", "IEA*1*000000999"))
    note = ta1_note(check_envelope(ic).findings)
    assert note == "001"
    raw = segments(build_ta1(ic.isa, note, control_number=5, at=AT))
    assert raw == [
        raw[0],
        "TA1*000000123*240102*1200*R*001",
        "IEA*0*000000005",
    ]
    assert raw[0].split("*")[6] == "RECEIVER       "


def test_ta1_for_data_the_reader_refuses() -> None:
    bad = interchange(BODY).replace(":~GS", "A~GS")
    with pytest.raises(X12Error) as info:
        read(bad)
    isa = recover_isa(bad)
    raw = segments(build_ta1(isa, info.value.code, at=AT))
    assert raw[1] == "TA1*000000123*240102*1200*R*027"
    assert recover_isa(b"junk") == ["ISA"]
    assert segments(build_ta1(["ISA"], "022", at=AT))[1] == "TA1*         *      *    *R*022"


def test_accepted_ta1() -> None:
    ic = read(interchange(BODY))
    assert ta1_note(check_envelope(ic).findings) == "000"
    assert segments(build_ta1(ic.isa, "000", at=AT))[1].endswith("*A*000")
