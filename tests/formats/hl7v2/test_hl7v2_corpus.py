"""Differential tests against python-hl7 over every corpus file, plus golden values."""

from __future__ import annotations

from pathlib import Path

import hl7
import pytest
from hl7.exceptions import ParseException
from tests.formats.hl7v2.hl7v2_corpus import (
    CORPUS,
    FILES,
    file_id,
    normalise,
    reference_messages,
    reference_tree,
)

from isthmus.formats.hl7v2 import (
    HL7ParseError,
    Message,
    parse_batch,
    parse_message,
    split_messages,
)

PY = CORPUS / "python-hl7"
FC = CORPUS / "fhir-converter"

# Per-file decisions for the files that are not one plain message. Each value is the list
# of problems parse_batch must report (as "SEG:code"); parse_message must refuse the file.
ENVELOPED: dict[str, list[str]] = {
    "sample_bad_batch1.hl7": ["BHS:100", "PID:100", "PD1:100", "NK1:100", "PV1:100", "BTS:100"],
    "sample_bad_file1.hl7": [
        "BHS:100",
        "PID:100",
        "PD1:100",
        "NK1:100",
        "PV1:100",
        "BTS:100",
        "FTS:100",
    ],
    "sample_bad_file2.hl7": ["FHS:100", "PID:100", "PD1:100", "NK1:100", "PV1:100"],
    "sample_batch.hl7": [],
    "sample_batch1.hl7": [],
    "sample_batch2.hl7": [],
    "sample_batch3.hl7": ["BTS:100"],  # BHS without BTS
    "sample_batch4.hl7": ["BTS:100"],  # BTS without BHS
    "sample_file.hl7": [],
    "sample_file1.hl7": [],
    "sample_file2.hl7": [],
    "sample_file3.hl7": ["FTS:100"],  # FHS without FTS
    "sample_file4.hl7": [],
    "sample_file5.hl7": ["FTS:100"],  # FTS while a batch is open
    "sample_file6.hl7": ["BTS:100"],
}
# python-hl7 refuses these three outright (nested BHS, second FHS).
REFERENCE_REFUSES = {"sample_bad_batch1.hl7", "sample_bad_file1.hl7", "sample_bad_file2.hl7"}


def compare(ours: Message, theirs: hl7.Message, where: str) -> None:
    assert len(ours) == len(theirs), where
    assert ours.segment_names == [str(s[0]) if not isinstance(s, str) else s[:3] for s in theirs]
    for i, (seg, ref) in enumerate(zip(ours.segments, theirs, strict=True)):
        at = f"{where} segment {i + 1} {seg.name}"
        if isinstance(ref, str):  # python-hl7 keeps a field-less segment as a bare string
            assert seg.raw == ref and len(seg) == 0, at
            continue
        assert len(seg) == len(ref) - 1, at
        header = seg.name in ("MSH", "BHS", "FHS")
        breakout = seg.breakout()
        for n in range(1, len(ref)):
            assert seg.field(n) == str(ref[n]), f"{at}-{n}"
            if header and n <= 2:
                assert seg.value(n) == str(ref[n]), f"{at}-{n}"
                continue
            raw_tree = reference_tree(ref[n])
            assert seg.repetitions(n) == ["^".join("&".join(c) for c in r) for r in raw_tree]
            expected = [[[theirs.unescape(s) for s in c] for c in r] for r in raw_tree]
            assert seg.tree(n) == expected, f"{at}-{n}"
            assert breakout[n - 1] == expected, f"{at}-{n}"
            for r, comps in enumerate(expected, 1):
                raw_comps = ["&".join(c) for c in raw_tree[r - 1]]
                assert seg.components(n, r) == [theirs.unescape(c) for c in raw_comps]
                for c, subs in enumerate(comps, 1):
                    assert seg.subcomponents(n, c, r) == ([] if subs == [""] else subs)
                    for s, value in enumerate(subs, 1):
                        assert seg.value(n, c, s, r) == value, f"{at}-{n}({r}).{c}.{s}"
                    assert seg.value(n, c, len(subs) + 1, r) == ""
                assert seg.value(n, len(comps) + 1, 1, r) == ""
            assert seg.value(n, 1, 1, len(expected) + 1) == ""
        assert seg.field(len(ref)) == ""


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_differential_against_python_hl7(path: Path) -> None:
    data = path.read_bytes()
    text = normalise(data)
    if path.name in REFERENCE_REFUSES:
        with pytest.raises(ParseException):
            hl7.parse_file(text)
        # python-hl7's own splitter still reads the messages; so must ours, identically.
        refs = [hl7.parse(m) for m in hl7.util.split_file(text)]
    else:
        refs = reference_messages(text)
    texts = split_messages(data)
    assert len(texts) == len(refs)
    for k, (msg_text, ref) in enumerate(zip(texts, refs, strict=True)):
        compare(parse_message(msg_text), ref, f"{file_id(path)} message {k + 1}")
    if path.name not in ENVELOPED:
        compare(parse_message(data), refs[0], file_id(path))


@pytest.mark.parametrize("name", sorted(ENVELOPED), ids=str)
def test_enveloped_files_are_refused_as_one_message_and_read_as_batches(name: str) -> None:
    data = (PY / name).read_bytes()
    if name != "sample_batch2.hl7":  # two bare messages: refused as "another message"
        with pytest.raises(HL7ParseError) as info:
            parse_message(data)
        assert info.value.code == 100
    batch = parse_batch(data)
    assert [f"{p.location.segment}:{p.code}" for p in batch.problems if p.location] == (
        ENVELOPED[name]
    )
    assert all(p.location is not None for p in batch.problems)
    assert [m.control_id for m in batch.messages] == [
        parse_message(t).control_id for t in split_messages(data)
    ][: len(batch.messages)]


def test_every_plain_corpus_file_parses() -> None:
    plain = [p for p in FILES if p.name not in ENVELOPED]
    assert len(plain) >= 80
    for p in plain:
        msg = parse_message(p.read_bytes())
        assert msg.message_type, p
        assert msg.control_id, p


def test_golden_dft_p03() -> None:
    msg = parse_message((FC / "DFT-P03-01.hl7").read_bytes())
    assert (msg.message_type, msg.trigger_event, msg.structure) == ("DFT", "P03", "DFT_P03")
    assert msg.control_id == "MSG00001"
    assert msg.version == "2.8"
    assert msg.processing_id == "P"
    assert msg.sending_application == "IMMAPP"
    assert msg.sending_facility == "GHHSFacility"
    assert msg.receiving_application == "EHRApp"
    assert msg.timestamp == "202108181126+0215"
    assert msg.get("PID-3") == "PATID1234"
    assert msg.get("PID-3.4.2") == "2.16.1"
    assert msg.get("PID-3(2).1") == "123456789"
    assert msg.get("PID-3(2).4") == "USSSA"
    assert msg.get("PID-3(3).1", "none") == "none"
    ft1 = msg.segments_named("FT1")
    assert len(ft1) == 2
    assert msg.get("FT1-11") == "100"
    assert msg.get("FT1-11.2") == ""  # 100&USD: the currency is a subcomponent
    assert msg.get("FT1-11.1.2") == "USD"
    assert msg.get("FT1(2)-11.1") == "120"
    assert msg.get("FT1(2)-7") == "626.2"
    assert msg.get("FT1-7.2") == "Xray exam chest 1 view"
    assert msg.get("FT1(3)-11") == ""
    assert ft1[0].field(11) == "100&USD"
    assert msg.get("MSH-9.2") == "P03"


def test_golden_adt_a01() -> None:
    msg = parse_message((FC / "ADT-A01-01.hl7").read_bytes())
    assert msg.control_id == "MSG00001"
    assert msg.get("MSH-4.2") == "2.16.840.1.122848.1.30"
    assert msg.get("PID-3.1") == "PATID1234"
    assert msg.get("PID-5.1.5") == "Aniston"
    assert msg.get("PID-5(2).1") == "Josh"
    assert msg.get("EVN-4.2") == "Patient request"
    msh = msg.segment("MSH")
    assert msh is not None
    assert msh.field(1) == "|"
    assert msh.field(2) == "^~\\&"
    assert msh.field(3) == "ADTApp"


def test_golden_adt_a40() -> None:
    msg = parse_message((FC / "ADT-A40-01.hl7").read_bytes())
    assert msg.segment_names == ["MSH", "EVN", "PID", "MRG"]
    assert msg.control_id == "8919-40"
    assert msg.get("MRG-1") == "56789"
    assert msg.get("MRG-1.4") == "BCBS"
    assert msg.get("PID-13.6") == "111"
    assert msg.get("EVN-5.2") == "Berry"


def test_golden_bar_p01() -> None:
    msg = parse_message((FC / "BAR-P01-01.hl7").read_bytes())
    assert (msg.message_type, msg.trigger_event) == ("BAR", "P01")
    assert msg.get("GT1-3.1") == "RADIANT"
    assert msg.get("GT1-6(2).1") == "717171"
    assert msg.get("IN1-2.2") == "Blue Advantage HMO"
    assert msg.get("IN1-3.4.2") == "2.16.840.1.113883.1.1"
    assert msg.get("PV1-3.1.2") == "9.8"
