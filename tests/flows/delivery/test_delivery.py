"""The delivery engine (flows/delivery.py) with a scripted fake destination beside the
real `file` and `webhook` adapters (a real HTTP receiver on loopback): order per key,
persisted retries, a 60 s outage by injected time, rejection -> dead letter + work item ->
resend -> delivered, and a stable idempotency key."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from isthmus.config import DestinationSettings
from isthmus.connectors.dest_file import FileDestination
from isthmus.connectors.dest_webhook import open_destination as open_webhook
from isthmus.flows import delivery
from isthmus.flows.delivery import DeliveryEngine, work_item_ref
from isthmus.ports.destination import (
    Answer,
    DestinationRejected,
    DestinationUnavailable,
    Outgoing,
)
from isthmus.store.ports import DeliveryQuery, Store

T0 = 1_800_000_000.0


@dataclass
class Fake:
    """A destination that answers as `script(item, now)` says; records every try."""

    script: Callable[[Outgoing], Answer | Exception] = lambda item: Answer("ok")
    name: str = "fake"
    batch: int = 1
    tries: list[Outgoing] = field(default_factory=list)
    delivered: list[Outgoing] = field(default_factory=list)

    def send(self, items: Sequence[Outgoing]) -> Answer:
        self.tries.extend(items)
        outcome = self.script(items[0])
        if isinstance(outcome, Exception):
            raise outcome
        self.delivered.extend(items)
        return outcome

    def close(self) -> None:
        pass


def queue(store: Store, dest: str, *keys: str, now: float = T0, amount: str = "10.00") -> list[str]:
    """Queue one delivery per key (in order); their idempotency keys."""
    out: list[str] = []
    base = len(store.deliveries(DeliveryQuery(limit=100_000)))
    with store.transaction() as tx:
        for k in keys:
            n = base + len(out)
            idem = f"PaymentPosted:ev-{n}"
            body = json.dumps({"amount": amount, "currency": "USD", "n": n, "key": k})
            tx.add_delivery(
                destination=dest,
                key=k,
                idempotency_key=idem,
                event_id=f"ev-{n}",
                event_type="PaymentPosted",
                route="r",
                content_type="application/json",
                body=body.encode(),
                now=now,
            )
            out.append(idem)
    return out


def settings(name: str = "fake", **kw: object) -> DestinationSettings:
    return DestinationSettings(name=name, backoff_base_s=1.0, backoff_max_s=30.0, **kw)  # type: ignore[arg-type]


def per_key(items: Sequence[Outgoing]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for i in items:
        out.setdefault(i.key, []).append(i.idempotency_key)
    return out


def test_a_failing_key_waits_behind_its_retry_and_the_others_go_on(store: Store) -> None:
    ids = queue(store, "fake", "A", "B", "A", "B")
    fake = Fake(
        lambda i: (
            RuntimeError("adapter bug")
            if i.idempotency_key == ids[0] and i.attempt == 1
            else Answer("ok")
        )
    )
    engine = DeliveryEngine(store, fake, settings())
    stats = engine.run_once(T0)
    assert (stats.sent, stats.retried) == (2, 1)
    assert [i.idempotency_key for i in fake.delivered] == [ids[1], ids[3]]  # B went on
    assert engine.run_once(T0 + 0.1).sent == 0  # A's retry is not due: A waits, in order
    engine.run_once(T0 + 60)
    assert per_key(fake.delivered) == {"A": [ids[0], ids[2]], "B": [ids[1], ids[3]]}
    first = store.deliveries(DeliveryQuery(ids=(1,)))  # ids start at 1 in a fresh store
    assert first[0].attempts == 2 and first[0].status == "sent"


def test_a_60_s_outage_loses_nothing_and_drains_in_order_per_key(store: Store) -> None:
    down_until = T0 + 60
    clock = [T0]
    fake = Fake(
        lambda i: (
            DestinationUnavailable("connection refused") if clock[0] < down_until else Answer("ok")
        )
    )
    engine = DeliveryEngine(store, fake, settings())
    keys = [f"K{n % 5}" for n in range(60)]
    queued: list[str] = []
    opened = False
    while clock[0] < T0 + 300:
        if clock[0] < T0 + 60 and len(queued) < 60:  # load keeps coming during the outage
            queued += queue(store, "fake", *keys[len(queued) : len(queued) + 2], now=clock[0])
        engine.run_once(clock[0])
        opened = opened or engine.breaker.state == "open"
        clock[0] += 0.5
    assert len(queued) == 60 and opened
    assert len(fake.delivered) == 60 and len({i.idempotency_key for i in fake.delivered}) == 60
    expected: dict[str, list[str]] = {}
    for k, idem in zip(keys, queued, strict=True):
        expected.setdefault(k, []).append(idem)
    assert per_key(fake.delivered) == expected
    rows = store.deliveries(DeliveryQuery(limit=1000))
    assert {r.status for r in rows} == {"sent"}  # an outage never dead-letters
    assert max(r.attempts for r in rows) > 1


def test_a_rejection_is_a_dead_letter_with_a_work_item_until_resent(store: Store) -> None:
    (idem,) = queue(store, "fake", "A")
    refuse = [True]
    fake = Fake(
        lambda i: (
            DestinationRejected(Answer("AE", "ERR 207 application error"))
            if refuse[0]
            else Answer("AA", "MSA AA")
        )
    )
    engine = DeliveryEngine(store, fake, settings())
    assert engine.run_once(T0).dead == 1
    (row,) = store.deliveries()
    assert (row.status, row.answer_code, row.answer_detail) == (
        "dead",
        "AE",
        "ERR 207 application error",
    )
    (item,) = store.work_items_for(work_item_ref(row.id))
    assert (item.kind, item.queue, item.status) == ("delivery_rejected", "integration", "open")
    assert "AE ERR 207 application error" in item.detail and "fake" in item.detail
    assert engine.run_once(T0 + 3600).sent == 0  # dead stays dead
    refuse[0] = False
    assert delivery.resend(store, [row.id], T0 + 4000, by="alice") == [row.id]
    assert store.work_items_for(work_item_ref(row.id))[0].status == "resubmitted"
    assert engine.run_once(T0 + 4000).sent == 1
    (row,) = store.deliveries()
    assert (row.status, row.answer_code) == ("sent", "AA")
    assert store.work_items_for(work_item_ref(row.id))[0].status == "resolved"
    assert [i.idempotency_key for i in fake.tries] == [idem, idem]  # the same key both times


def test_the_idempotency_key_and_body_are_stable_across_retries(store: Store) -> None:
    queue(store, "fake", "A")
    fake = Fake(lambda i: DestinationUnavailable("timeout") if i.attempt < 4 else Answer("ok"))
    engine = DeliveryEngine(store, fake, settings())
    for t in range(0, 600, 5):
        engine.run_once(T0 + t)
    assert [i.attempt for i in fake.tries] == [1, 2, 3, 4]
    assert len({(i.idempotency_key, i.body) for i in fake.tries}) == 1
    assert store.deliveries()[0].status == "sent"


# --- the real adapters ------------------------------------------------------------------


@dataclass
class Receiver:
    """A webhook receiver on loopback: answers from `codes` (then 200), records requests."""

    codes: list[int] = field(default_factory=list)
    got: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            code = rec.codes.pop(0) if rec.codes else 200
            rec.got.append(({k.lower(): v for k, v in self.headers.items()}, body, code))
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/isthmus"
    yield rec
    server.shutdown()
    server.server_close()


def test_webhook_signs_keys_retries_5xx_and_dead_letters_4xx(
    store: Store, receiver: Receiver, tmp_path: Path
) -> None:
    secret = tmp_path / "hook.key"
    secret.write_text("s3cret\n")
    s = settings("portal", kind="webhook", url=receiver.url, secret_file=secret)
    engine = DeliveryEngine(store, open_webhook(s, ""), s)
    try:
        first, second = queue(store, "portal", "A", "B")
        receiver.codes = [503, 200, 422]
        assert engine.run_once(T0).retried == 1  # 503: unavailable, the round stops
        stats = engine.run_once(T0 + 60)
        assert (stats.sent, stats.dead) == (1, 1)  # the retry goes; B is refused (422)
    finally:
        engine.close()
    assert [(h["idempotency-key"], code) for h, _, code in receiver.got] == [
        (first, 503),
        (first, 200),
        (second, 422),
    ]
    for headers, body, _ in receiver.got:
        want = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert headers["x-isthmus-signature"] == f"sha256={want}"
        assert headers["content-type"] == "application/json"
    rows = {r.idempotency_key: r for r in store.deliveries()}
    assert (rows[first].status, rows[first].answer_code, rows[first].attempts) == ("sent", "200", 2)
    assert (rows[second].status, rows[second].answer_code) == ("dead", "422")
    assert store.work_items_for(work_item_ref(rows[second].id))[0].queue == "integration"


def test_webhook_down_is_unavailable_never_dead(store: Store) -> None:
    s = settings("portal", kind="webhook", url="http://127.0.0.1:9/none", timeout_s=2.0)
    engine = DeliveryEngine(store, open_webhook(s, ""), s)
    try:
        queue(store, "portal", "A")
        assert engine.run_once(T0).retried == 1
    finally:
        engine.close()
    (row,) = store.deliveries()
    assert row.status == "pending" and row.last_error.startswith("DestinationUnavailable")


def test_file_destination_writes_runs_with_control_totals(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    s = settings("drop", kind="file", path=str(folder), batch=3)
    engine = DeliveryEngine(store, FileDestination("drop", folder, batch=3), s)
    queue(store, "drop", "A", "B", "A", now=T0, amount="10.50")
    queue(store, "drop", "C", "A", now=T0, amount="0.25")
    assert engine.run_once(T0).sent == 5
    files = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    assert len(files) == 2 and all(f.suffix == ".jsonl" for f in files)
    assert not list(folder.glob("*.part"))
    controls = []
    for f in files:
        lines = [json.loads(x) for x in f.read_text().splitlines()]
        controls.append(lines[-1]["control"])
        assert len(lines) - 1 == lines[-1]["control"]["count"]
    assert [(c["count"], c["amounts"]) for c in controls] == [
        (3, {"USD": "31.50"}),
        (2, {"USD": "0.50"}),
    ]
    assert sum(Decimal(c["amounts"]["USD"]) for c in controls) == Decimal("32.00")
    assert {r.answer_code for r in store.deliveries()} == {"written"}
