"""Batch and file envelopes (HL7 v2.5.1 2.10.3): messages kept, problems reported as data."""

from __future__ import annotations

import pytest
from tests.formats.hl7v2.hl7v2_corpus import CORPUS

from isthmus.formats.hl7v2 import HL7ParseError, parse_batch, split_messages

PY = CORPUS / "python-hl7"


def msh(control_id: str) -> str:
    return f"MSH|^~\\&|A|B|C|D|20240101||ADT^A04|{control_id}|P|2.5\rPID|1||{control_id}\r"


def test_sample_file1_two_batches_three_messages() -> None:
    batch = parse_batch((PY / "sample_file1.hl7").read_bytes())
    assert batch.ok
    assert batch.header is not None and batch.header.name == "FHS"
    assert batch.header.field(2) == "^~\\&"
    assert batch.trailer is not None and batch.declared_count == 2
    assert [g.received for g in batch.batches] == [2, 1]
    assert [g.declared_count for g in batch.batches] == [2, 1]
    assert [g.header.value(11) for g in batch.batches if g.header] == [
        "abchs20070101123401-1",
        "abchs20070101123401-2",
    ]
    assert [m.control_id for m in batch.messages] == [
        "12334456778890",
        "12334456778891",
        "12334456778890",
    ]


def test_sample_batch1_count_matches() -> None:
    batch = parse_batch((PY / "sample_batch1.hl7").read_bytes())
    assert batch.ok and batch.header is None
    assert len(batch.batches) == 1 and batch.batches[0].declared_count == 2
    assert len(batch.messages) == 2


def test_bad_batch_keeps_the_message_and_lists_problems() -> None:
    batch = parse_batch((PY / "sample_bad_batch1.hl7").read_bytes())
    assert not batch.ok
    assert len(batch.messages) == 1
    assert batch.messages[0].segment_names == ["MSH", "EVN"]
    texts = [p.text for p in batch.problems]
    assert "BHS before the BTS of the last batch" in texts
    assert "BTS-1 declares 1 messages, found 0" in texts


def test_count_mismatch_is_data_not_an_exception() -> None:
    data = "BHS|^~\\&|A\r" + msh("1") + msh("2") + "BTS|3\r"
    batch = parse_batch(data)
    assert len(batch.messages) == 2
    [problem] = batch.problems
    assert problem.code == 100
    assert problem.location is not None
    assert (problem.location.segment, problem.location.field) == ("BTS", 1)
    assert "declares 3" in problem.text


def test_non_numeric_count_is_a_data_type_problem() -> None:
    batch = parse_batch("BHS|^~\\&|A\r" + msh("1") + "BTS|one\r")
    assert [p.code for p in batch.problems] == [102]


def test_unparseable_message_is_rejected_and_counted() -> None:
    data = "BHS|^~\\&|A\r" + msh("1") + "MSH|^^^^|broken\rPID|1\r" + msh("3") + "BTS|3\r"
    batch = parse_batch(data)
    assert [m.control_id for m in batch.messages] == ["1", "3"]
    assert batch.rejected == ["MSH|^^^^|broken\rPID|1\r"]
    assert [p.code for p in batch.problems] == [102]
    assert batch.problems[0].text.startswith("message 1 rejected")
    assert batch.batches[0].received == 3


def test_custom_delimiters_in_file_header() -> None:
    data = "FHS#*!@$#A\rBHS#*!@$#B\rMSH#*!@$#X######ADT*A01#9#P#2.5\rBTS#1\rFTS#1\r"
    batch = parse_batch(data)
    assert batch.ok, batch.problems
    assert batch.messages[0].trigger_event == "A01"
    assert batch.declared_count == 1


def test_split_messages_drops_envelopes_and_normalises() -> None:
    data = ("FHS|^~\\&\nBHS|^~\\&\n" + msh("1") + "\n\n" + msh("2") + "BTS|2\nFTS|1\n").replace(
        "\r", "\r\n"
    )
    assert split_messages(data.encode()) == [msh("1"), msh("2")]
    assert split_messages("") == []


def test_split_messages_refuses_orphan_segments() -> None:
    with pytest.raises(HL7ParseError) as info:
        split_messages("PID|1\r" + msh("1"))
    assert info.value.code == 100


@pytest.mark.parametrize("name", ["sample_batch3.hl7", "sample_file5.hl7"])
def test_open_batch_at_end_is_reported(name: str) -> None:
    batch = parse_batch((PY / name).read_bytes())
    assert len(batch.messages) == 1
    assert any("BTS" in p.text for p in batch.problems)
