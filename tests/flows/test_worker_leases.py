"""Partition leases: workers in several processes share the partitions, one owner each."""

from __future__ import annotations

from pathlib import Path

from isthmus.app import SystemClock
from isthmus.bus.memory import MemoryBus
from isthmus.demo.chart import demo_mappings
from isthmus.flows.processor import Processor
from isthmus.flows.retry import RetryPolicy
from isthmus.flows.worker import Worker
from isthmus.ledger.periods import FiscalCalendar
from isthmus.store.sqlite import SqliteStore


def workers(tmp_path: Path, n: int, parts: int = 6) -> tuple[MemoryBus, list[Worker]]:
    bus = MemoryBus(partitions=parts)
    store = SqliteStore(tmp_path / "s.db")
    proc = Processor("k", demo_mappings(), "1200", FiscalCalendar())
    return bus, [
        Worker(
            bus,
            store,
            proc,
            RetryPolicy(),
            partitions=range(parts),
            lease_ttl_s=10.0,
            owner=f"w{i}",
            clock=SystemClock(),
        )
        for i in range(n)
    ]


def test_workers_share_partitions_without_overlap(tmp_path: Path) -> None:
    _, ws = workers(tmp_path, 3)
    for _ in range(3):  # a few rounds: everyone has heartbeated, extras given back
        for w in ws:
            w.rebalance(100.0)
    held = [w.owned for w in ws]
    assert all(len(h) == 2 for h in held), held
    assert set().union(*held) == set(range(6))


def test_a_dead_workers_partitions_are_taken_over_after_the_ttl(tmp_path: Path) -> None:
    _, (a, b) = workers(tmp_path, 2)
    for now in (100.0, 101.0):
        a.rebalance(now)
        b.rebalance(now)
    assert len(a.owned) == 3 and len(b.owned) == 3
    # b is killed (-9): it never renews or releases
    a.rebalance(105.0)
    assert len(a.owned) == 3  # b's leases are still valid
    a.rebalance(112.0)  # past b's expiry (101 + 10)
    assert a.owned == set(range(6))


def test_a_joining_worker_gets_its_share(tmp_path: Path) -> None:
    _, (a, b) = workers(tmp_path, 2)
    a.rebalance(100.0)
    assert a.owned == set(range(6))
    b.rebalance(100.5)  # a still holds everything
    assert b.owned == set()
    a.rebalance(101.0)  # a sees two live workers and gives three back
    b.rebalance(101.5)
    assert len(a.owned) == 3 and b.owned == set(range(6)) - a.owned


def test_stop_releases_the_leases(tmp_path: Path) -> None:
    bus, (a, b) = workers(tmp_path, 2)
    a.rebalance(100.0)
    a.stop()
    assert bus.holders("partition:", 100.0) == 0 and bus.holders("worker:", 100.0) == 0
    assert b.rebalance(100.0) == set(range(6))
