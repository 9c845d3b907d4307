"""The supply store port, on both adapters: a session commits state and applied ids
together, and an error inside it keeps neither (issue 8)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from isthmus.flows.supply_state import MemorySupplyStore, SupplyStore
from isthmus.ledger.supply import OrderLine
from isthmus.store.supply_sqlite import SqliteSupplyStore


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SupplyStore]:
    s: SupplyStore = MemorySupplyStore() if request.param == "memory" \
        else SqliteSupplyStore.in_dir(tmp_path)
    yield s
    s.close()


def order() -> OrderLine:
    return OrderLine(po="PO", line="1", item="A", location="OR", quantity=Decimal(5),
                     unit_price=Decimal("2.00"), currency="USD", company="C100")


def test_a_session_commits_state_and_applied_ids_together(store: SupplyStore) -> None:
    with store.session() as state:
        state.book.open_order(order())
        store.mark_applied("usage/U1", b'{"x":1}')
        assert store.applied("usage/U1") == b'{"x":1}'
    with store.session() as state:
        assert ("PO", "1") in state.book.grni
        assert store.applied("usage/U1") == b'{"x":1}' and store.applied("usage/U2") is None


def test_an_error_in_a_session_keeps_nothing(store: SupplyStore) -> None:
    with pytest.raises(RuntimeError), store.session() as state:
        state.book.open_order(order())
        store.mark_applied("usage/U1", b"")
        raise RuntimeError("boom")
    with store.session() as state:
        assert state.book.grni == {} and store.applied("usage/U1") is None
