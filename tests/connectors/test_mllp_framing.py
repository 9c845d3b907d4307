"""MLLP framing, tested with feed_data only (no sockets), as python-hl7's tests/test_mllp.py."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.connectors.mllp_framing import Frame, FrameError, MllpFramer, frame

MSG = b"MSH|^~\\&|EPIC|HOSP|ISTHMUS|FIN|202401011200||ADT^A01|MSG00001|P|2.5.1\rPID|1||123\r"
MSG2 = b"MSH|^~\\&|EPIC|HOSP|ISTHMUS|FIN|202401011200||DFT^P03|MSG00002|P|2.5.1\rFT1|1\r"


def payloads(frames: list[Frame]) -> list[bytes]:
    assert all(f.ok for f in frames), [f.reason for f in frames]
    return [f.payload for f in frames]


def feed_all(framer: MllpFramer, *chunks: bytes) -> list[Frame]:
    out: list[Frame] = []
    for chunk in chunks:
        out.extend(framer.feed_data(chunk))
    return out


def test_frame_wraps_payload() -> None:
    assert frame(b"abc") == b"\x0babc\x1c\x0d"


@pytest.mark.parametrize("bad", [b"a\x0bb", b"a\x1cb"])
def test_frame_refuses_control_bytes_in_payload(bad: bytes) -> None:
    with pytest.raises(ValueError, match="must not contain"):
        frame(bad)


def test_one_frame_in_one_read() -> None:
    assert payloads(MllpFramer().feed_data(frame(MSG))) == [MSG]


def test_several_frames_in_one_read() -> None:
    data = frame(MSG) + frame(MSG2) + frame(MSG)
    assert payloads(MllpFramer().feed_data(data)) == [MSG, MSG2, MSG]


def test_frame_split_byte_by_byte() -> None:
    framer = MllpFramer()
    data = frame(MSG) + frame(MSG2)
    out = feed_all(framer, *(data[i : i + 1] for i in range(len(data))))
    assert payloads(out) == [MSG, MSG2]
    assert framer.buffered == 0


def test_split_between_fs_and_cr_delivers_once_without_junk() -> None:
    framer = MllpFramer()
    data = frame(MSG)
    assert payloads(framer.feed_data(data[:-1])) == [MSG]  # delivered at FS
    assert framer.feed_data(data[-1:]) == []  # the CR is consumed, not junk
    assert payloads(framer.feed_data(frame(MSG2))) == [MSG2]


def test_partial_frame_waits_for_more() -> None:
    framer = MllpFramer()
    data = frame(MSG)
    assert framer.feed_data(data[:10]) == []
    assert framer.feed_data(data[10:40]) == []
    assert payloads(framer.feed_data(data[40:])) == [MSG]


def test_empty_payload_is_a_frame() -> None:
    assert payloads(MllpFramer().feed_data(b"\x0b\x1c\x0d")) == [b""]


def test_fs_without_cr_is_accepted() -> None:
    framer = MllpFramer()
    assert payloads(framer.feed_data(b"\x0babc\x1c")) == [b"abc"]
    # the next block may follow the FS directly
    assert payloads(framer.feed_data(b"\x0bdef\x1c\x0bghi\x1c\x0d")) == [b"def", b"ghi"]


def test_whitespace_between_frames_is_silent() -> None:
    data = b"\r\n" + frame(MSG) + b"\n\n  \r\n" + frame(MSG2) + b"\n"
    framer = MllpFramer()
    assert payloads(framer.feed_data(data)) == [MSG, MSG2]
    assert framer.feed_eof() == []


def test_junk_before_start_block_is_skipped_and_reported_once() -> None:
    framer = MllpFramer()
    out = feed_all(framer, b"GET / HTTP/1.1\r\n", b"Host: x\r\n\r\n", frame(MSG))
    assert [f.error for f in out] == [FrameError.JUNK, None]
    junk = out[0]
    assert junk.payload.startswith(b"GET / HTTP/1.1")
    assert junk.size == len(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert junk.reason.startswith("junk: ")
    assert out[1].payload == MSG


def test_junk_head_is_bounded() -> None:
    framer = MllpFramer(head_bytes=16)
    out = feed_all(framer, b"x" * 100_000, b"y" * 100_000, frame(b"ok"))
    assert out[0].error is FrameError.JUNK
    assert out[0].payload == b"x" * 16
    assert out[0].size == 200_000
    assert framer.buffered == 0
    assert out[1].payload == b"ok"


def test_junk_at_eof_is_reported() -> None:
    framer = MllpFramer()
    assert framer.feed_data(frame(b"a") + b"trailing") == [Frame(b"a")]
    (junk,) = framer.feed_eof()
    assert junk.error is FrameError.JUNK
    assert junk.payload == b"trailing"


def test_oversize_frame_reports_head_then_recovers() -> None:
    framer = MllpFramer(max_message_bytes=1000, head_bytes=100)
    big = b"MSH|" + b"A" * 5000
    out = feed_all(framer, frame(big) + frame(b"small"))
    assert [f.error for f in out] == [FrameError.OVERSIZE, None]
    assert out[0].payload == big[:100]
    assert out[0].size == len(big)
    assert "5004 bytes exceeds the 1000-byte limit" in out[0].reason
    assert out[1].payload == b"small"


def test_oversize_frame_is_not_buffered_across_reads() -> None:
    framer = MllpFramer(max_message_bytes=10_000, head_bytes=64)
    assert framer.feed_data(b"\x0b" + b"A" * 9_000) == []
    peak = 0
    for _ in range(100):  # 1 MB more of the same block
        assert framer.feed_data(b"B" * 10_000) == []
        peak = max(peak, framer.buffered)
    assert peak <= 64
    (f,) = framer.feed_data(b"C\x1c\x0d")
    assert f.error is FrameError.OVERSIZE
    assert f.payload == b"A" * 64
    assert f.size == 9_000 + 1_000_000 + 1


def test_frame_exactly_at_limit_is_fine() -> None:
    framer = MllpFramer(max_message_bytes=10)
    assert payloads(feed_all(framer, b"\x0b01234", b"56789\x1c\x0d")) == [b"0123456789"]
    (f,) = framer.feed_data(b"\x0b0123456789X\x1c\x0d")
    assert f.error is FrameError.OVERSIZE


def test_start_block_inside_unterminated_frame() -> None:
    framer = MllpFramer()
    out = feed_all(framer, b"\x0bMSH|half a mess", b"age\x0b" + MSG + b"\x1c\x0d")
    assert [f.error for f in out] == [FrameError.BROKEN, None]
    assert out[0].payload == b"MSH|half a message"
    assert out[0].reason.startswith("broken: ")
    assert out[1].payload == MSG


def test_start_block_inside_oversize_frame() -> None:
    framer = MllpFramer(max_message_bytes=10, head_bytes=4)
    out = framer.feed_data(b"\x0b" + b"Z" * 50 + frame(b"ok"))
    assert [f.error for f in out] == [FrameError.OVERSIZE, None]
    assert "broken" in out[0].reason
    assert out[1].payload == b"ok"


def test_truncated_frame_at_eof() -> None:
    framer = MllpFramer()
    assert framer.feed_data(b"\x0bMSH|unfinished") == []
    (f,) = framer.feed_eof()
    assert f.error is FrameError.TRUNCATED
    assert f.payload == b"MSH|unfinished"
    assert framer.feed_eof() == []


def test_reason_never_contains_payload() -> None:
    framer = MllpFramer(max_message_bytes=8)
    secret = b"PID|1||SMITH^JOHN"
    out = feed_all(framer, b"junk" + secret, frame(secret), b"\x0b" + secret + b"\x0b")
    assert out
    for f in out:
        assert b"SMITH" not in f.reason.encode()


payload_st = st.binary(max_size=300).map(lambda b: b.replace(b"\x0b", b"").replace(b"\x1c", b""))


@settings(max_examples=300, deadline=None)
@given(msgs=st.lists(payload_st, max_size=8), cuts=st.lists(st.integers(0, 10_000), max_size=20))
def test_any_split_yields_the_same_payloads(msgs: list[bytes], cuts: list[int]) -> None:
    data = b"".join(frame(m) for m in msgs)
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    framer = MllpFramer()
    out = feed_all(framer, *chunks)
    assert payloads(out) == msgs
    assert framer.feed_eof() == []


@settings(max_examples=200, deadline=None)
@given(
    msgs=st.lists(payload_st, min_size=1, max_size=5),
    noise=st.binary(min_size=1, max_size=50),
    cut=st.integers(0, 10_000),
)
def test_noise_never_loses_the_following_frames(msgs: list[bytes], noise: bytes, cut: int) -> None:
    # Whatever precedes them, the complete frames after the last start block survive.
    data = noise + b"\x1c\x0d" + b"".join(frame(m) for m in msgs)
    cut %= len(data) + 1
    framer = MllpFramer()
    out = feed_all(framer, data[:cut], data[cut:])
    good = [f.payload for f in out if f.ok]
    assert good[-len(msgs) :] == msgs
