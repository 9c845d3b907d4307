"""Property tests: no input makes the X12 layer raise anything but X12Error, and
well-formed segments survive serialize -> read unchanged, whatever the delimiters."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.formats.x12.x12_corpus import ISA, interchange

from isthmus.formats.x12 import (
    Delimiters,
    X12Error,
    build_999,
    build_ta1,
    check_envelope,
    parse_835,
    parse_837,
    read,
    read_remittance,
    recover_isa,
    ta1_note,
)
from isthmus.formats.x12.reader import serialize

AT = datetime(2024, 1, 1, tzinfo=UTC)
NASTY = "ISAGSTSECLPCASVC*~:^>\r\n 0123456789.-ABZ\x00\xe9\u2019"
SEGMENTS = [
    "BPR*I*10*C*CHK************20240101",
    "CLP*A*22*-10*-10**12*B",
    "CAS*CO*45*1.5*2*A*x",
    "SVC*HC>1:2*1*1",
    "PLB*1*2*WO:X*1*CS*abc",
    "N1*PE*X*XX*1",
    "LX*1",
    "ST*835*1",
    "SE*2*1",
    "GE*1",
    "GS*HP",
    "IEA*1",
    "DTM*405*20241399",
    "HL*1**20*1",
    "NM1*85*2*X*****XX*1",
    "CLM*P*1***11:B:1",
    "SV1*HC:1*x",
    "SV2*0450**1",
    "AMT*B6*.",
    "LQ*HE",
    "REF*F8",
    "TA1*1",
    "REF",
    "DTM",
    "AMT",
    "LQ",
    "CAS",
    "ISAX*1",
    "IEAB",
    "TA1X",
]


def exercise(data: bytes | str) -> None:
    """Everything a caller may do with untrusted data; only X12Error may escape."""
    try:
        ic = read(data)
    except X12Error as exc:
        assert exc.code and exc.text
        build_ta1(recover_isa(data), exc.code, at=AT)
        return
    env = check_envelope(ic)
    remits = parse_835(ic)
    # parse_835 checks the envelope while it reads, in one pass: the same findings and
    # the same remittances as the envelope walk followed by each set read on its own
    assert list(remits.findings[: len(env.findings)]) == env.findings
    sets = [(g, t) for g in env.groups for t in g.transactions if t.id == "835"]
    assert [read_remittance(ic, t, g.control, g.version) for g, t in sets] == list(
        remits.remittances
    )
    claims = parse_837(ic)
    for seg in ic:
        seg.components(1)
        seg.value(2, 2, 2)
    findings = [*env.findings, *remits.findings, *claims.findings]
    ack = build_999(ic, findings, at=AT)
    assert check_envelope(read(ack)).findings == []
    build_ta1(ic.isa, ta1_note(findings), at=AT, delimiters=ic.delimiters)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_x12error(data: bytes) -> None:
    exercise(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(NASTY), max_size=300), st.integers(0, 106))
def test_mangled_isa_raise_only_x12error(body: str, cut: int) -> None:
    exercise(ISA[:cut] + body)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(SEGMENTS), max_size=30),
    st.lists(st.text(alphabet=st.sampled_from(NASTY), max_size=12), max_size=5),
)
def test_plausible_interchanges_raise_nothing(body: list[str], junk: list[str]) -> None:
    text = interchange([*body, *junk], body)
    exercise(text)
    exercise(text.encode("utf-8"))


DELIMS = st.sampled_from(
    [
        Delimiters("*", "^", ":", "~"),
        Delimiters("|", "", ">", "\n"),
        Delimiters("\x1d", "\x1f", "\x1e", "\x1c"),
        Delimiters("+", "!", "}", "'"),
    ]
)


@settings(max_examples=200, deadline=None)
@given(DELIMS, st.data())
def test_generated_segments_round_trip(d: Delimiters, data: st.DataObject) -> None:
    reserved = {d.element, d.component, d.segment, "\r", "\n"} | ({d.repetition} - {""})
    alphabet = st.characters(blacklist_characters="".join(reserved), blacklist_categories=("Cs",))
    seg_id = st.from_regex(r"[A-Z][A-Z0-9]{1,2}", fullmatch=True).filter(
        lambda s: s not in ("ISA", "IEA", "GS", "GE", "ST", "SE")
    )
    element = st.text(alphabet=alphabet, max_size=10)
    segs = data.draw(
        st.lists(st.tuples(seg_id, st.lists(element, min_size=1, max_size=8)), max_size=20)
    )
    isa = (
        ISA[:-3]
        .replace("*", d.element)
        .replace("^", d.repetition or "U")
        .replace("00501", "00501" if d.repetition else "00401")
    )
    isa += d.element + d.component
    body = [[sid, *els] for sid, els in segs]
    text = isa + d.segment + serialize(body, d)
    ic = read(text)
    assert ic.delimiters == d
    assert len(ic) == len(body) + 1
    for seg, (sid, els) in zip(list(ic)[1:], segs, strict=True):
        assert seg.id == sid
        assert seg.elements() == els
        for n, v in enumerate(els, start=1):
            assert seg.element(n) == v
            assert d.component.join(seg.components(n)) == v
