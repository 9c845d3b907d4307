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
from typing import Any

import nats
import nats.js.errors
import pytest
from nats.js.kv import KeyValue

from isthmus.bus.nats import BusUnavailable, NatsBus
from isthmus.bus.ports import Bus, partition_of
from tests.bus.contract import BusContract, msg
from tests.services import NATS, require
from tests.support import wait_until

pytestmark = pytest.mark.service
URL = f"nats://{NATS[0]}:{NATS[1]}"

Factory = Callable[..., NatsBus]


async def _drop(stream: str) -> None:
    nc = await nats.connect(URL)
    js = nc.jetstream()
    for name in (stream, f"{stream}_DLQ", f"KV_{stream}_RETRY", f"KV_{stream}_LEASES"):
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
        args: dict[str, object] = {
            "stream": f"T{tag}",
            "subject_prefix": f"t{tag}",
            "partitions": 3,
        }
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
    ack_wait = 2.0
    crashed, survivor = make(ack_wait_s=ack_wait), make(ack_wait_s=ack_wait)
    crashed.publish([msg(1)])
    part = partition_of("k1", crashed.partitions)
    taken = time.monotonic()
    assert [d.msg_id for d in crashed.fetch(part, 1, time.time())] == ["m1"]
    early = survivor.fetch(part, 1, time.time())
    # in flight with the first worker: not handed out again before its ack wait ran out
    # (a test process paused longer than that by a busy machine may see it, rightly)
    assert early == [] or time.monotonic() - taken >= ack_wait, early
    # the first worker "died" holding it: the broker redelivers once the ack wait is over
    again = early or wait_until(
        lambda: survivor.fetch(part, 1, time.time()),
        what="the broker's redelivery of m1 after its ack wait",
    )
    assert time.monotonic() - taken >= ack_wait
    assert [(d.msg_id, d.attempts) for d in again] == [("m1", 0)]  # no failure was recorded
    survivor.ack(again)
    assert survivor.pending() == 0


def test_nak_delay_is_kept_in_real_time_and_by_other_instances(make: Factory) -> None:
    delay = 2.0
    a = make()
    a.publish([msg(1, "acct"), msg(2, "acct"), msg(3, "other")])
    part = partition_of("acct", a.partitions)
    first = a.fetch(part, 1, time.time())[0]
    visible = time.monotonic() + delay
    a.nak(first, "ERP down", visible_at=time.time() + delay)
    a.close()  # retry state is in the broker, not in this process
    b = make()
    held = [
        d
        for d in b.fetch(part, 10, time.time()) + b.fetch(part, 10, time.time())
        if d.key == "acct"
    ]
    if time.monotonic() < visible:  # checked only while the delay still runs
        assert held == []  # m1 waits for its retry, m2 behind it: the key is blocked
    later: list[tuple[str, int]] = [(d.msg_id, d.attempts) for d in held]

    def both() -> bool:
        later.extend(
            (d.msg_id, d.attempts) for d in b.fetch(part, 10, time.time()) if d.key == "acct"
        )
        return len(later) >= 2

    wait_until(both, what="m1 and m2 after m1's retry delay")
    assert time.monotonic() >= visible
    assert later == [("m1", 1), ("m2", 0)]


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


def _early_end_marker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every KV watcher say "no more initial values" before any, and so `kv.keys()`
    find none, as nats-py's can when entries are already on their way (nats-io/nats.py#842;
    seen on a busy machine as `holders` == 1 with two live leases)."""
    real = KeyValue.watch

    async def watch(self: KeyValue, keys: str, **kw: Any) -> KeyValue.KeyWatcher:
        watcher = await real(self, keys, **kw)
        early: asyncio.Queue[Any] = asyncio.Queue()
        early.put_nowait(None)
        while not watcher._updates.empty():
            early.put_nowait(watcher._updates.get_nowait())
        watcher._updates, watcher._init_done = early, True
        return watcher

    monkeypatch.setattr(KeyValue, "watch", watch)

    async def no_keys(self: KeyValue, *a: Any, **kw: Any) -> list[str]:
        raise nats.js.errors.NoKeysError

    monkeypatch.setattr(KeyValue, "keys", no_keys)


def test_holders_counts_every_live_lease_despite_an_early_end_marker(
    make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = make()
    assert a.claim("partition:0", "w1", 60.0, time.time())
    assert a.claim("partition:1", "w2", 60.0, time.time())
    assert a.claim("worker:w1", "w1", 60.0, time.time())
    _early_end_marker(monkeypatch)
    b = make()
    assert b.holders("partition:", time.time()) == 2
    assert b.holders("worker:", time.time()) == 1
