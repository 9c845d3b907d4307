"""The in-memory fake destination, held to the same contract as the real adapters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.connectors.contract_destination import (
    DestinationContract,
    MemoryDestination,
    MemoryPeer,
    Peer,
    outgoing,
)

from isthmus.ports.destination import Destination, Outgoing


class TestMemoryDestination(DestinationContract):
    accepted_codes = ("stored",)
    dedupes = True

    @pytest.fixture
    def peer(self, tmp_path: Path) -> Iterator[MemoryPeer]:
        yield MemoryPeer()

    def open(self, peer: Peer, tmp_path: Path) -> Destination:
        assert isinstance(peer, MemoryPeer)
        return MemoryDestination("memory", peer)

    def open_down(self, tmp_path: Path) -> Destination:
        return MemoryDestination("memory", MemoryPeer(up=False))

    def item(self, n: int) -> Outgoing:
        return outgoing(n, b'{"patient": "DOE^JANE", "amount": "10.00"}')

    def refused(self, peer: Peer, tmp_path: Path) -> tuple[Destination, Outgoing]:
        return self.open(peer, tmp_path), outgoing(99, b'{"patient": "Jane Doe", "x": "REFUSE"}')
