"""Parser behaviour: delimiters, line endings, escapes, paths and refusals."""

from __future__ import annotations

import hl7
import pytest

from isthmus.formats.hl7v2 import (
    DEFAULT_ENCODING,
    EncodingChars,
    HL7ParseError,
    escape,
    parse_message,
    parse_path,
    unescape,
)

MSG = (
    "MSH|^~\\&|LAB|HOSP|HUB|FIN|20240101120000||DFT^P03^DFT_P03|CTL-1|P|2.5\r"
    "PID|1||MRN1^^^H^MR~SSN9^^^US^SS||DOE^JANE\r"
    "FT1|1|||20240101||CG|99213^Visit^CPT|||1|100.00&USD\r"
    "FT1|2|||20240101||CG|99214^Visit \\T\\ more^CPT|||2|50.00&USD\r"
)


def test_lf_crlf_mixed_and_blank_lines_are_the_same_message() -> None:
    base = parse_message(MSG)
    for text in (
        MSG.replace("\r", "\n"),
        MSG.replace("\r", "\r\n"),
        MSG.replace("\r", "\n", 2).replace("\r", "\r\n\r\n  \n"),
        "\n\n  " + MSG + "\r\n \t\r\n",
    ):
        msg = parse_message(text)
        assert msg.raw == base.raw
        assert msg.segment_names == ["MSH", "PID", "FT1", "FT1"]


def test_bom_bytes_and_latin1_fallback() -> None:
    msg = parse_message(b"\xef\xbb\xbf" + MSG.encode())
    assert msg.control_id == "CTL-1"
    latin = parse_message(MSG.replace("DOE", "D\xd6E").encode("latin-1"))
    assert latin.get("PID-5") == "D\xd6E"
    utf8 = parse_message(MSG.replace("DOE", "D\xd6E").encode("utf-8"))
    assert utf8.get("PID-5") == "D\xd6E"


def test_raw_is_cr_terminated_and_reparses_with_python_hl7() -> None:
    msg = parse_message(MSG.replace("\r", "\n"))
    assert msg.raw == MSG
    assert str(hl7.parse(msg.raw).segment("PID")[3]) == "MRN1^^^H^MR~SSN9^^^US^SS"


def test_paths_and_occurrences() -> None:
    msg = parse_message(MSG)
    assert msg.get("PID-3") == "MRN1"
    assert msg.get("PID-3(2)") == "SSN9"
    assert msg.get("PID-3(2).4") == "US"
    assert msg.get("FT1-11") == "100.00"
    assert msg.get("FT1-11.1.2") == "USD"
    assert msg.get("FT1(2)-11.1.1") == "50.00"
    assert msg.get("FT1(2)-7.2") == "Visit & more"
    assert msg.get("FT1(3)-1", "?") == "?"
    assert msg.get("ZZZ-1", "?") == "?"
    assert msg.get("PID-99") == ""
    assert msg.segment("FT1", 2) is msg.segments_named("FT1")[1]
    assert msg.segment("FT1", 0) is None
    assert parse_path("FT1(2)-11(3).1.2") == ("FT1", 2, 11, 3, 1, 2)
    for bad in ("PID", "pid-3", "PID-x", "PID-3..1", "PID3"):
        with pytest.raises(ValueError, match="not an HL7 field path"):
            parse_path(bad)


def test_msh_numbering_and_header_properties() -> None:
    msg = parse_message(MSG)
    msh = msg.segment("MSH")
    assert msh is not None
    assert [msh.field(i) for i in (1, 2, 3, 10)] == ["|", "^~\\&", "LAB", "CTL-1"]
    assert msh.value(2) == "^~\\&"  # MSH-2 is never split or unescaped
    assert msh.repetitions(2) == ["^~\\&"]
    assert len(msh) == 12
    assert (msg.message_type, msg.trigger_event, msg.structure) == ("DFT", "P03", "DFT_P03")
    assert (msg.sending_application, msg.sending_facility) == ("LAB", "HOSP")
    assert (msg.receiving_application, msg.receiving_facility) == ("HUB", "FIN")
    assert (msg.timestamp, msg.processing_id, msg.version) == ("20240101120000", "P", "2.5")


def test_segment_accessors() -> None:
    pid = parse_message(MSG).segment("PID")
    assert pid is not None
    assert pid.name == "PID" and len(pid) == 5
    assert pid.field(0) == "" and pid.field(6) == ""
    assert pid.repetitions(3) == ["MRN1^^^H^MR", "SSN9^^^US^SS"]
    assert pid.repetitions(2) == []
    assert pid.components(3, 2) == ["SSN9", "", "", "US", "SS"]
    assert pid.components(3, 3) == []
    assert pid.value(5, 2) == "JANE"
    assert pid.value(5, 3) == ""
    assert pid.value(3, 1, 1, 3) == ""
    assert pid.value(1, 1, 2) == ""
    assert pid.tree(3) == [
        [["MRN1"], [""], [""], ["H"], ["MR"]],
        [["SSN9"], [""], [""], ["US"], ["SS"]],
    ]


def test_custom_delimiters() -> None:
    text = "MSH#*!@$#LAB#HOSP#####ADT*A01#C1#P#2.5\rPID#1##A1*B1$sub2*C1!A2#x@F@y@S@z@T@w@E@v@R@u\r"
    msg = parse_message(text)
    assert msg.encoding == EncodingChars("#", "*", "!", "@", "$")
    assert msg.trigger_event == "A01"
    assert msg.get("PID-3.2.2") == "sub2"
    assert msg.get("PID-3(2)") == "A2"
    assert msg.get("PID-4") == "x#y*z$w@v!u"
    assert parse_message(text.replace("\r", "\n")).get("PID-3.3") == "C1"
    # python-hl7 agrees on the structure
    ref = hl7.parse(text)
    assert str(ref.segment("PID")[3]) == msg.segment("PID").field(3)  # type: ignore[union-attr]


def test_truncation_character_v27() -> None:
    msg = parse_message("MSH|^~\\&#|A|B|||||ADT^A01|1|P|2.7\rPID|1||abc\\P\\def")
    assert msg.encoding.truncation == "#"
    assert msg.get("PID-3") == "abc#def"
    # without a declared truncation character \P\ is data, left as written
    assert parse_message("MSH|^~\\&|A\rPID|1||abc\\P\\").get("PID-3") == "abc\\P\\"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\\F\\b", "a|b"),
        ("\\S\\\\T\\\\R\\\\E\\", "^&~\\"),
        ("\\X41\\\\X42\\", "AB"),
        ("\\XC3A9\\", "\xe9"),  # UTF-8 bytes
        ("\\XE9\\", "\xe9"),  # not UTF-8: Latin-1
        ("\\X0D0A\\", "\r\n"),
        ("\\XZZ\\", "\\XZZ\\"),  # bad hex: data
        ("\\X123\\", "\\X123\\"),  # odd length: data
        ("\\X\\", "\\X\\"),
        ("line\\.br\\next", "line\\.br\\next"),  # formatting commands are kept
        ("\\H\\bold\\N\\", "\\H\\bold\\N\\"),
        ("\\Zlocal\\", "\\Zlocal\\"),
        ("\\Q\\", "\\Q\\"),  # unknown
        ("trailing\\", "trailing\\"),  # unterminated
        ("a\\F", "a\\F"),
        ("\\F\\\\", "|\\"),
        ("\\\\", "\\\\"),  # empty sequence
        ("plain", "plain"),
    ],
)
def test_unescape(raw: str, expected: str) -> None:
    assert unescape(raw, DEFAULT_ENCODING) == expected


def test_unescape_matches_python_hl7_for_delimiter_and_hex_escapes() -> None:
    ref = hl7.parse("MSH|^~\\&|A")
    for raw in ("a\\F\\b", "\\S\\x\\T\\y\\R\\z\\E\\", "\\X41\\", "\\X4142\\", "no escape"):
        assert unescape(raw, DEFAULT_ENCODING) == ref.unescape(raw)


def test_escape_all_delimiters_and_line_breaks() -> None:
    assert escape("a|b^c&d~e\\f\rg\nh", DEFAULT_ENCODING) == (
        "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X0D\\g\\X0A\\h"
    )
    enc = EncodingChars(truncation="#")
    assert escape("50#", enc) == "50\\P\\"
    assert escape("50#", DEFAULT_ENCODING) == "50#"


@pytest.mark.parametrize(
    ("text", "code", "segment"),
    [
        ("", 100, "MSH"),
        ("   \r\n", 100, "MSH"),
        ("PID|1\rMSH|^~\\&|A", 100, "MSH"),
        ("BHS|^~\\&|A\rMSH|^~\\&|A", 100, "MSH"),
        ("MSH", 101, "MSH"),
        ("MSH|", 101, "MSH"),
        ("MSH||A|B", 101, "MSH"),
        ("MSH|^~\\&abc|A", 102, "MSH"),  # MSH-2 runs into letters
        ("MSH|^^\\&|A", 102, "MSH"),  # repeated delimiter
        ("MSHA^~\\&|A", 102, "MSH"),  # a letter as field separator
        ("MSH|^~\\&|A\rPID|1\rMSH|^~\\&|B", 100, "MSH"),  # two messages
        ("MSH|^~\\&|A\rBTS|1", 100, "BTS"),
        ("MSH|^~\\&|A\rPI|1", 100, ""),
        ("MSH|^~\\&|A\rpid|1", 100, ""),
        ("MSH|^~\\&|A\rPIDX|1", 100, ""),
        ("MSH|^~\\&|A\r  PID|1", 100, ""),
    ],
)
def test_refusals_carry_code_and_location(text: str, code: int, segment: str) -> None:
    with pytest.raises(HL7ParseError) as info:
        parse_message(text)
    assert info.value.code == code
    assert info.value.location is not None
    assert info.value.location.segment == segment
    assert info.value.text
    assert str(code) in str(info.value)


def test_segment_without_fields_and_z_segments() -> None:
    msg = parse_message("MSH|^~\\&|A\rZPD\rZ01|x^y")
    assert msg.segment_names == ["MSH", "ZPD", "Z01"]
    zpd = msg.segment("ZPD")
    assert zpd is not None and len(zpd) == 0 and zpd.field(1) == ""
    assert msg.get("Z01-1.2") == "y"


def test_laziness_segments_are_not_split_until_read() -> None:
    msg = parse_message(MSG)
    assert msg.control_id == "CTL-1"
    assert all(s is None for s in msg._segs[1:])
    pid = msg.segment("PID")
    assert pid is not None and pid._fields is None
    pid.value(3)
    assert pid._fields is not None
