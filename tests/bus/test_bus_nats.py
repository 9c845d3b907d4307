"""The bus contract against NATS JetStream, plus what only a broker can show.

Needs a JetStream server (tests/services.py: skipped locally when absent, fails under CI).
Every test gets its own stream, dead-letter stream, retry bucket and subject prefix, and
deletes them afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator

import nats
import nats.js.errors
import pytest

from isthmus.bus.nats import BusUnavailable, NatsBus
from isthmus.bus.ports import Bus, partition_of
from tests.bus.contract import BusContract, msg
from tests.services import NATS, require

pytestmark = pytest.mark.service
URL = f"nats://{NATS[0]}:{NATS[1]}"

Factory = Callable[..., NatsBus]


async def _drop(stream: str) -> None:
    nc = await nats.connect(URL)
    js = nc.jetstream()
    for name in (stream, f"{stream}_DLQ", f"KV_{stream}_RETRY"):
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(name)
    await nc.close()


@pytest.fixture
def make() -> Iterator[Factory]:
    """Open NatsBus instances on one fresh stream; close them and drop the stream after."""
    require("NATS JetStream", *NATS)
    tag = uuid.uuid4().hex[:10]
    opened: list[NatsBus] = []

    def factory(**kw: object) -> NatsBus:
        args: dict[str, object] = {"stream": f"T{tag}", "subject_prefix": f"t{tag}",
                                   "partitions": 3}
        args.update(kw)
        bus = NatsBus(URL, **args)  # type: ignore[arg-type]
        opened.append(bus)
        return bus

    yield factory
    for bus in opened:
        bus.close()
    asyncio.run(_drop(f"T{tag}"))


class TestNatsBus(BusContract):
    @pytest.fixture
    def bus(self, make: Factory) -> Iterator[Bus]:
        yield make()


def _wait_for(bus: NatsBus, part: int, want: int, deadline_s: float = 10) -> list[str]:
    got: list[str] = []
    end = time.monotonic() + deadline_s
    while len(got) < want and time.monotonic() < end:
        batch = bus.fetch(part, 100, time.time())
        got += [d.msg_id for d in batch]
        bus.ack(batch)
        if len(got) < want:
            time.sleep(0.05)
    return got


def test_publish_dedupe_across_instances(make: Factory) -> None:
    a, b = make(), make()
    a.publish([msg(1), msg(2)])
    b.publish([msg(2), msg(1), msg(3)])
    assert a.pending() == 3
    part = partition_of("k1", a.partitions)
    assert [d.msg_id for d in b.fetch(part, 10, time.time())] == ["m1", "m2", "m3"]


def test_instances_sharing_a_partition_split_it_without_duplicates(make: Factory) -> None:
    a, b = make(), make()
    a.publish([msg(i, key=f"acct-{i % 4}") for i in range(40)])
    mine: dict[str, list[str]] = {"a": [], "b": []}
    for _ in range(20):
        for name, bus in (("a", a), ("b", b)):
            for p in range(bus.partitions):
                got = bus.fetch(p, 3, time.time())
                mine[name] += [d.msg_id for d in got]
                bus.ack(got)
    assert mine["a"] and mine["b"]
    assert sorted(mine["a"] + mine["b"]) == sorted(f"m{i}" for i in range(40))
    assert a.pending() == 0


def test_unacked_message_is_redelivered_after_ack_wait(make: Factory) -> None:
    crashed, survivor = make(ack_wait_s=1), make(ack_wait_s=1)
    crashed.publish([msg(1)])
    part = partition_of("k1", crashed.partitions)
    assert [d.msg_id for d in crashed.fetch(part, 1, time.time())] == ["m1"]
    assert survivor.fetch(part, 1, time.time()) == []  # in flight with the first worker
    time.sleep(1.5)  # the first worker "died" holding it: the broker redelivers
    again = survivor.fetch(part, 1, time.time())
    assert [(d.msg_id, d.attempts) for d in again] == [("m1", 0)]  # no failure was recorded
    survivor.ack(again)
    assert survivor.pending() == 0


def test_nak_delay_is_kept_in_real_time_and_by_other_instances(make: Factory) -> None:
    a = make()
    a.publish([msg(1, "acct"), msg(2, "acct"), msg(3, "other")])
    part = partition_of("acct", a.partitions)
    first = a.fetch(part, 1, time.time())[0]
    a.nak(first, "ERP down", visible_at=time.time() + 1.0)
    a.close()  # retry state is in the broker, not in this process
    b = make()
    assert "m1" not in [d.msg_id for d in b.fetch(part, 10, time.time())]
    assert "m2" not in [d.msg_id for d in b.fetch(part, 10, time.time())]  # key still blocked
    time.sleep(1.2)
    later = b.fetch(part, 10, time.time())
    assert [(d.msg_id, d.attempts) for d in later if d.key == "acct"] == [("m1", 1), ("m2", 0)]


def test_max_deliver_exhaustion_goes_to_dead_letters(make: Factory) -> None:
    bus = make(max_deliver=3)
    bus.publish([msg(1), msg(2)])
    part = partition_of("k1", bus.partitions)
    for attempt in range(3):
        got = bus.fetch(part, 1, time.time())
        assert [(d.msg_id, d.attempts) for d in got] == [("m1", attempt)]
        bus.nak(got[0], f"boom {attempt}", visible_at=0)
    assert [d.msg_id for d in bus.fetch(part, 5, time.time())] == ["m2"]  # m1 exhausted
    [dead] = bus.dead_letters()
    assert dead.msg_id == "m1" and dead.body == b"body1" and dead.attempts == 3
    assert "max_deliver 3 exhausted" in dead.reason and "boom 2" in dead.reason
    assert bus.replay_dead() == 1
    assert bus.dead_letters() == []
    assert sorted(d.msg_id for d in bus.fetch(part, 5, time.time())) == ["m1", "m2"]


def test_odd_keys_and_reasons_round_trip(make: Factory) -> None:
    bus = make()
    bus.publish([msg(1, key="tenant|acct 7/é.*>")])
    part = partition_of("tenant|acct 7/é.*>", bus.partitions)
    d = bus.fetch(part, 1, time.time())[0]
    assert d.key == "tenant|acct 7/é.*>"
    bus.dead(d, "line one\r\nline two: ü", now=12.5)
    [dead] = bus.dead_letters()
    assert (dead.key, dead.reason, dead.failed_at) == (d.key, "line one\r\nline two: ü", 12.5)


def test_unreachable_broker_is_bus_unavailable() -> None:
    with pytest.raises(BusUnavailable):
        NatsBus("nats://127.0.0.1:1", stream="UNREACHABLE")
