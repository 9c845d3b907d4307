"""Property tests: no input makes the parser raise anything but HL7ParseError, and any
value survives escape -> message -> parse -> value() unchanged, whatever the delimiters."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.formats.hl7v2 import (
    EncodingChars,
    HL7ParseError,
    Message,
    ack_code,
    build_ack,
    escape,
    parse_batch,
    parse_message,
    recover_control_id,
    split_messages,
    unescape,
)
from isthmus.formats.hl7v2.text import segment_lines

NOW = datetime(2024, 1, 1, tzinfo=UTC)
NASTY = "MSHPIDFT1BTS|^~\\&#X0D9aF\\.br\r\n \t\x0b\x1c\ufeff\xe9"
PATHS = ["MSH-9.2", "MSH-10", "PID-3(2).1.2", "FT1(2)-11.1", "ZZZ-1", "PID-3(9).9.9"]


def headered() -> st.SearchStrategy[str]:
    """Text that starts like a message, so fuzzing gets past the first check."""
    body = st.text(alphabet=st.sampled_from(NASTY), max_size=200)
    prefix = st.sampled_from(
        ["MSH|^~\\&|", "MSH|^~\\&#|", "\ufeffMSH|", "MSH#*!@$#", "MSH|^~", "BHS|^~\\&\rMSH|^~\\&|"]
    )
    return st.builds(lambda p, b: p + b, prefix, body)


def exercise(msg: Message) -> None:
    for path in PATHS:
        msg.get(path)
    for prop in (
        "control_id",
        "message_type",
        "trigger_event",
        "structure",
        "version",
        "processing_id",
        "sending_application",
        "sending_facility",
        "receiving_application",
        "receiving_facility",
        "timestamp",
        "raw",
    ):
        assert isinstance(getattr(msg, prop), str)
    for seg in msg.segments:
        seg.breakout()
        for n in range(len(seg) + 2):
            seg.field(n)
            seg.repetitions(n)
            seg.tree(n)
            for r in (1, 2):
                seg.components(n, r)
                seg.subcomponents(n, 2, r)
                seg.value(n, 2, 2, r)
    msg.segments_named("PID")
    ack = build_ack(msg, "AE", error=HL7ParseError(207, "x"), now=NOW)
    assert ack_code(ack)[1] == msg.control_id


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300), headered()))
def test_any_input_parses_or_raises_hl7_parse_error(data: bytes | str) -> None:
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    try:
        msg = parse_message(data)
    except HL7ParseError as exc:
        assert 100 <= exc.code <= 207 and exc.text
        ack = build_ack(None, "AR", error=exc, original=raw, now=NOW)
        assert ack_code(ack)[0] == "AR"
    else:
        exercise(msg)
    recover_control_id(raw)
    batch = parse_batch(data)
    for m in batch.messages:
        exercise(m)
    try:
        split_messages(data)
    except HL7ParseError as exc:
        assert exc.code == 100


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("\\FSTREPX0123456789abcdefZ.br|^~&#"), max_size=40))
def test_unescape_never_raises(value: str) -> None:
    assert isinstance(unescape(value, EncodingChars(truncation="#")), str)


DELIMS = "|^~\\&#!@$%*+/:;?=<>"


@st.composite
def encodings(draw: st.DrawFn) -> EncodingChars:
    chars = draw(st.lists(st.sampled_from(DELIMS), min_size=6, max_size=6, unique=True))
    truncation = chars[5] if draw(st.booleans()) else ""
    return EncodingChars(chars[0], chars[1], chars[2], chars[3], chars[4], truncation)


VALUES = st.text(
    alphabet=st.one_of(st.sampled_from(DELIMS + "\r\n \\XF0D"), st.characters(codec="utf-8")),
    max_size=12,
)
# field -> repetitions -> components -> subcomponents
FIELDS = st.lists(
    st.lists(
        st.lists(st.lists(VALUES, min_size=1, max_size=3), min_size=1, max_size=3),
        min_size=1,
        max_size=2,
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(encodings(), FIELDS, st.sampled_from(["\r", "\n", "\r\n"]), st.booleans())
def test_escaped_values_round_trip(
    enc: EncodingChars, fields: list[list[list[list[str]]]], eol: str, as_bytes: bool
) -> None:
    def write(field: list[list[list[str]]]) -> str:
        return enc.repetition.join(
            enc.component.join(enc.subcomponent.join(escape(v, enc) for v in c) for c in r)
            for r in field
        )

    msh = enc.field.join(["MSH", enc.msh2, "APP", "FAC", "", "", "", "", "ADT^A01", "ID1"])
    zzz = enc.field.join(["ZZZ", *(write(f) for f in fields), "END"])
    text = msh + eol + zzz + eol
    msg = parse_message(text.encode("utf-8") if as_bytes else text)
    assert msg.encoding == enc
    seg = msg.segment("ZZZ")
    assert seg is not None
    assert len(seg) == len(fields) + 1
    assert seg.value(len(fields) + 1) == "END"
    breakout = seg.breakout()
    for n, field in enumerate(fields, 1):
        tree = seg.tree(n)
        assert breakout[n - 1] == tree
        if write(field) == "":
            assert tree == []
            continue
        assert tree == field
        for r, rep in enumerate(field, 1):
            for c, comp in enumerate(rep, 1):
                assert seg.subcomponents(n, c, r) == ([] if comp == [""] else comp)
                for s, value in enumerate(comp, 1):
                    assert seg.value(n, c, s, r) == value
                    assert msg.get(f"ZZZ-{n}({r}).{c}.{s}") == value


@given(st.text(alphabet=st.sampled_from("AB|\r\n \t\x0b\x0c\x1c\x1d\u2003\u3000"), max_size=40))
@settings(max_examples=500)
def test_segment_lines_are_the_non_blank_lines_in_order(text: str) -> None:
    # the quick test for blank lines (one search) must decide as reading every line would
    normal = text.replace("\r\n", "\r").replace("\n", "\r").strip()
    assert segment_lines(text) == [s for s in normal.split("\r") if s and not s.isspace()]
