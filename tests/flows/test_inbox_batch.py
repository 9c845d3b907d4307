"""A batch or file in one MLLP block (HL7 v2.5.1 2.10.3): every message in it is taken as if
sent alone, and the answer is a batch with one ACK per message, each naming its MSH-10."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from isthmus.app import SystemClock
from isthmus.bus.memory import MemoryBus
from isthmus.flows.group_commit import GroupCommitWriter
from isthmus.flows.inbox import Inbox
from isthmus.formats.hl7v2 import ack_code
from isthmus.store.sqlite import SqliteStore
from tests.flows.helpers import CHANNEL
from tests.formats.hl7v2.hl7v2_corpus import CORPUS

PY = CORPUS / "python-hl7"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "store.db", synchronous="NORMAL")
    yield s
    s.close()


def send(store: SqliteStore, *blocks: bytes) -> list[bytes]:
    writer = GroupCommitWriter(store, MemoryBus(partitions=1))
    writer.start()
    inbox = Inbox(writer, channel=CHANNEL, tenant="default", currency="USD", clock=SystemClock())

    async def main() -> list[bytes]:
        return [await inbox.on_message(b, "peer") for b in blocks]

    try:
        return asyncio.run(main())
    finally:
        writer.stop()


def acks_in(reply: bytes) -> list[tuple[str, str]]:
    """(MSA-1, MSA-2) of each ACK of a batch reply, in order."""
    out, current = [], b""
    for seg in reply.rstrip(b"\r").split(b"\r"):
        if seg[:3] in (b"BHS", b"BTS", b"FHS", b"FTS"):
            continue
        if seg.startswith(b"MSH") and current:
            out.append(ack_code(current))
            current = b""
        current += seg + b"\r"
    if current:
        out.append(ack_code(current))
    return out


def test_a_batch_block_gets_one_ack_per_message_and_stores_each(store: SqliteStore) -> None:
    data = (PY / "sample_batch1.hl7").read_bytes()
    [reply] = send(store, data)
    assert reply.startswith(b"BHS|") and reply.rstrip(b"\r").endswith(b"BTS|2")
    assert acks_in(reply) == [("AA", "12334456778890"), ("AA", "12334456778891")]
    stored = store.messages(limit=10)
    assert sorted(m.control_id.rsplit(":", 1)[1] for m in stored) == [
        "12334456778890",
        "12334456778891",
    ]
    assert {(m.message_type, m.status) for m in stored} == {("ADT^A04", "accepted")}


def test_the_same_block_again_is_answered_alike_and_stores_nothing(store: SqliteStore) -> None:
    data = (PY / "sample_file1.hl7").read_bytes()
    first, again = send(store, data, data)
    assert first.startswith(b"FHS|") and first.rstrip(b"\r").endswith(b"FTS|2")
    assert acks_in(first) == acks_in(again)
    # its second batch repeats the first message as it is: a duplicate, stored once
    assert acks_in(first) == [
        ("AA", "12334456778890"),
        ("AA", "12334456778891"),
        ("AA", "12334456778890"),
    ]
    assert len(store.messages(limit=10)) == 2


def test_a_stray_line_in_a_batch_is_refused_and_answered(store: SqliteStore) -> None:
    block = (
        b"BHS|^~\\&\rEVN|A04\rMSH|^~\\&|A|B|C|D|20260302||ADT^A04|77|P|2.5\r"
        b"PID|1||77^^^H^MR\rBTS|2\r"
    )
    [reply] = send(store, block)
    codes = acks_in(reply)
    assert [c[0] for c in codes] == ["AR", "AA"] and codes[1][1] == "77"
    assert {m.status for m in store.messages(limit=10)} == {"rejected", "accepted"}


@pytest.mark.parametrize("mtype", ["ADT^A01", "ADT^A04", "ADT^A08", "BAR^P01", "BAR^P05"])
def test_a_registration_without_pid_is_answered_ae_not_dropped(
    store: SqliteStore, mtype: str
) -> None:
    """sample_bad_batch1.hl7 cuts an ADT^A04 after its EVN: the hub once failed on it with
    an AssertionError and closed the connection without any answer."""
    raw = f"MSH|^~\\&|A|B|C|D|20260302||{mtype}|P{mtype[-2:]}|P|2.5\rEVN|A04\r".encode()
    [ack] = send(store, raw)
    assert ack_code(ack) == ("AE", f"P{mtype[-2:]}")
    assert b"PID segment is required" in ack


def test_the_bad_batch_of_the_corpus_is_answered_message_by_message(store: SqliteStore) -> None:
    [reply] = send(store, (PY / "sample_bad_batch1.hl7").read_bytes())
    # a BHS misplaced inside its one message: the message goes on past it, as in a file;
    # the reply keeps both batches, the second one empty
    assert acks_in(reply) == [("AA", "12334456778890")]
    assert reply.count(b"BHS|") == 2
    assert [s for s in reply.split(b"\r") if s.startswith(b"BTS")] == [b"BTS|1", b"BTS|0"]
    assert [m.message_type for m in store.messages(limit=10)] == ["ADT^A04"]
