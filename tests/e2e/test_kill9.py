"""Fault test: SIGKILL the hub at random points while an EHR sends a day, then check the books.

The reliability contract under a crash: an ACKed message is durable, a message that was not
ACKed is resent by the source and never takes effect twice, and the worker resumes where it
died. So after 10,000 messages with the hub killed -9 several times mid-stream (and
restarted on the same data directory and ports each time), the store holds every message
exactly once, every event has been applied, nothing is stuck on the bus or dead-lettered,
and the ledger equals that of an uninterrupted run of the same messages.

Loop it by hand with other kill points, e.g.:
    for s in 1 2 3 4 5; do ISTHMUS_FAULT_SEED=$s .venv/test/bin/python -m pytest \
        tests/e2e/test_kill9.py -q -x || break; done
ISTHMUS_FAULT_KILLS (default 3) and ISTHMUS_FAULT_MESSAGES (default 10000) tune the run.
"""

from __future__ import annotations

import os
import random
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from isthmus.connectors.mllp_client import send_messages_sync
from isthmus.demo.ehr_day import SimMessage, expected_totals, hospital_day
from isthmus.flows.hl7_inbound import classify
from tests.e2e.conftest import ServeFactory
from tests.e2e.helpers import HOST, Serve, all_messages, isthmus_json, ledger_snapshot, msa_of

SEED = int(os.environ.get("ISTHMUS_FAULT_SEED", "11"))
KILLS = int(os.environ.get("ISTHMUS_FAULT_KILLS", "3"))
MESSAGES = int(os.environ.get("ISTHMUS_FAULT_MESSAGES", "10000"))
DAY_SEED = 11
CONNECTIONS = 4
ROUND = 400  # messages per send call; a kill lands inside one
DEADLINE_S = 150.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def must_resend(ack: bytes | None) -> bool:
    """No ACK, or AR with ERR-3 207: "not stored, resend later" (the source keeps it)."""
    if ack is None:
        return True
    code, _ = msa_of(ack)
    if code != "AR":
        return False
    for seg in ack.split(b"\r"):
        if seg.startswith(b"ERR"):
            fields = seg.split(b"|")
            if len(fields) > 3 and fields[3].split(b"^")[0] == b"207":
                return True
    return False


def by_key(keys: list[int]) -> Callable[[int, bytes], int]:
    """MLLP client route: message j of the batch goes to connection keys[j] % connections."""
    return lambda j, _payload: keys[j]


@dataclass
class Sender:
    """An EHR interface that keeps every un-ACKed message and resends it, in order."""

    messages: Sequence[SimMessage]
    serve: Serve
    up: threading.Event
    acks: list[bytes | None] = field(default_factory=list)
    acked: int = 0
    attempts: Counter[int] = field(default_factory=Counter)
    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        self.acks = [None] * len(self.messages)
        todo = list(range(len(self.messages)))  # original order; failures stay at the front
        deadline = time.monotonic() + DEADLINE_S
        try:
            while todo:
                assert time.monotonic() < deadline, f"could not deliver {len(todo)} messages"
                self.up.wait(60)
                batch = todo[:ROUND]
                keys = [zlib.crc32(self.messages[i].patient_key.encode()) for i in batch]
                for i in batch:
                    self.attempts[i] += 1
                # Same patient, same connection: per-key order holds on the wire.
                rep = send_messages_sync(
                    HOST,
                    self.serve.mllp_port,
                    [self.messages[i].raw for i in batch],
                    connections=CONNECTIONS,
                    window=16,
                    timeout_s=15,
                    route=by_key(keys),
                )
                failed = []
                for j, i in enumerate(batch):
                    if must_resend(rep.acks[j]):
                        failed.append(i)
                    else:
                        self.acks[i] = rep.acks[j]
                        self.acked += 1
                todo = failed + todo[len(batch) :]
                if failed:
                    time.sleep(0.05)
        finally:
            self.done.set()


def kill_points(n: int, kills: int, seed: int) -> list[tuple[int, float]]:
    """(ACK count to wait for, extra delay) per kill, spread over the run, fixed by seed."""
    rng = random.Random(seed)
    marks = sorted(rng.sample(range(n // 10, n * 9 // 10), kills))
    return [(m, rng.uniform(0.0, 0.3)) for m in marks]


def killer(
    serve: Serve,
    sender: Sender,
    points: list[tuple[int, float]],
    up: threading.Event,
    log: list[str],
) -> None:
    for mark, delay in points:
        while sender.acked < mark and not sender.done.is_set():
            time.sleep(0.005)
        time.sleep(delay)
        up.clear()
        log.append(f"kill -9 at {sender.acked} acked")
        serve.kill()
        serve.start(timeout=60)
        up.set()


def settle(serve: Serve) -> dict[str, Any]:
    return serve.wait_idle(timeout=90, stable_polls=5, every_s=0.2)


def reference_run(msgs: Sequence[SimMessage], serve: Serve) -> dict[str, Any]:
    up = threading.Event()
    up.set()
    sender = Sender(msgs, serve, up)
    sender.run()
    metrics = settle(serve)
    return {
        "ledger": ledger_snapshot(serve.data_dir),
        "store": metrics["store"],
        "acks": sender.acks,
    }


def stored_key(m: SimMessage) -> str:
    """How the hub keys a message: its identity `<MSH-3>^<MSH-4>:<MSH-10>` (or a hash of
    the bytes when there is no MSH-10), exactly as the inbox classifies it."""
    return classify(m.raw, channel="mllp", peer="", now=0.0, tenant="default", currency="USD")[
        0
    ].control_id


def test_kill9_mid_stream_loses_nothing_and_posts_once(serve_factory: ServeFactory) -> None:
    msgs = hospital_day(messages=MESSAGES, seed=DAY_SEED)
    ctx = f"(ISTHMUS_FAULT_SEED={SEED}, kills={KILLS}, messages={MESSAGES})"

    # Uninterrupted run of the same messages in a fresh data dir: the ledger to match.
    ref_hub = serve_factory("reference")
    ref = reference_run(msgs, ref_hub)
    assert ref_hub.stop() == 0

    hub = serve_factory("faulty")
    up = threading.Event()
    up.set()
    sender = Sender(msgs, hub, up)
    log: list[str] = []
    points = kill_points(len(msgs), KILLS, SEED)
    errors: list[BaseException] = []

    def kill_loop() -> None:
        try:
            killer(hub, sender, points, up, log)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
            up.set()

    t = threading.Thread(target=kill_loop, name="killer", daemon=True)
    t.start()
    try:
        sender.run()
    finally:
        t.join(120)
    assert not t.is_alive(), f"killer thread stuck {ctx}"
    assert not errors, f"restart failed: {errors[0]!r} {ctx}"
    assert hub.starts == 1 + KILLS, f"expected {KILLS} kills, log {log} {ctx}"
    assert any(n > 1 for n in sender.attempts.values()), (
        f"no kill interrupted the sender: nothing was resent {log} {ctx}"
    )

    metrics = settle(hub)
    data = hub.data_dir

    # Every message got its final answer, the one the simulated day expects.
    for i, (m, ack) in enumerate(zip(msgs, sender.acks, strict=True)):
        assert ack is not None, f"message {i} never ACKed {ctx}"
        code, cid = msa_of(ack)
        assert (code, cid) == (m.expect_ack, m.control_id), (i, m.kind, code, cid, ctx)

    # Stored exactly once: as many rows as distinct idempotency keys, no repeated id.
    listed = all_messages(data_dir=data)
    ids = Counter(x["control_id"] for x in listed)
    assert [k for k, n in ids.items() if n > 1] == [], ctx
    assert set(ids) == {stored_key(m) for m in msgs}, ctx
    assert len(listed) == len({stored_key(m) for m in msgs}) == metrics["store"]["messages"]
    status = {x["control_id"]: (x["status"], x["ack"]) for x in listed}
    for m in msgs:
        want = (m.expect_status, m.expect_ack)
        assert status[stored_key(m)] == want, (m.kind, m.control_id, ctx)

    # Nothing stuck: the bus is drained and nothing was dead-lettered.
    assert metrics["bus_pending"] == 0, ctx
    assert isthmus_json("dlq", "list", data_dir=data) == [], ctx

    # Every AA message has its effects: each charge or credit its journal entries, each
    # unmapped charge its work item, each patient its account.
    led = ledger_snapshot(data)
    journal = isthmus_json("ledger", "journal", "--limit", "100000000", data_dir=data)
    posted = Counter(e["correlation_id"] for e in journal)
    items = isthmus_json("workitems", "list", data_dir=data)
    for m in msgs:
        corr = f"mllp/{stored_key(m)}"
        if m.kind in ("charge", "credit"):
            assert posted[corr] >= 1, (m.kind, corr, ctx)
        elif m.kind == "unmapped":
            assert posted[corr] == 0, (corr, ctx)
    # the unmapped charges (one code) wait behind one item for that code, every one of them
    totals = expected_totals(msgs)
    assert [w["held"] for w in items] == [totals["kinds"]["unmapped"]], ctx
    assert items[0]["event_id"].startswith("mapping:charge_codes/"), ctx
    assert metrics["store"]["patients"] == totals["patients"], ctx
    assert metrics["store"]["open_work_items"] == 1, ctx
    ar = {r["currency"]: r["balance"] for r in led["rows"] if r["account"] == "1200"}
    assert ar == {c: str(v) for c, v in totals["net"].items()}, ctx
    assert led["balanced"], ctx

    # And the books equal those of the uninterrupted run.
    assert led["rows"] == ref["ledger"]["rows"], ctx
    assert led["totals"] == ref["ledger"]["totals"], ctx
    assert led["entry_keys"] == ref["ledger"]["entry_keys"], ctx
    assert metrics["store"] == ref["store"], ctx
    assert hub.stop() == 0, hub.stderr_text()
