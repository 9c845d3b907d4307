"""Alerts against a real local webhook receiver: one POST when a condition starts, none
while it holds, one when it clears; a restart does not fire again; a failing webhook loses
no transition."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from isthmus.app import Hub
from isthmus.bus.memory import MemoryBus
from isthmus.config import AlertSettings, SlaSettings, load_settings
from isthmus.observe.alerts import (
    Alerter,
    AlertState,
    Inputs,
    decode_state,
    encode_state,
    evaluate,
    pending_notifications,
    step,
)
from isthmus.runtime import start
from isthmus.store.ports import Store
from isthmus.store.sqlite import SqliteStore
from tests.observe.builders import T
from tests.support import await_until

SLA = SlaSettings()


@dataclass
class Receiver:
    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0

    def statuses(self) -> list[tuple[str, str]]:
        return [(b["status"], b["key"]) for b in self.bodies]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if rec.fail_next > 0:
                rec.fail_next -= 1
                self.send_response(503)
            else:
                rec.bodies.append(body)
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "store.db", synchronous="NORMAL")
    s.migrate()
    yield s
    s.close()


def settings(url: str, **kw: Any) -> AlertSettings:
    return AlertSettings(webhook_url=url, queue_age_minutes=60.0, **{"timeout_s": 5.0, **kw})


def open_item(store: Store, event_id: str, created: float) -> int:
    with store.transaction() as tx:
        item = tx.add_work_item(
            kind="denial",
            queue="denials",
            key="k",
            event_id=event_id,
            correlation_id="x12/1",
            detail="denied",
            envelope=b"{}",
            now=created,
        )
    assert item is not None
    return item


def test_one_alert_when_a_condition_starts_none_while_it_holds_one_when_it_clears(
    store: SqliteStore, receiver: Receiver
) -> None:
    bus = MemoryBus(partitions=1)
    conf = settings(receiver.url)
    alerter = Alerter(store, bus, conf, SLA)
    assert alerter.run_once(T) == [] and receiver.bodies == []  # nothing holds yet

    item = open_item(store, "e1", created=T - 2 * 3600)  # two hours old: past 60 min
    alerter.run_once(T + 30)
    assert receiver.statuses() == [("firing", "queue_age/denials")]
    first = receiver.bodies[0]
    assert first["rule"] == "queue_age" and first["labels"] == {"queue": "denials"}
    assert first["value"] > first["threshold"] == 3600.0

    for i in range(2, 8):  # it holds: several evaluations, no new POST
        alerter.run_once(T + 30 * i)
    restarted = Alerter(store, bus, conf, SLA)  # a new process: the state is persisted
    restarted.run_once(T + 300)
    assert len(receiver.bodies) == 1

    store.set_work_item_status(item, "resolved", "appealed", T + 310)
    restarted.run_once(T + 330)
    restarted.run_once(T + 360)
    assert receiver.statuses() == [
        ("firing", "queue_age/denials"),
        ("resolved", "queue_age/denials"),
    ]
    resolved = receiver.bodies[1]
    assert resolved["starts_at"] == first["starts_at"] and resolved["ends_at"]
    assert resolved["id"] != first["id"]


def test_a_failing_webhook_is_retried_with_backoff_and_loses_no_transition(
    store: SqliteStore, receiver: Receiver
) -> None:
    bus = MemoryBus(partitions=1)
    alerter = Alerter(store, bus, settings(receiver.url), SLA)
    item = open_item(store, "e1", created=T - 2 * 3600)
    receiver.fail_next = 2
    assert alerter.run_once(T) == []  # 503: kept
    assert alerter.run_once(T + 0.5) == []  # not due yet (backoff 1 s): no attempt
    assert receiver.fail_next == 1
    assert alerter.run_once(T + 1) == []  # second failure, backoff 2 s
    store.set_work_item_status(item, "resolved", "done", T + 2)
    sent = alerter.run_once(T + 3)  # both transitions go, in order
    assert [n.status for n in sent] == ["firing", "resolved"]
    assert receiver.statuses() == [
        ("firing", "queue_age/denials"),
        ("resolved", "queue_age/denials"),
    ]
    assert pending_notifications(store) == ()


def test_unreachable_webhook_keeps_the_transition_for_later(store: SqliteStore) -> None:
    bus = MemoryBus(partitions=1)
    alerter = Alerter(store, bus, settings("http://127.0.0.1:9/none", timeout_s=0.5), SLA)
    open_item(store, "e1", created=T - 2 * 3600)
    assert alerter.run_once(T) == []
    (kept,) = pending_notifications(store)
    assert (kept.status, kept.attempts, kept.next_attempt) == ("firing", 1, T + 1)


def test_rules() -> None:
    conf = AlertSettings(queue_age_minutes=10, error_rate=0.1, error_min_count=3)
    quiet = Inputs(
        {"denials": 599.0}, received=100, errors=10, sla_breaches={"q": 0}, circuit_open=False
    )
    assert evaluate(quiet, conf) == {}
    loud = Inputs(
        {"denials": 601.0, "cash-posting": 5.0},
        received=20,
        errors=3,
        sla_breaches={"charge-posting": 2},
        circuit_open=True,
    )
    assert sorted(evaluate(loud, conf)) == [
        "erp_circuit_open",
        "error_rate",
        "queue_age/denials",
        "sla_breach/charge-posting",
    ]
    few = Inputs({}, received=2, errors=2, sla_breaches={}, circuit_open=False)
    assert evaluate(few, conf) == {}  # 100 % but under error_min_count
    off = AlertSettings(queue_age_minutes=10, sla_breach=False, circuit_open=False)
    assert evaluate(loud, off).keys() == {"queue_age/denials", "error_rate"}


KEYS = st.sampled_from(["a", "b", "c"])


@given(st.lists(st.frozensets(KEYS), max_size=30))
def test_transitions_alternate_per_key_and_only_on_change(rounds: list[frozenset[str]]) -> None:
    conf = AlertSettings(sla_breach=True)
    state = AlertState()
    seen: dict[str, list[str]] = {}
    before: frozenset[str] = frozenset()
    for i, holding in enumerate(rounds):
        inputs = Inputs({}, 0, 0, {k: 1 for k in holding}, False)
        state, new = step(state, evaluate(inputs, conf), float(i))
        assert {n.key.split("/")[1] for n in new} == set(holding ^ before)
        for n in new:
            seen.setdefault(n.key, []).append(n.status)
        state = decode_state(encode_state(state))  # survives a restart at any round
        before = holding
    for statuses in seen.values():
        assert statuses == ["firing", "resolved"] * (len(statuses) // 2) + ["firing"] * (
            len(statuses) % 2
        )


def test_serve_runs_the_alert_loop(tmp_path: Path, receiver: Receiver) -> None:
    cfg = tmp_path / "hub.toml"
    cfg.write_text(
        f'[alerts]\nwebhook_url = "{receiver.url}"\ninterval_s = 0.1\n'
        "queue_age_minutes = 1\nsla_breach = false\n"
    )
    hub = Hub.open(load_settings(cfg, data_dir=tmp_path / "hub", env={}))
    open_item(hub.store, "e1", created=time.time() - 600)

    async def go() -> None:
        run = await start(hub, role="worker")
        try:
            await await_until(lambda: receiver.bodies, what="the first alert at the webhook")
            await asyncio.sleep(0.6)  # several more rounds while it holds: no repeat
        finally:
            await run.stop()

    try:
        asyncio.run(go())
    finally:
        hub.close()
    assert receiver.statuses() == [("firing", "queue_age/denials")]


def test_alert_and_sla_settings_from_the_file(tmp_path: Path) -> None:
    from isthmus.config import ConfigError  # noqa: PLC0415

    cfg = tmp_path / "hub.toml"
    cfg.write_text(
        '[alerts]\nwebhook_url = "http://127.0.0.1:9/h"\nerror_rate = 0.2\n'
        "[sla]\ncharge_post_minutes = 15\nqueue_age_hours = { denials = 72 }\n"
    )
    s = load_settings(cfg, data_dir=tmp_path, env={})
    assert (s.alerts.webhook_url, s.alerts.error_rate) == ("http://127.0.0.1:9/h", 0.2)
    assert s.sla == SlaSettings(charge_post_minutes=15, queue_age_hours={"denials": 72.0})
    for bad, field_name in (
        ('[alerts]\nwebhok_url = "x"\n', "webhok_url"),
        ("[alerts]\ninterval_s = 0\n", "interval_s"),
        ('[sla]\nqueue_age_hours = "x"\n', "queue_age_hours"),
    ):
        cfg.write_text(bad)
        with pytest.raises(ConfigError, match=field_name):
            load_settings(cfg, data_dir=tmp_path, env={})


def test_a_setting_of_the_wrong_type_is_refused(tmp_path: Path) -> None:
    from isthmus.config import ConfigError  # noqa: PLC0415

    cfg = tmp_path / "hub.toml"
    for bad in (
        '[alerts]\nerror_rate = "high"\n',
        "[alerts]\nsla_breach = 1\n",
        "[alerts]\nwebhook_url = 5\n",
        "[sla]\nworkitem_age_hours = true\n",
    ):
        cfg.write_text(bad)
        with pytest.raises(ConfigError, match="must be"):
            load_settings(cfg, data_dir=tmp_path, env={})
    cfg.write_text("[alerts]\nqueue_age_minutes = 5\n[sla]\ncharge_post_minutes = 30\n")
    s = load_settings(cfg, data_dir=tmp_path, env={})  # ints are fine where floats are
    assert (s.alerts.queue_age_minutes, s.sla.charge_post_minutes) == (5, 30)
