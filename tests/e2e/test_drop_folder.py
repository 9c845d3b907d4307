"""`isthmus serve` watches <data_dir>/drop: a payer's 835 dropped there posts, once."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal

from isthmus.demo.remit835 import ClaimToPay, remittance_835
from tests.e2e.conftest import ServeFactory
from tests.e2e.helpers import isthmus_json


def test_a_dropped_835_is_taken_and_moved_to_done(serve_factory: ServeFactory) -> None:
    hub = serve_factory()
    drop = hub.data_dir / "drop"
    raw = remittance_835([ClaimToPay("NOSUCH1", Decimal("100.00")),
                          ClaimToPay("NOSUCH2", Decimal("40.00"))],
                         day=date(2026, 11, 3), seed=1, control=4242)
    (drop / "inbound" / ".payer.835.part").write_bytes(raw)  # an upload in flight
    (drop / "inbound" / ".payer.835.part").rename(drop / "inbound" / "payer.835")
    deadline = time.time() + 30
    while not (drop / "done" / "payer.835").exists():
        assert time.time() < deadline, "the drop folder never took the file"
        time.sleep(0.2)
    hub.wait_idle()
    ack = hub.data_dir / "outbound" / "x12" / "000004242.999"
    assert ack.exists() and b"IK5*A" in ack.read_bytes()
    # unknown accounts: the payment waits as unapplied cash, one work item per claim
    items = isthmus_json("workitems", "list", data_dir=hub.data_dir)
    assert sorted(w["kind"] for w in items) == ["denial", "unapplied_cash"]
    (drop / "inbound" / "again.835").write_bytes(raw)  # dropped twice: nothing new
    deadline = time.time() + 30
    while not (drop / "done" / "again.835").exists():
        assert time.time() < deadline
        time.sleep(0.2)
    hub.wait_idle()
    assert isthmus_json("workitems", "list", data_dir=hub.data_dir) == items
