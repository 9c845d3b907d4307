"""The flow-state aggregate's contract: a flow's named state commits and rolls back with its
transaction, one holder at a time, and applied keys are kept once (ports_flow_state)."""

from __future__ import annotations

import threading
import time

import pytest

from isthmus.store.ports import Store


class FlowStateContract:
    """Mixed into StoreContract (contract.py), which gives the `store` fixture."""

    # flow state and applied ids ---------------------------------------------------------------

    def test_flow_state_saves_and_rolls_back_with_its_transaction(self, store: Store) -> None:
        with store.transaction() as tx:
            assert tx.load_state("supply") is None
            tx.save_state("supply", b"one")
            tx.mark_applied("supply/usage/U1", b"")
        with pytest.raises(RuntimeError), store.transaction() as tx:
            tx.save_state("supply", b"two")
            tx.mark_applied("supply/usage/U2", b"x")
            raise RuntimeError("the event's transaction fails")
        with store.transaction() as tx:
            assert tx.load_state("supply") == b"one"
            assert tx.applied("supply/usage/U1") == b""
            assert tx.applied("supply/usage/U2") is None
            tx.mark_applied("supply/usage/U1", b"again")  # the first record stays
            assert tx.applied("supply/usage/U1") == b""
            assert tx.load_state("other") is None

    def test_flow_state_writers_take_turns(self, store: Store) -> None:
        def bump() -> None:
            for _ in range(15):
                with store.transaction() as tx:
                    n = int(tx.load_state("counter") or b"0")
                    time.sleep(0.001)  # widen the window a lost update would need
                    tx.save_state("counter", str(n + 1).encode())

        workers = [threading.Thread(target=bump) for _ in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        with store.transaction() as tx:
            assert tx.load_state("counter") == b"30"
