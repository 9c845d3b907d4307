"""Streaming X12: block by block, the same remittances, sets and envelope findings as the
whole-text reader, with memory bounded by one transaction set, not by the file."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.formats.x12.test_x12_properties import NASTY, SEGMENTS
from tests.formats.x12.x12_corpus import corpus_files, file_id, interchange, synthetic_835

from isthmus.formats.x12 import X12Error, check_envelope, parse_835, read
from isthmus.formats.x12.stream import TransactionSet, X12Stream, blocks

FILES = corpus_files("*/*")


def cut(data: bytes, size: int) -> list[bytes]:
    return [data[k : k + size] for k in range(0, len(data), size)]


def same_as_whole(data: bytes, size: int) -> None:
    """Streamed in blocks of ``size`` bytes, ``data`` reads as it does whole."""
    whole, env, ic = parse_835(data), check_envelope(read(data)), read(data)
    s = X12Stream(cut(data, size))
    assert list(s.remittances()) == list(whole.remittances)
    assert s.envelope == env
    s = X12Stream(cut(data, size))
    sets = list(s.transactions())
    assert s.envelope == env
    spans = [t for g in env.groups for t in g.transactions]
    assert [(t.start, t.id, t.control) for t in sets] == [(t.start, t.id, t.control) for t in spans]
    assert [list(t.segments) for t in sets] == [ic.raw[t.start : t.stop] for t in spans]


@pytest.mark.parametrize("path", FILES, ids=file_id)
@pytest.mark.parametrize("size", [1, 7, 1 << 20])
def test_corpus_streams_as_it_reads_whole(path, size: int) -> None:  # type: ignore[no-untyped-def]
    same_as_whole(path.read_bytes(), size)


LAYOUTS = st.sampled_from(["~", "~\n", "~\r\n", "\n", "\r\n"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(SEGMENTS), max_size=25),
    st.lists(st.text(alphabet=st.sampled_from(NASTY), max_size=12), max_size=4),
    LAYOUTS,
    st.integers(1, 300),
    st.booleans(),
    st.integers(0, 40),
)
def test_plausible_interchanges_stream_as_they_read_whole(
    body: list[str], junk: list[str], layout: str, size: int, wrap: bool, drop: int
) -> None:
    text = interchange([*body, *junk], body).replace("~", layout)
    if wrap and layout == "~":  # fixed-width lines, even through the ISA
        text = "\n".join(text[k : k + 80] for k in range(0, len(text), 80))
    data = text.encode("utf-8")[: len(text) - drop]  # and cut short, sometimes
    try:
        read(data)
    except X12Error as exc:
        with pytest.raises(X12Error) as streamed:
            X12Stream(cut(data, size))
        assert str(streamed.value) == str(exc)
        return
    same_as_whole(data, size)


def test_an_unusable_isa_raises_as_read_does() -> None:
    for data in (b"", b"  \r\n", b"GS*HP~", interchange([]).encode()[:50]):
        with pytest.raises(X12Error) as whole:
            read(data)
        with pytest.raises(X12Error) as streamed:
            X12Stream(cut(data, 3) or [b""])
        assert (streamed.value.code, str(streamed.value)) == (whole.value.code, str(whole.value))


def test_bytes_that_are_not_utf8_fall_back_to_latin1() -> None:
    data = interchange(["N1*PR*CAF\xc9 PAYER", "BPR*I*0*C*CHK************20240101"])
    raw = data.encode("latin-1")
    s = X12Stream(cut(raw, 5))
    [rem] = list(s.remittances())
    assert rem.payer is not None and rem.payer.name == "CAF\xc9 PAYER"
    assert s.envelope is not None and s.envelope.findings == []


def test_a_stream_is_read_once() -> None:
    s = X12Stream([interchange([]).encode()])
    list(s.transactions())
    with pytest.raises(RuntimeError):
        list(s.remittances())


def test_a_set_alone_reads_as_in_its_interchange() -> None:
    data = b"".join(synthetic_835(3, 4))
    s = X12Stream(blocks(io.BytesIO(data), 100))
    sets = list(s.transactions())
    assert [t.control for t in sets] == ["0001", "0002", "0003"]
    whole = parse_835(data)
    for t, rem in zip(sets, whole.remittances, strict=True):
        assert isinstance(t, TransactionSet)
        alone = parse_835(t.interchange(s.isa_text, s.delimiters))
        assert alone.findings == ()
        assert alone.remittances[0].claims == rem.claims
        assert alone.remittances[0].amount == rem.amount


def regrouped(gen: Iterator[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    """The generated interchange as a file read in blocks of ``size`` bytes would give it."""
    buf = b""
    for b in gen:
        buf += b
        while len(buf) >= size:
            yield buf[:size]
            buf = buf[size:]
    if buf:
        yield buf


def streamed_peak(sets: int, claims: int) -> tuple[int, int]:
    """(bytes, tracemalloc peak) of streaming a generated 835 read in 16 KiB blocks."""
    size = sum(map(len, synthetic_835(sets, claims)))
    tracemalloc.start()
    try:
        s = X12Stream(regrouped(synthetic_835(sets, claims), 16 << 10))
        count = 0
        for rem in s.remittances():
            count += len(rem.claims)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == sets * claims and s.envelope is not None and s.envelope.findings == []
    return size, peak


def test_memory_is_bounded_by_a_set_not_by_the_file() -> None:
    small, small_peak = streamed_peak(150, 10)
    large, large_peak = streamed_peak(450, 10)
    assert large > 1_000_000
    # three times the data: the peak grows by the envelope outline (a few hundred bytes a
    # set), not with the data read; a whole read holds every segment of the file at once
    assert large_peak - small_peak < (large - small) / 5, (small_peak, large_peak)
    assert large_peak < large / 2, (large_peak, large)
