"""The durable inbox in process: ACK after commit, duplicates, rejects kept, store failure,
and the relay that heals a crash between commit and publish. No sockets: the MLLP handler
is called the way the listener calls it."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from isthmus.app import SystemClock
from isthmus.bus.memory import MemoryBus
from isthmus.bus.ports import Publish
from isthmus.flows.group_commit import GroupCommitWriter
from isthmus.flows.hl7_inbound import classify, decode_error
from isthmus.flows.inbox import Inbox
from isthmus.flows.relay import relay_unpublished
from isthmus.formats.hl7v2 import ack_code, parse_message
from isthmus.store.ports import Accepted, Inbound
from isthmus.store.sqlite import SqliteStore
from isthmus.store.sqlite_connection import StorageUnavailable
from tests.flows.helpers import CHANNEL, adt, charge, corr, dft, ft1, hl7, ident, msh, pid

ORU = hl7(msh("ORU1", "ORU^R01^ORU_R01"), pid("M1"), "OBX|1|NM|GLU||98")


class FailingStore(SqliteStore):
    """A store whose disk is gone: every inbox commit fails."""

    def accept(self, batch: Sequence[Inbound]) -> list[Accepted]:
        raise StorageUnavailable("disk full")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "store.db", synchronous="NORMAL")
    yield s
    s.close()


def serve(
    store: SqliteStore, bus: MemoryBus, payloads: Sequence[bytes], window_s: float = 24 * 3600
) -> list[bytes]:
    """Start a writer, send each payload through the handler (concurrently), stop."""
    writer = GroupCommitWriter(store, bus, reuse_window_s=window_s)
    writer.start()
    inbox = Inbox(writer, channel=CHANNEL, tenant="default", currency="USD", clock=SystemClock())

    async def main() -> list[bytes]:
        return list(await asyncio.gather(*(inbox.on_message(p, "peer") for p in payloads)))

    try:
        return asyncio.run(main())
    finally:
        writer.stop()


def err3(ack: bytes) -> str:
    return parse_message(ack).get("ERR-3.1")


def test_accepted_message_acks_aa_with_its_control_id(store: SqliteStore) -> None:
    bus = MemoryBus(partitions=2)
    raw = adt("A1", "M1")
    (ack,) = serve(store, bus, [raw])
    assert ack_code(ack) == ("AA", "A1")
    stored = store.message_by_control_id(CHANNEL, ident("A1"))
    assert stored is not None
    assert (stored.status, stored.ack_code, stored.raw) == ("accepted", "AA", raw)
    assert stored.published
    assert bus.pending() == 2  # PatientRegistered + EncounterStarted


def test_many_messages_share_commits_and_each_gets_its_own_ack(store: SqliteStore) -> None:
    bus = MemoryBus(partitions=2)
    raws = [charge(f"C{i}", f"M{i % 7}") for i in range(200)]
    acks = serve(store, bus, raws)
    assert [ack_code(a) for a in acks] == [("AA", f"C{i}") for i in range(200)]
    assert store.counts()["messages"] == 200
    assert bus.pending() == 200


def test_duplicate_gets_the_same_answer_and_is_stored_once(store: SqliteStore) -> None:
    bus = MemoryBus(partitions=2)
    good, bad = charge("D1", "M1"), dft("D2", "M1", ft1(1, "T1", amount="x"))
    first = serve(store, bus, [good, bad])
    again = serve(store, bus, [good, bad])
    assert [ack_code(a)[0] for a in first] == ["AA", "AE"]
    assert [ack_code(a) for a in again] == [ack_code(a) for a in first]
    assert err3(again[1]) == err3(first[1]) == "102"
    assert store.counts()["messages"] == 2
    assert bus.pending() == 1


def test_reused_control_id_with_other_content_is_refused_and_kept(store: SqliteStore) -> None:
    bus = MemoryBus(partitions=2)
    serve(store, bus, [charge("X1", "M1", amount="10.00")])
    (ack,) = serve(store, bus, [charge("X1", "M1", amount="99.00")])
    assert ack_code(ack) == ("AR", "X1")
    assert err3(ack) == "205"  # HL7 table 0357: duplicate key identifier
    stored = store.message_by_control_id(CHANNEL, ident("X1"))
    assert stored is not None and b"10.00&USD" in stored.raw  # the first one stands
    kept = store.messages(status="rejected")
    assert len(kept) == 1 and b"99.00&USD" in kept[0].raw  # the newcomer is kept, refused
    assert bus.pending() == 1
    (again,) = serve(store, bus, [charge("X1", "M1", amount="99.00")])
    assert ack_code(again) == ("AR", "X1") and len(store.messages(status="rejected")) == 1
    (same,) = serve(store, bus, [charge("X1", "M1", amount="10.00").replace(b"\r", b"\n")])
    assert ack_code(same) == ("AA", "X1")  # same content, other line ends: a duplicate


@pytest.mark.parametrize(
    ("raw", "code", "err"),
    [
        (dft("BAD1", "M1", ft1(1, "T1", amount="12,50")), "AE", "102"),
        (dft("BAD2", "M1", ft1(1, "T1", when="20261345")), "AE", "102"),
    ],
)
def test_rejected_message_is_answered_and_kept(
    store: SqliteStore, raw: bytes, code: str, err: str
) -> None:
    bus = MemoryBus(partitions=2)
    (ack,) = serve(store, bus, [raw])
    cid = parse_message(raw).control_id
    assert ack_code(ack) == (code, cid)
    assert err3(ack) == err
    stored = store.message_by_control_id(CHANNEL, ident(cid))
    assert stored is not None
    assert (stored.status, stored.ack_code, stored.raw) == ("rejected", code, raw)
    assert stored.error.startswith(err + "|")
    assert [m.control_id for m in store.messages(status="rejected")] == [ident(cid)]
    assert bus.pending() == 0


def test_message_without_control_id_is_kept_under_its_hash(store: SqliteStore) -> None:
    bus = MemoryBus(partitions=2)
    raw = charge("", "M1")
    (ack,) = serve(store, bus, [raw])
    assert ack_code(ack)[0] == "AR"
    (stored,) = store.messages(status="rejected")
    assert stored.control_id.startswith("sha256:") and stored.raw == raw


def test_store_failure_answers_ar_207_and_relays_nothing(tmp_path: Path) -> None:
    store = FailingStore(tmp_path / "broken.db")
    bus = MemoryBus(partitions=2)
    try:
        acks = serve(store, bus, [charge("F1", "M1"), adt("F2", "M2")])
    finally:
        store.close()
    assert [ack_code(a) for a in acks] == [("AR", "F1"), ("AR", "F2")]
    assert [err3(a) for a in acks] == ["207", "207"]
    assert bus.pending() == 0
    assert store.counts()["messages"] == 0


def test_framing_error_is_answered_ar_and_kept_without_claiming_its_msh10(
    store: SqliteStore,
) -> None:
    bus = MemoryBus(partitions=2)
    writer = GroupCommitWriter(store, bus)
    writer.start()
    inbox = Inbox(writer, channel=CHANNEL, tenant="default", currency="USD", clock=SystemClock())
    whole = charge("FR1", "M1")
    head = whole[:100]  # the MSH line and a bit: a block cut short
    try:
        ack = asyncio.run(inbox.on_framing_error(head, "peer", "message too large"))
        resent = asyncio.run(inbox.on_message(whole, "peer"))
    finally:
        writer.stop()
    assert ack_code(ack) == ("AR", "FR1")  # the sender is told which message failed
    (kept,) = store.messages(status="rejected")
    assert kept.control_id.startswith("frame:") and kept.raw == head
    assert store.message_by_control_id(CHANNEL, "FR1") is None
    # the whole message, resent, is taken under its own identity: not a duplicate
    assert ack_code(resent) == ("AA", "FR1")
    taken = store.message_by_control_id(CHANNEL, ident("FR1"))
    assert taken is not None and taken.status == "accepted"


def test_relay_unpublished_heals_a_crash_between_commit_and_publish(store: SqliteStore) -> None:
    bus = MemoryBus(partitions=2)
    # "crash": committed by the inbox, never handed to the bus
    raws = [adt("R1", "M1"), charge("R2", "M1"), charge("R3", "M2"), ORU]
    store.accept(
        [
            classify(r, channel=CHANNEL, peer="p", now=1.0, tenant="default", currency="USD")[0]
            for r in raws
        ]
    )
    assert bus.pending() == 0
    assert len(store.unpublished(100)) == 3  # the rejected ORU has nothing to publish
    writer = GroupCommitWriter(store, bus)
    writer.start()  # relays at start
    writer.stop()
    assert bus.pending() == 4
    assert store.unpublished(100) == []
    # a second start (and a second heal) publishes nothing again
    writer = GroupCommitWriter(store, bus)
    writer.start()
    writer.stop()
    assert relay_unpublished(store, bus) == 0
    assert bus.pending() == 4
    ids = sorted(d.msg_id for p in range(bus.partitions) for d in bus.fetch(p, 100, 2.0))
    assert ids == [f"{corr('R1')}/0", f"{corr('R1')}/1", f"{corr('R2')}/0", f"{corr('R3')}/0"]


def test_relay_unpublished_pages_through_many(store: SqliteStore) -> None:
    bus = MemoryBus(partitions=3)
    store.accept(
        [
            classify(
                charge(f"P{i}", f"M{i}"),
                channel=CHANNEL,
                peer="p",
                now=1.0,
                tenant="default",
                currency="USD",
            )[0]
            for i in range(25)
        ]
    )
    assert relay_unpublished(store, bus, batch=7) == 25
    assert bus.pending() == 25
    assert relay_unpublished(store, bus, batch=7) == 0


class GatedStore(SqliteStore):
    """A store whose commit waits for the test to let it through."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, synchronous="NORMAL")
        self.gate = threading.Event()
        self.committed = threading.Event()

    def accept(self, batch: Sequence[Inbound]) -> list[Accepted]:
        assert self.gate.wait(10)
        out = super().accept(batch)
        self.committed.set()
        return out


def test_ack_is_sent_only_after_the_commit(tmp_path: Path) -> None:
    store = GatedStore(tmp_path / "gated.db")
    bus = MemoryBus(partitions=2)
    writer = GroupCommitWriter(store, bus)
    writer.start()
    inbox = Inbox(writer, channel=CHANNEL, tenant="default", currency="USD", clock=SystemClock())

    async def main() -> bytes:
        task = asyncio.create_task(inbox.on_message(charge("G1", "M1"), "peer"))
        await asyncio.sleep(0.05)
        assert not task.done()  # no answer while the commit is pending
        store.gate.set()
        ack = await task
        assert store.committed.is_set()
        return ack

    try:
        ack = asyncio.run(main())
    finally:
        store.gate.set()
        writer.stop()
        store.close()
    assert ack_code(ack) == ("AA", "G1")


def test_same_message_twice_in_one_group_commit(store: SqliteStore) -> None:
    bus = MemoryBus(partitions=2)
    raw = charge("T1", "M1")
    acks = serve(store, bus, [raw, raw, raw])
    assert [ack_code(a) for a in acks] == [("AA", "T1")] * 3
    assert store.counts()["messages"] == 1
    assert bus.pending() == 1


class FlakyBus(MemoryBus):
    """A bus that refuses the first publish (broker restarting), then works."""

    def __init__(self) -> None:
        super().__init__(partitions=2)
        self.refused = 0

    def publish(self, items: Sequence[Publish]) -> None:
        if not self.refused:
            self.refused += 1
            raise ConnectionError("broker restarting")
        super().publish(items)


def test_a_failed_relay_is_retried_while_running(store: SqliteStore) -> None:
    bus = FlakyBus()
    writer = GroupCommitWriter(store, bus)
    writer.start()
    inbox = Inbox(writer, channel=CHANNEL, tenant="default", currency="USD", clock=SystemClock())

    async def main() -> None:
        assert ack_code(await inbox.on_message(charge("L1", "M1"), "peer"))[0] == "AA"
        await asyncio.sleep(0.1)
        assert ack_code(await inbox.on_message(charge("L2", "M2"), "peer"))[0] == "AA"
        await asyncio.sleep(0.1)

    try:
        asyncio.run(main())
    finally:
        writer.stop()
    assert bus.refused == 1
    assert store.unpublished(10) == []
    assert bus.pending() == 2


# -- identity per sender, and a sender whose counter restarted ------------------------------

CORPUS = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora" / "hl7v2" / "fhir-converter"
).resolve()


def test_the_same_msh10_from_other_senders_is_taken_not_refused(store: SqliteStore) -> None:
    """The public samples reuse MSG00001 across MSH-3 (ADTApp, IMMAPP, BARApp)."""
    bus = MemoryBus(partitions=2)
    raws = [
        (CORPUS / n).read_bytes() for n in ("BAR-P01-01.hl7", "DFT-P03-01.hl7", "BAR-P12-01.hl7")
    ]
    acks = [serve(store, bus, [r])[0] for r in raws]
    assert [ack_code(a)[1] for a in acks] == ["MSG00001"] * 3
    assert all(err3(a) != "205" for a in acks)
    assert {m.control_id for m in store.messages()} == {
        "ADTApp^GHHSFacility:MSG00001",
        "IMMAPP^GHHSFacility:MSG00001",
        "BARApp^GHHSFacility:MSG00001",
    }


def held_at(store: SqliteStore, raw: bytes, hours_ago: float) -> None:
    store.accept(
        [
            classify(
                raw,
                channel=CHANNEL,
                peer="p",
                now=time.time() - hours_ago * 3600,
                tenant="default",
                currency="USD",
            )[0]
        ]
    )


def test_reuse_inside_the_window_is_ar_205(store: SqliteStore) -> None:
    bus = MemoryBus(partitions=2)
    held_at(store, charge("W1", "M1", amount="10.00"), hours_ago=1)
    (ack,) = serve(store, bus, [charge("W1", "M1", amount="99.00")], window_s=2 * 3600)
    assert (ack_code(ack), err3(ack)) == (("AR", "W1"), "205")
    assert parse_message(ack).get("ERR-2.3") == "10"  # ERR-2: MSH-10
    assert bus.pending() == 1  # the first message's charge (relayed at start), only


def test_reuse_after_the_window_is_a_new_message_with_a_note(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    bus = MemoryBus(partitions=2)
    held_at(store, charge("W2", "M1", amount="10.00"), hours_ago=3)
    restarted = charge("W2", "M1", amount="99.00")
    with caplog.at_level(logging.WARNING, logger="isthmus.flows.intake"):
        (ack,) = serve(store, bus, [restarted], window_s=2 * 3600)
    assert ack_code(ack) == ("AA", "W2") and "ERR" not in ack.decode()
    (first, renewed) = store.messages()
    assert first.control_id == ident("W2") and b"10.00&USD" in first.raw  # untouched
    assert renewed.control_id.startswith(ident("W2") + "~")
    assert (renewed.status, renewed.ack_code, renewed.raw) == ("accepted", "AA", restarted)
    note = decode_error(renewed.error)
    assert note is not None and note.code == 0 and f"message #{first.id}" in note.text
    assert "counter restart" in note.text
    events = sorted(d.msg_id for p in range(bus.partitions) for d in bus.fetch(p, 10, 2.0))
    assert events == [f"{corr('W2')}/0", f"{CHANNEL}/{renewed.control_id}/0"]  # its own ids
    assert any("counter restart" in r.getMessage() for r in caplog.records)
    assert bus.pending() == 2  # the first message's charge (relayed at start), and this one
    assert not any(b"DOE" in r.getMessage().encode() for r in caplog.records)  # no PHI
    (again,) = serve(store, bus, [restarted], window_s=2 * 3600)
    assert ack_code(again) == ("AA", "W2") and len(store.messages()) == 2  # a duplicate
    assert bus.pending() == 2
