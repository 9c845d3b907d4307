"""Run the bus contract against every embedded adapter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from isthmus.bus.memory import MemoryBus
from isthmus.bus.ports import Bus
from isthmus.bus.sqlite import SqliteBus
from tests.bus.contract import BusContract, msg


class TestMemoryBus(BusContract):
    @pytest.fixture
    def bus(self) -> Iterator[Bus]:
        b = MemoryBus(partitions=3)
        yield b
        b.close()


class TestSqliteBus(BusContract):
    @pytest.fixture
    def bus(self, tmp_path: Path) -> Iterator[Bus]:
        b = SqliteBus(tmp_path / "bus.db", partitions=3)
        yield b
        b.close()


def test_sqlite_bus_survives_reopen(tmp_path: Path) -> None:
    b = SqliteBus(tmp_path / "bus.db", partitions=2)
    b.publish([msg(1), msg(2)])
    d = b.fetch(0, 10, 1e12) + b.fetch(1, 10, 1e12)
    b.nak(d[0], "boom", visible_at=123.0)
    b.close()
    again = SqliteBus(tmp_path / "bus.db", partitions=2)
    got = again.fetch(0, 10, 1e12) + again.fetch(1, 10, 1e12)
    assert {g.msg_id: g.attempts for g in got} == {"m1": 1, "m2": 0}
    again.close()
