"""The durable inbox in process: ACK after commit, duplicates, rejects kept, store failure,
and the relay that heals a crash between commit and publish. No sockets: the MLLP handler
is called the way the listener calls it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from isthmus.bus.memory import MemoryBus
from isthmus.bus.ports import Publish
from isthmus.flows.inbox import GroupCommitWriter, Inbox, classify, relay_unpublished
from isthmus.formats.hl7v2 import ack_code, parse_message
from isthmus.store.ports import Accepted, Inbound
from isthmus.store.sqlite import SqliteStore
from isthmus.store.sqlite_connection import StorageUnavailable
from tests.flows.helpers import CHANNEL, adt, charge, dft, ft1, hl7, msh, pid

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


def serve(store: SqliteStore, bus: MemoryBus, payloads: Sequence[bytes]) -> list[bytes]:
    """Start a writer, send each payload through the handler (concurrently), stop."""
    writer = GroupCommitWriter(store, bus)
    writer.start()
    inbox = Inbox(writer, channel=CHANNEL, tenant="default", currency="USD")

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
    stored = store.message_by_control_id(CHANNEL, "A1")
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
    stored = store.message_by_control_id(CHANNEL, "X1")
    assert stored is not None and b"10.00&USD" in stored.raw  # the first one stands
    kept = store.messages(status="rejected")
    assert len(kept) == 1 and b"99.00&USD" in kept[0].raw  # the newcomer is kept, refused
    assert bus.pending() == 1
    (again,) = serve(store, bus, [charge("X1", "M1", amount="99.00")])
    assert ack_code(again) == ("AR", "X1") and len(store.messages(status="rejected")) == 1
    (same,) = serve(store, bus, [charge("X1", "M1", amount="10.00").replace(b"\r", b"\n")])
    assert ack_code(same) == ("AA", "X1")  # same content, other line ends: a duplicate


@pytest.mark.parametrize(("raw", "code", "err"), [
    (ORU, "AR", "200"),
    (dft("BAD1", "M1", ft1(1, "T1", amount="12,50")), "AE", "102"),
    (dft("BAD2", "M1", ft1(1, "T1", when="20261345")), "AE", "102"),
])
def test_rejected_message_is_answered_and_kept(store: SqliteStore, raw: bytes, code: str,
                                               err: str) -> None:
    bus = MemoryBus(partitions=2)
    (ack,) = serve(store, bus, [raw])
    cid = parse_message(raw).control_id
    assert ack_code(ack) == (code, cid)
    assert err3(ack) == err
    stored = store.message_by_control_id(CHANNEL, cid)
    assert stored is not None
    assert (stored.status, stored.ack_code, stored.raw) == ("rejected", code, raw)
    assert stored.error.startswith(err + "|")
    assert [m.control_id for m in store.messages(status="rejected")] == [cid]
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


def test_framing_error_is_answered_ar_and_kept(store: SqliteStore) -> None:
    bus = MemoryBus(partitions=2)
    writer = GroupCommitWriter(store, bus)
    writer.start()
    inbox = Inbox(writer, channel=CHANNEL, tenant="default", currency="USD")
    head = msh("FR1", "DFT^P03^DFT_P03").encode()
    try:
        ack = asyncio.run(inbox.on_framing_error(head, "peer", "message too large"))
    finally:
        writer.stop()
    assert ack_code(ack) == ("AR", "FR1")
    stored = store.message_by_control_id(CHANNEL, "FR1")
    assert stored is not None and stored.status == "rejected" and stored.raw == head


def test_relay_unpublished_heals_a_crash_between_commit_and_publish(
        store: SqliteStore) -> None:
    bus = MemoryBus(partitions=2)
    # "crash": committed by the inbox, never handed to the bus
    raws = [adt("R1", "M1"), charge("R2", "M1"), charge("R3", "M2"), ORU]
    store.accept([classify(r, channel=CHANNEL, peer="p", now=1.0, tenant="default",
                           currency="USD")[0] for r in raws])
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
    assert ids == ["mllp/R1/0", "mllp/R1/1", "mllp/R2/0", "mllp/R3/0"]


def test_relay_unpublished_pages_through_many(store: SqliteStore) -> None:
    bus = MemoryBus(partitions=3)
    store.accept([classify(charge(f"P{i}", f"M{i}"), channel=CHANNEL, peer="p", now=1.0,
                           tenant="default", currency="USD")[0] for i in range(25)])
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
    inbox = Inbox(writer, channel=CHANNEL, tenant="default", currency="USD")

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
    inbox = Inbox(writer, channel=CHANNEL, tenant="default", currency="USD")

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
