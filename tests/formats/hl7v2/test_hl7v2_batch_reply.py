"""A batch or file in one MLLP block: its messages, and the batch of ACKs that answers it
(HL7 v2.5.1 2.10.3.3)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tests.formats.hl7v2.hl7v2_corpus import CORPUS

from isthmus.formats.hl7v2 import build_ack, parse_message
from isthmus.formats.hl7v2.batch_reply import batch_blocks, batch_reply, is_batch

PY = CORPUS / "python-hl7"
NOW = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


def msh(cid: str) -> bytes:
    return f"MSH|^~\\&|A|B|C|D|20260302||ADT^A04|{cid}|P|2.5\rPID|1||{cid}\r".encode()


def answer(block: bytes) -> bytes:
    parsed = batch_blocks(block)
    acks = [
        [build_ack(parse_message(m), "AA", now=NOW) for m in b.messages] for b in parsed.batches
    ]
    return batch_reply(parsed, acks, control_id="R1", now=NOW)


def test_a_file_of_two_batches_is_answered_in_the_same_envelopes() -> None:
    data = (PY / "sample_file1.hl7").read_bytes()
    assert is_batch(data)
    block = batch_blocks(data)
    assert block.header is not None and block.header.startswith(b"FHS|")
    assert [len(b.messages) for b in block.batches] == [2, 1]
    assert all(m.startswith(b"MSH|") and m.endswith(b"\r") for m in block.messages)
    segs = answer(data).rstrip(b"\r").split(b"\r")
    names = [s[:3] for s in segs]
    assert names == [
        b"FHS",
        b"BHS",
        b"MSH",
        b"MSA",
        b"MSH",
        b"MSA",
        b"BTS",
        b"BHS",
        b"MSH",
        b"MSA",
        b"BTS",
        b"FTS",
    ]
    fhs, bhs1, bhs2 = segs[0].split(b"|"), segs[1].split(b"|"), segs[7].split(b"|")
    assert fhs[11] == b""  # FHS-12 = the original FHS-11, which this file leaves empty
    assert fhs[10] == b"R1" and fhs[6] == b"20260302083000"
    assert (fhs[2], fhs[3], fhs[4], fhs[5]) == (b"", b"AUSDHSV", b"", b"ABCHS")  # swapped
    assert (bhs1[10], bhs1[11]) == (b"R1-1", b"abchs20070101123401-1")
    assert (bhs2[10], bhs2[11]) == (b"R1-2", b"abchs20070101123401-2")
    assert [s for s in segs if s[:3] in (b"BTS", b"FTS")] == [b"BTS|2", b"BTS|1", b"FTS|2"]
    msa = [s.split(b"|")[2] for s in segs if s.startswith(b"MSA")]
    assert msa == [b"12334456778890", b"12334456778891", b"12334456778890"]


def test_a_batch_without_file_header_and_lf_endings() -> None:
    data = (
        b"BHS|^~\\&|S|F|||20260302||||B7\n" + msh("1").replace(b"\r", b"\n") + msh("2") + b"BTS|2\n"
    )
    block = batch_blocks(data)
    assert block.header is None
    assert block.messages == [msh("1"), msh("2")]
    segs = answer(data).rstrip(b"\r").split(b"\r")
    assert segs[0].split(b"|")[11] == b"B7" and segs[-1] == b"BTS|2"
    assert not any(s.startswith(b"FHS") or s.startswith(b"FTS") for s in segs)


def test_a_line_before_the_first_msh_is_a_message_of_its_own() -> None:
    block = batch_blocks(b"BHS|^~\\&\rEVN|A04\r" + msh("9") + b"BTS|2\r")
    assert block.messages == [b"EVN|A04\r", msh("9")]


def test_a_misplaced_bhs_does_not_cut_a_message() -> None:
    block = batch_blocks(b"BHS|^~\\&\r" + msh("1")[:-1] + b"\rBHS|^~\\&\rPV1|1|O\rBTS|1\r")
    assert [len(b.messages) for b in block.batches] == [1, 0]
    assert block.messages == [msh("1") + b"PV1|1|O\r"]


@pytest.mark.parametrize("data", [msh("1"), b"", b"\r\n", b"MSH|^~\\&\rBHS|^~\\&\r"])
def test_a_single_message_is_not_a_batch(data: bytes) -> None:
    assert not is_batch(data)


def test_a_bom_before_fhs_is_still_a_file() -> None:
    assert is_batch(b"\xef\xbb\xbfFHS|^~\\&\rBHS|^~\\&\r" + msh("1"))


def test_one_ack_per_message_or_it_refuses() -> None:
    block = batch_blocks(b"BHS|^~\\&\r" + msh("1") + msh("2"))
    with pytest.raises(ValueError, match="one ACK per message"):
        batch_reply(block, [[b"MSH|x\r"]], control_id="R", now=NOW)
