"""The bus consumer: per-key order under retries, persisted backoff, dead letters with the
reason, replay after the fix, and savepoint isolation inside a batch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from isthmus.bus.ports import Publish
from isthmus.flows.errors import PermanentError, TransientError
from isthmus.flows.processor import Processor
from isthmus.flows.relay import TOPIC
from isthmus.flows.retry import RetryPolicy
from isthmus.ledger.periods import FiscalCalendar
from isthmus.model.envelope import Envelope
from isthmus.store.ports import Tx
from tests.flows.helpers import (
    Rig,
    adt,
    charge,
    corr,
    key,
    make_processor,
    make_rig,
    merge,
    token,
)

T0 = 1_900_000_000.0
A, B = "MA1", "MB2"


@dataclass
class Flaky:
    """A Processor that fails chosen events, `times` times each (None: always)."""

    inner: Processor
    fail: dict[str, Callable[[], Exception]] = field(default_factory=dict)
    times: int | None = None
    after_effects: bool = False  # fail after the real handler wrote its effects
    applied: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)

    def handle(self, tx: Tx, env: Envelope, now: float) -> str:
        n = self.calls[env.event_id] = self.calls.get(env.event_id, 0) + 1
        failing = env.event_id in self.fail and (self.times is None or n <= self.times)
        if failing and not self.after_effects:
            raise self.fail[env.event_id]()
        out = self.inner.handle(tx, env, now)
        if failing:
            raise self.fail[env.event_id]()
        self.applied.append(env.event_id)
        return out


def flaky_rig(
    tmp: Path, flaky: Flaky, *, partitions: int = 1, policy: RetryPolicy | None = None
) -> Rig:
    return make_rig(
        tmp,
        partitions=partitions,
        processor=flaky,
        policy=policy or RetryPolicy(max_attempts=3, base_s=10, max_s=10),
    )


@pytest.fixture
def flaky() -> Flaky:
    return Flaky(make_processor())


@pytest.fixture
def frig(tmp_path: Path, flaky: Flaky) -> Iterator[Rig]:
    r = flaky_rig(tmp_path, flaky)
    yield r
    r.store.close()


FEED = [
    adt("O1", A),
    charge("O2", A, amount="10.00"),
    adt("O3", B),
    charge("O4", A, amount="20.00"),
    charge("O5", B, amount="7.00"),
]


def test_transient_failure_naks_with_backoff_and_holds_its_key(frig: Rig, flaky: Flaky) -> None:
    flaky.fail[f"{corr('O2')}/0"] = lambda: TransientError("ERP busy", retry_after=30)
    flaky.times = 1
    frig.ingest(FEED)
    frig.drain_at(T0)
    # A's later charge waits behind the failed one; B goes on
    assert f"{corr('O4')}/0" not in flaky.applied
    assert {f"{corr('O3')}/0", f"{corr('O5')}/0"} <= set(flaky.applied)
    assert frig.ar() == {(token(B), "USD"): Decimal("7.00")}
    assert frig.worker.stats.retried == 1
    # the retry state lives in the bus: invisible before retry_after, then attempt 1 done
    assert frig.drain_at(T0 + 29) == 0
    (d, *_rest) = frig.bus.fetch(0, 10, T0 + 30)
    assert (d.msg_id, d.attempts) == (f"{corr('O2')}/0", 1)
    frig.drain_at(T0 + 30)
    a_events = [e for e in flaky.applied if e in (f"{corr('O2')}/0", f"{corr('O4')}/0")]
    assert a_events == [f"{corr('O2')}/0", f"{corr('O4')}/0"]
    assert frig.ar()[(token(A), "USD")] == Decimal("30.00")
    assert frig.bus.pending() == 0 and frig.bus.dead_letters() == []


def test_backoff_without_retry_after_follows_the_policy(frig: Rig, flaky: Flaky) -> None:
    flaky.fail[f"{corr('O2')}/0"] = lambda: TransientError("ERP busy")
    flaky.times = 1
    frig.ingest(FEED)
    frig.drain_at(T0)
    # RetryPolicy(base 10 s, cap 10 s): full jitter between 5 and 10 seconds
    assert all(d.msg_id != f"{corr('O2')}/0" for d in frig.bus.fetch(0, 10, T0 + 4.99))
    assert frig.bus.fetch(0, 10, T0 + 10)[0].msg_id == f"{corr('O2')}/0"


def test_retries_run_out_into_the_dead_letter_queue(frig: Rig, flaky: Flaky) -> None:
    flaky.fail[f"{corr('O2')}/0"] = lambda: TransientError("ERP busy", retry_after=5)
    frig.ingest(FEED)
    for i in range(3):
        frig.drain_at(T0 + 10 * i)
    (dead,) = frig.bus.dead_letters()
    assert (dead.msg_id, dead.attempts) == (f"{corr('O2')}/0", 3)
    assert dead.reason == "TransientError: ERP busy"
    assert flaky.calls[f"{corr('O2')}/0"] == 3
    # the key moved on: A's next charge is applied after the dead letter
    assert f"{corr('O4')}/0" in flaky.applied
    assert frig.ar()[(token(A), "USD")] == Decimal("20.00")

    # after the fix, the dead letter is replayed and applied once
    flaky.fail.clear()
    assert frig.bus.replay_dead() == 1
    frig.drain_at(T0 + 100)
    assert frig.bus.dead_letters() == []
    assert frig.ar()[(token(A), "USD")] == Decimal("30.00")
    assert frig.bus.replay_dead() == 0
    frig.drain_at(T0 + 200)
    assert flaky.applied.count(f"{corr('O2')}/0") == 1
    assert frig.entry_keys().count(f"{corr('O2')}/0") == 1


def test_permanent_error_is_dead_at_once(frig: Rig, flaky: Flaky) -> None:
    flaky.fail[f"{corr('O2')}/0"] = lambda: PermanentError("no posting rule")
    frig.ingest(FEED)
    frig.drain_at(T0)
    (dead,) = frig.bus.dead_letters()
    assert (dead.msg_id, dead.attempts, dead.reason) == (
        f"{corr('O2')}/0",
        1,
        "PermanentError: no posting rule",
    )
    assert frig.worker.stats.retried == 0
    assert flaky.calls[f"{corr('O2')}/0"] == 1
    assert f"{corr('O4')}/0" in flaky.applied  # the key is not blocked by a dead message
    flaky.fail.clear()
    frig.bus.replay_dead()
    frig.drain_at(T0 + 1)
    frig.bus.replay_dead()
    frig.drain_at(T0 + 2)
    assert frig.entry_keys().count(f"{corr('O2')}/0") == 1
    assert frig.ar() == {(token(A), "USD"): Decimal("30.00"), (token(B), "USD"): Decimal("7.00")}


def test_undecodable_envelope_is_dead_at_once(rig: Rig) -> None:
    rig.bus.publish([Publish("junk/1", TOPIC, key(A), b"{not json")])
    rig.ingest([charge("J1", B)])
    rig.drain_at(T0)
    (dead,) = rig.bus.dead_letters()
    assert dead.msg_id == "junk/1" and dead.reason.startswith("PermanentError: undecodable")
    assert rig.ar() == {(token(B), "USD"): Decimal("100.00")}


def test_one_failing_message_does_not_undo_its_neighbours(frig: Rig, flaky: Flaky) -> None:
    # O4 writes its posting, then fails: the savepoint must drop exactly that posting
    flaky.fail[f"{corr('O4')}/0"] = lambda: PermanentError("boom after effects")
    flaky.after_effects = True
    frig.ingest(FEED)
    settled = frig.worker.run_once(0, T0)
    assert settled == 7  # one batch, one transaction: 7 events (2 per ADT^A04)
    assert frig.bus.pending() == 0
    assert sorted(frig.entry_keys()) == [f"{corr('O2')}/0", f"{corr('O5')}/0"]
    assert frig.ar() == {(token(A), "USD"): Decimal("10.00"), (token(B), "USD"): Decimal("7.00")}
    assert frig.balanced()
    assert frig.store.counts()["charges"] == 2


def test_a_transient_storm_on_one_key_leaves_the_others_flowing(tmp_path: Path) -> None:
    flaky = Flaky(
        make_processor(),
        fail={f"{corr('S0')}/0": lambda: TransientError("locked", retry_after=60)},
        times=1,
    )
    rig = flaky_rig(tmp_path, flaky, partitions=3)
    try:
        rig.ingest(
            [charge(f"S{i}", A, amount="1.00") for i in range(3)]
            + [charge(f"X{i}", f"MX{i}", amount="2.00") for i in range(20)]
        )
        rig.drain_at(T0)
        assert [e for e in flaky.applied if e.startswith(corr("S"))] == []
        assert len([e for e in flaky.applied if e.startswith(corr("X"))]) == 20
        rig.drain_at(T0 + 61)
        assert [e for e in flaky.applied if e.startswith(corr("S"))] == [
            f"{corr('S0')}/0",
            f"{corr('S1')}/0",
            f"{corr('S2')}/0",
        ]
    finally:
        rig.store.close()


def test_merge_in_a_closed_period_moves_the_reclass_to_the_next_open_month(tmp_path: Path) -> None:
    """A merge is master data: it always happens. Its A/R reclass cannot post into a closed
    month, so it posts on the first day of the next open one (whatever the charge policy)."""
    cal = FiscalCalendar(closed=frozenset({"2026-11"}), policy="reject")
    rig = make_rig(
        tmp_path, partitions=1, calendar=cal, policy=RetryPolicy(max_attempts=2, base_s=1, max_s=1)
    )
    try:
        rig.ingest(
            [adt("C1", A), adt("C2", B), charge("C3", B, when="20261005"), merge("C4", A, B)]
        )
        for i in range(3):
            rig.drain_at(T0 + 10 * i)
        assert rig.bus.dead_letters() == []
        reclass = [e for e in rig.store.entries() if "/reclass/" in e.entry_key]
        assert len(reclass) == 1 and reclass[0].period == "2026-12"
        with rig.store.transaction() as tx:
            merged = tx.get_patient(key(B))
            assert merged is not None and merged.merged_into == key(A)
    finally:
        rig.store.close()
