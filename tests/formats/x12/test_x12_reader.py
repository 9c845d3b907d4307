"""The segment reader: delimiters from the ISA, tolerated layouts, lazy elements, errors."""

from __future__ import annotations

import pytest
from tests.formats.x12.x12_corpus import ISA, interchange

from isthmus.formats.x12 import Delimiters, Segment, X12Error, read

BODY = ["BPR*I*10.00*C*CHK************20240102", "SVC*HC:99213:25*10.00*10.00"]


def test_delimiters_come_from_the_isa() -> None:
    text = interchange(BODY).replace("*", "|").replace("~", "!").replace(":", "}")
    text = text.replace("|^|00501", "|#|00501")
    ic = read(text.encode())
    assert ic.delimiters == Delimiters("|", "#", "}", "!")
    assert ic.control_number == "000000123"
    assert ic.version == "00501"
    svc = next(s for s in ic if s.id == "SVC")
    assert svc.components(1) == ["HC", "99213", "25"]


def test_4010_has_no_repetition_separator() -> None:
    text = interchange(BODY).replace("*^*00501*", "*U*00401*")
    assert read(text).delimiters.repetition == ""


def test_crlf_after_terminators_is_tolerated() -> None:
    plain = read(interchange(BODY))
    crlf = read(interchange(BODY).replace("~", "~\r\n").encode())
    assert crlf.raw == plain.raw
    assert not crlf.unterminated


def test_fixed_width_wrapping_is_removed_even_inside_the_isa() -> None:
    text = interchange(BODY)
    wrapped = "\n".join(text[i : i + 80] for i in range(0, len(text), 80)) + "\n"
    ic = read(wrapped.encode())
    assert ic.raw == read(text).raw
    assert ic.delimiters.segment == "~"


def test_wrapped_right_after_isa16() -> None:
    text = interchange(BODY)
    wrapped = text[:105] + "\r\n" + text[105:]
    assert read(wrapped).raw == read(text).raw


def test_newline_as_segment_terminator() -> None:
    text = interchange(BODY).replace("~", "\n")
    ic = read(text)
    assert ic.delimiters.segment == "\n"
    assert ic.raw == read(interchange(BODY)).raw
    assert read(text.replace("\n", "\r\n")).raw == ic.raw


def test_any_character_can_terminate_segments() -> None:
    ic = read(interchange(BODY).replace("~", "\x1c"))
    assert ic.delimiters.segment == "\x1c"
    assert [s.id for s in ic][:3] == ["ISA", "GS", "ST"]


def test_truncated_data_keeps_the_fragment_and_flags_it() -> None:
    text = interchange(BODY)
    cut = text[: text.index("SVC") + 9]
    ic = read(cut)
    assert ic.unterminated
    assert ic.raw[-1] == "SVC*HC:99"


def test_bom_and_leading_blank_lines_are_skipped() -> None:
    assert read(b"\xef\xbb\xbf\r\n" + interchange(BODY).encode()).raw[0].startswith("ISA")


def test_latin1_bytes_do_not_break_the_reader() -> None:
    ic = read(interchange(["NM1*QC*1*M\xfcLLER"]).encode("latin-1"))
    assert ic[3].element(3) == "M\xfcLLER"


def test_segment_is_lazy_and_1_based() -> None:
    seg = Segment("CLP*A1*1*100.00**", Delimiters())
    assert seg._elements is None
    assert seg.id == "CLP"
    assert seg.element(1) == "A1"
    assert seg.element(4) == ""
    assert seg.element(99) == ""
    assert len(seg) == 5
    assert seg.elements() == ["A1", "1", "100.00", "", ""]
    rep = Segment("HI*BK:0340^BF:V7389", Delimiters())
    assert rep.repetitions(1) == ["BK:0340", "BF:V7389"]
    assert rep.value(1, 2, 2) == "V7389"
    assert rep.value(1, 3) == ""
    assert rep.components(1, 3) == []


def test_isa_elements_are_not_split_further() -> None:
    ic = read(interchange(BODY))
    assert ic[0].components(16) == [":"]
    assert ic[0].repetitions(11) == ["^"]
    assert ic.isa[6] == "SENDER         "


def test_segments_are_built_on_demand_and_cached() -> None:
    ic = read(interchange(BODY))
    assert ic[2] is ic[2]
    assert ic[-1].id == "IEA"
    assert len(list(ic)) == len(ic)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "023"),
        (b"   \r\n", "023"),
        (b"GS*HP*X~", "022"),
        (b"ISA", "023"),
        (b"ISAA00", "026"),
        (ISA[:60].encode(), "023"),
        (ISA.replace(":~", "A~").encode(), "027"),
        (ISA.replace(":~", ":A").encode() + b"GS*X", "004"),
        (ISA.replace("*0*T*", "*0*T*X*").encode(), "027"),  # ISA16 would be "X"
    ],
)
def test_unreadable_isa_raises_x12error_with_ta1_code(data: bytes, code: str) -> None:
    with pytest.raises(X12Error) as info:
        read(data)
    assert info.value.code == code
    assert info.value.segment_index == 0
    assert code in str(info.value)
