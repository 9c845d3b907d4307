"""Fault test (issue 18): SIGKILL the hub in the middle of delivering status events to a
real webhook receiver, restart it, and check that every delivery arrived at least once and
that each key's deliveries first arrived in the order the hub queued them.

The hub is `isthmus serve` in a subprocess (embedded mode; scale-out when ISTHMUS_STORE /
ISTHMUS_BUS say so), charges come over real MLLP, and the receiver is an HTTP server in
this process that answers slowly enough for the kill to land mid-delivery.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from isthmus.app import open_store
from isthmus.config import load_settings
from isthmus.connectors.mllp_client import send_messages_sync
from isthmus.store.ports import DeliveryQuery
from tests.chart import demo_config
from tests.e2e.conftest import ServeFactory
from tests.e2e.helpers import HOST, TOKEN_SECRET
from tests.flows.helpers import adt, charge
from tests.support import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
PATIENTS, CHARGES = 4, 40
SCALE_OUT = ("ISTHMUS_STORE", "ISTHMUS_BUS", "ISTHMUS_PG_DSN", "ISTHMUS_NATS_URL")


@dataclass
class Receiver:
    arrivals: list[str] = field(default_factory=list)  # idempotency keys, as they came
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def seen(self) -> int:
        with self.lock:
            return len(self.arrivals)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(0.01)  # a receiver that takes its time: the kill lands mid-send
            with rec.lock:
                rec.arrivals.append(self.headers["Idempotency-Key"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rec.url = f"http://{HOST}:{server.server_address[1]}/status"
    yield rec
    server.shutdown()
    server.server_close()


def test_kill9_mid_delivery_loses_nothing_and_keeps_order_per_key(
    serve_factory: ServeFactory, receiver: Receiver, tmp_path: Path
) -> None:
    extra = f"""
[destinations.portal]
kind = "webhook"
url = "{receiver.url}"
timeout_s = 5
backoff_base_s = 0.2
backoff_max_s = 2
[[routes]]
name = "status"
events = ["ChargePosted", "AccountBalanceChanged"]
destinations = ["portal"]
"""
    config = demo_config(tmp_path / "hub", extra)
    env = {k: os.environ[k] for k in SCALE_OUT if os.environ.get(k)}
    hub = serve_factory(config=config, env=env)
    msgs = [adt(f"K9A{p}", f"K9M{p}") for p in range(PATIENTS)]
    msgs += [
        charge(f"K9C{p}-{n}", f"K9M{p}", f"{n + 1}.00")
        for n in range(CHARGES)
        for p in range(PATIENTS)
    ]
    report = send_messages_sync(HOST, hub.mllp_port, msgs, connections=1, window=1)
    assert report.acked == len(msgs)
    wait_until(lambda: receiver.seen() >= 40, what="deliveries under way")
    hub.kill()  # SIGKILL: no settle, no lease release
    before = receiver.seen()
    hub.start()
    expected = PATIENTS * CHARGES * 2  # a ChargePosted and an AccountBalanceChanged each
    settings = load_settings(
        config, data_dir=hub.data_dir, env={**env, "ISTHMUS_TOKEN_SECRET": TOKEN_SECRET}
    )
    store = open_store(settings)
    try:

        def all_sent() -> bool:
            rows = store.deliveries(DeliveryQuery(limit=100_000))
            return len(rows) == expected and all(r.status == "sent" for r in rows)

        wait_until(all_sent, timeout=120, what="every delivery sent after the restart")
        rows = store.deliveries(DeliveryQuery(limit=100_000))
    finally:
        store.close()
    assert before < expected  # the kill landed before the end
    with receiver.lock:
        arrivals = list(receiver.arrivals)
    assert set(arrivals) == {r.idempotency_key for r in rows}  # every one, at least once
    print(f"{len(arrivals)} arrivals of {expected} deliveries, {before} before the kill")
    first: dict[str, int] = {}
    for i, idem in enumerate(arrivals):
        first.setdefault(idem, i)
    by_key: dict[str, list[str]] = {}
    for r in rows:  # id order: the order they were queued in
        by_key.setdefault(r.key, []).append(r.idempotency_key)
    assert len(by_key) == PATIENTS
    for key, queued in by_key.items():
        assert sorted(queued, key=first.__getitem__) == queued, key
