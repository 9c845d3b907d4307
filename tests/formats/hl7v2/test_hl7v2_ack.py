"""Acknowledgements (HL7 v2.5.1 2.9.2, MSA, ERR): built, then read back by both parsers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import hl7
import pytest

from isthmus.formats.hl7v2 import (
    ErrorLocation,
    HL7ParseError,
    ack_code,
    build_ack,
    parse_message,
    recover_control_id,
)

NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
MSG = parse_message(
    "MSH|^~\\&|LAB^1.2^ISO|HOSP|HUB|FIN|20240101||DFT^P03^DFT_P03|CTL-1|T|2.5.1\r"
    "FT1|1|||20240101||CG|99213|||1|abc&USD\r"
)


def test_aa() -> None:
    ack = build_ack(MSG, "AA", now=NOW)
    assert ack == (
        b"MSH|^~\\&|ISTHMUS|ISTHMUS|LAB^1.2^ISO|HOSP|20240506070809+0000||ACK^P03^ACK|"
        b"ACKCTL-1|T|2.5.1\rMSA|AA|CTL-1\r"
    )
    assert ack_code(ack) == ("AA", "CTL-1")
    parsed = parse_message(ack)
    assert parsed.segment("ERR") is None
    assert (parsed.receiving_application, parsed.get("MSH-5.2")) == ("LAB", "1.2")
    ref = hl7.parse(ack.decode())
    assert str(ref.segment("MSA")[2]) == "CTL-1"
    assert str(ref.segment("MSH")[9]) == "ACK^P03^ACK"


@pytest.mark.parametrize("code", ["AE", "AR"])
def test_error_acks_carry_err(code: str) -> None:
    error = HL7ParseError(102, "FT1-11 'abc' is not a number", ErrorLocation("FT1", 1, 11, 1, 1))
    ack = build_ack(MSG, code, error=error, now=NOW, control_id="A1")  # type: ignore[arg-type]
    assert ack_code(ack) == (code, "CTL-1")
    msg = parse_message(ack)
    assert msg.control_id == "A1"
    assert msg.get("ERR-2") == "FT1"
    assert msg.get("ERR-2.2") == "1"
    assert msg.get("ERR-2.3") == "11"
    assert msg.get("ERR-2.4") == ""  # ERL-4 is the field repetition
    assert msg.get("ERR-2.5") == "1"
    assert msg.get("ERR-3") == "102"
    assert msg.get("ERR-3.2") == "Data type error"
    assert msg.get("ERR-3.3") == "HL70357"
    assert msg.get("ERR-4") == "E"
    assert msg.get("ERR-8") == "FT1-11 'abc' is not a number"
    assert msg.get("MSA-3") == "FT1-11 'abc' is not a number"
    ref = hl7.parse(ack.decode())
    assert str(ref.segment("ERR")[3]) == "102^Data type error^HL70357"


def test_values_are_escaped() -> None:
    ack = build_ack(
        MSG, "AE", text="bad | value ^ with & delimiters~\\", now=NOW, sending_application="A|B"
    )
    msg = parse_message(ack)
    assert len(msg.segment("ERR")) == 8  # type: ignore[arg-type]
    assert msg.get("ERR-8") == "bad | value ^ with & delimiters~\\"
    assert msg.sending_application == "A|B"
    assert msg.get("ERR-3") == "207"


def test_uses_the_senders_delimiters() -> None:
    original = parse_message("MSH#*!@$#APP#FAC#####ADT*A01#X*9#P#2.5\r")
    ack = build_ack(original, "AA", now=NOW)
    assert ack.startswith(b"MSH#*!@$#ISTHMUS#ISTHMUS#APP#FAC#")
    assert ack_code(ack) == ("AA", "X*9")
    assert b"#ACKX@S@9#" in ack  # derived ID, escaped with the sender's escape character
    assert parse_message(ack).control_id == "ACKX*9"


def test_sender_swap_when_identity_not_given() -> None:
    ack = build_ack(MSG, "AA", now=NOW, sending_application=None, sending_facility=None)
    msg = parse_message(ack)
    assert (msg.sending_application, msg.sending_facility) == ("HUB", "FIN")
    assert (msg.receiving_application, msg.receiving_facility) == ("LAB", "HOSP")


def test_ack_for_unparseable_input() -> None:
    raw = b"MSH|^~\\&|LAB|HOSP|HUB|FIN|20240101||ADT^A01|C-77|P|2.3\rPI|broken\r"
    with pytest.raises(HL7ParseError) as info:
        parse_message(raw)
    ack = build_ack(None, "AR", error=info.value, original=raw, now=NOW)
    assert ack_code(ack) == ("AR", "C-77")
    msg = parse_message(ack)
    assert (msg.trigger_event, msg.version, msg.receiving_application) == ("A01", "2.3", "LAB")
    assert msg.get("ERR-3") == "100"
    bare = build_ack(None, "AR", now=NOW)
    assert ack_code(bare) == ("AR", "")
    assert parse_message(bare).version == "2.5"


def test_control_id_derivation() -> None:
    long_id = "X" * 30
    msg = parse_message(f"MSH|^~\\&|A|B|C|D|1||ADT^A01|{long_id}|P|2.5")
    one = parse_message(build_ack(msg, "AA", now=NOW)).control_id
    assert one == parse_message(build_ack(msg, "AA", now=NOW)).control_id
    assert len(one) <= 20 and one != "ACK" + long_id
    noid = parse_message("MSH|^~\\&|A|B|C|D|1||ADT^A01||P|2.5")
    later = parse_message(build_ack(noid, "AA", now=NOW + timedelta(seconds=1))).control_id
    assert later != parse_message(build_ack(noid, "AA", now=NOW)).control_id


def test_timestamp_keeps_offset() -> None:
    tz = timezone(timedelta(hours=2))
    ack = parse_message(build_ack(MSG, "AA", now=datetime(2024, 1, 2, 3, 4, 5, tzinfo=tz)))
    assert ack.timestamp == "20240102030405+0200"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"MSH|^~\\&|A|B|C|D|1||ADT^A01|C-1|P|2.5\rXX", "C-1"),
        (b"\xef\xbb\xbf\nMSH|^~\\&|A|B|C|D|1||ADT^A01|C-2", "C-2"),
        (b"\x0bMSH|^~\\&|A|B|C|D|1||ADT^A01|C\\T\\3|P\x1c\r", "C&3"),
        (b"MSH|^^^^|A|B|C|D|1||ADT^A01|C-4|P", "C-4"),  # unusable MSH-2
        (b"MSH#^~\\&#A#B#C#D#1##ADT^A01#C-5#P", "C-5"),
        (b"MSH|^~\\&|A|B", ""),
        (b"garbage", ""),
        (b"", ""),
        (b"MSH", ""),
        (b"MSH|", ""),
        (b"\xff\xfeMSH|^~\\&|A|B|C|D|1||X|\xe9|P", "\xe9"),
    ],
)
def test_recover_control_id(data: bytes, expected: str) -> None:
    assert recover_control_id(data) == expected


def test_ack_code_needs_msa() -> None:
    with pytest.raises(HL7ParseError):
        ack_code(b"MSH|^~\\&|A|B|C|D|1||ACK|1|P|2.5\r")
