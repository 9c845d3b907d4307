"""The bus contract, one suite subclassed per adapter (memory, SQLite; NATS in scale-out)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from isthmus.bus.ports import Bus, Publish, partition_of


def msg(i: int, key: str = "k1") -> Publish:
    return Publish(msg_id=f"m{i}", topic="events", key=key, body=f"body{i}".encode())


def fetch_all(bus: Bus, now: float = 1e12) -> list[str]:
    out = []
    for p in range(bus.partitions):
        out += [d.msg_id for d in bus.fetch(p, 1000, now)]
    return out


class BusContract:
    @pytest.fixture
    def bus(self) -> Iterator[Bus]:
        raise NotImplementedError

    def test_publish_is_idempotent_on_msg_id(self, bus: Bus) -> None:
        bus.publish([msg(1), msg(1), msg(2)])
        bus.publish([msg(2)])
        assert sorted(fetch_all(bus)) == ["m1", "m2"]
        assert bus.pending() == 2

    def test_fetch_keeps_publish_order_within_a_partition(self, bus: Bus) -> None:
        bus.publish([msg(i, key=f"k{i % 3}") for i in range(30)])
        for p in range(bus.partitions):
            seqs = [d.seq for d in bus.fetch(p, 100, 1e12)]
            assert seqs == sorted(seqs)
        assert len(fetch_all(bus)) == 30

    def test_same_key_same_partition(self, bus: Bus) -> None:
        bus.publish([msg(i, key="acct-7") for i in range(5)])
        part = partition_of("acct-7", bus.partitions)
        assert [d.msg_id for d in bus.fetch(part, 10, 1e12)] == [f"m{i}" for i in range(5)]

    def test_ack_removes_and_unacked_is_redelivered(self, bus: Bus) -> None:
        bus.publish([msg(1), msg(2)])
        part = partition_of("k1", bus.partitions)
        first = bus.fetch(part, 1, 1e12)
        assert [d.msg_id for d in first] == ["m1"]
        # not acked: handed out again (at least once)
        assert [d.msg_id for d in bus.fetch(part, 1, 1e12)] == ["m1"]
        bus.ack(first)
        assert [d.msg_id for d in bus.fetch(part, 5, 1e12)] == ["m2"]
        assert bus.pending() == 1

    def test_nak_persists_retry_state_and_blocks_the_key(self, bus: Bus) -> None:
        bus.publish([msg(1, "a"), msg(2, "a"), msg(3, "b")])
        now = 1000.0
        deliveries = {d.msg_id: d for d in bus.fetch(partition_of("a", bus.partitions), 10, now)}
        bus.nak(deliveries["m1"], "ERP down", visible_at=now + 60)
        visible = fetch_all(bus, now + 1)
        assert "m1" not in visible and "m2" not in visible  # m2 waits behind m1: per-key order
        assert "m3" in visible
        later = bus.fetch(partition_of("a", bus.partitions), 10, now + 61)
        assert [d.msg_id for d in later][:2] == ["m1", "m2"]
        assert later[0].attempts == 1

    def test_dead_letter_keeps_reason_and_replays(self, bus: Bus) -> None:
        bus.publish([msg(1), msg(2)])
        part = partition_of("k1", bus.partitions)
        d1 = bus.fetch(part, 1, 1e12)[0]
        bus.dead(d1, "unmapped facility XYZ", now=5.0)
        dead = bus.dead_letters()
        assert [(d.msg_id, d.reason) for d in dead] == [("m1", "unmapped facility XYZ")]
        assert dead[0].body == b"body1"
        assert [d.msg_id for d in bus.fetch(part, 5, 1e12)] == ["m2"]  # dead does not block
        assert bus.replay_dead([dead[0].seq]) == 1
        assert bus.dead_letters() == []
        assert sorted(d.msg_id for d in bus.fetch(part, 5, 1e12)) == ["m1", "m2"]

    def test_replay_requeues_settled_messages_under_same_id(self, bus: Bus) -> None:
        bus.publish([msg(1)])
        part = partition_of("k1", bus.partitions)
        bus.ack(bus.fetch(part, 1, 1e12))
        assert bus.pending() == 0
        assert bus.replay([msg(1)]) == 1
        assert [d.msg_id for d in bus.fetch(part, 5, 1e12)] == ["m1"]
        bus.publish([msg(1)])  # still deduplicated after replay
        assert bus.pending() == 1

    def test_an_id_replayed_twice_in_one_call_goes_back_once(self, bus: Bus) -> None:
        bus.publish([msg(1), msg(2)])
        part = partition_of("k1", bus.partitions)
        bus.ack(bus.fetch(part, 5, 1e12))
        twice = [msg(1), msg(2), replace(msg(1), body=b"later")]
        assert bus.replay(twice) == 2
        got = bus.fetch(part, 5, 1e12)
        assert [(d.msg_id, d.body) for d in got] == [("m2", msg(2).body), ("m1", b"later")]

    def test_a_lease_has_one_owner_until_it_expires(self, bus: Bus) -> None:
        assert bus.claim("partition:0", "w1", 10.0, now=1000.0)
        assert bus.claim("partition:0", "w1", 10.0, now=1005.0)  # renewal
        assert not bus.claim("partition:0", "w2", 10.0, now=1010.0)
        assert bus.claim("partition:1", "w2", 10.0, now=1010.0)
        assert bus.holders("partition:", now=1010.0) == 2
        assert bus.claim("partition:0", "w2", 10.0, now=1016.0)  # w1 stopped renewing
        assert not bus.claim("partition:0", "w1", 10.0, now=1017.0)
        bus.release("partition:0", "w1")  # not the owner: no effect
        assert not bus.claim("partition:0", "w3", 10.0, now=1018.0)
        bus.release("partition:0", "w2")
        assert bus.claim("partition:0", "w3", 10.0, now=1019.0)
        assert bus.holders("partition:", now=1019.0) == 2
        assert bus.holders("worker:", now=1019.0) == 0
        assert bus.holders("partition:", now=2000.0) == 0
