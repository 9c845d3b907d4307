"""ERP export: sealing journal entries into batches (idempotent, PHI-free summaries, one
typed outbox row per batch), the dispatcher's persisted retries and circuit breaker, rows
it cannot read, rows of the previous version, and the atomic file sink."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from isthmus.connectors.erp_file import ErpFileSink
from isthmus.flows.export import (
    DESTINATION,
    CircuitBreaker,
    Dispatcher,
    ErpUnavailable,
    batch_id_for,
    seal_batches,
)
from isthmus.flows.retry import RetryPolicy
from isthmus.ledger import batch_codec
from isthmus.ledger.batch import JournalBatch, build_batch
from isthmus.ledger.batch_codec import BATCH_FORMAT, QueuedBatch
from isthmus.ledger.batch_file import batch_to_csv, batch_to_jsonl
from isthmus.store.ports import OutboxItem
from tests.flows.helpers import CHANNEL, Rig, adt, charge, corr, token
from tests.ledger.builders import make_charge, post

A, B = "ME1", "ME2"
T0 = 2_000_000_000.0


def ledger(rig: Rig) -> None:
    rig.ingest(
        [
            adt("E1", A),
            adt("E2", B),
            charge("E3", A, amount="100.00"),
            charge("E4", B, amount="40.00", code="85025"),
            charge("E5", A, amount="15.00", ttype="CD"),
            charge("E6", B, amount="60.00", code="71045", dept="RAD"),
        ]
    )
    rig.drain()


def seal(rig: Rig, policy: str = "summary", **kw: int) -> list[str]:
    return [b.batch_id for b in seal_batches(rig.store, policy_of=lambda ch: policy, now=T0, **kw)]


def test_sealing_twice_makes_one_batch(rig: Rig) -> None:
    ledger(rig)
    made = seal(rig)
    assert len(made) == 1 and made[0].startswith(f"JB-{CHANNEL}-")
    assert seal(rig) == []
    assert [b[0] for b in rig.store.batches()] == made
    assert rig.store.unbatched_channels() == []
    items = rig.store.outbox_items()
    assert [(i.batch_id, i.fmt, i.status) for i in items] == [(made[0], BATCH_FORMAT, "pending")]
    batch = read(items[0])
    assert sorted(batch.entry_keys) == sorted(rig.entry_keys())


def read(item: OutboxItem) -> JournalBatch:
    return batch_codec.decode(item.fmt, item.payload).batch


def test_new_entries_go_into_a_new_batch(rig: Rig) -> None:
    ledger(rig)
    first = seal(rig)
    rig.ingest([charge("E7", A, amount="5.00")])
    rig.drain()
    second = seal(rig)
    assert len(second) == 1 and second != first
    body = rig.store.batch_body(second[0])
    assert body is not None
    assert msgspec.json.decode(body)["entry_keys"] == [f"{corr('E7')}/0"]


def test_max_entries_splits_into_several_balanced_batches(rig: Rig) -> None:
    ledger(rig)
    made = seal(rig, max_entries=2)
    assert len(made) == 2  # 4 entries
    assert seal(rig, max_entries=2) == []
    keys: list[str] = []
    for item in rig.store.outbox_items():
        batch = read(item)
        assert all(c.debit_total == c.credit_total for c in batch.control)
        keys += batch.entry_keys
    assert sorted(keys) == sorted(rig.entry_keys())


def test_summary_batches_carry_no_account_tokens(rig: Rig) -> None:
    ledger(rig)
    seal(rig, "summary")
    items = rig.store.outbox_items()
    [batch] = [read(i) for i in items]
    assert batch.policy == "summary"
    assert all(ln.dims.account_token == "" for ln in batch.lines)
    for item in items:
        assert b"PA-" not in item.payload
        assert token(A).encode() not in item.payload
    # the summary still nets A/R to what the ledger holds
    ar = sum((ln.debit - ln.credit for ln in batch.lines if ln.account == "1200"), Decimal(0))
    assert ar == Decimal("185.00")


def test_detailed_batches_carry_account_tokens(rig: Rig) -> None:
    ledger(rig)
    seal(rig, "detailed")
    items = rig.store.outbox_items()
    [batch] = [read(i) for i in items]
    assert batch.policy == "detailed"
    ar_tokens = {ln.dims.account_token for ln in batch.lines if ln.account == "1200"}
    assert ar_tokens == {token(A), token(B)}
    for item in items:
        assert token(A).encode() in item.payload and token(B).encode() in item.payload


@dataclass
class FlakySink:
    """Fails the first `failures` deliveries, then records what it delivered, in order."""

    failures: int = 0
    calls: int = 0
    delivered: list[str] = field(default_factory=list)
    error: type[Exception] = ErpUnavailable

    def deliver(self, queued: QueuedBatch) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"ERP down (call {self.calls})")
        self.delivered.append(queued.batch.batch_id)


@pytest.fixture
def queued(rig: Rig) -> Iterator[list[str]]:
    """Three batches (one outbox row each) waiting for the ERP, in the order they must
    arrive."""
    ledger(rig)
    seal(rig)
    for i in range(2):
        rig.ingest([charge(f"Q{i}", A, amount="1.00")])
        rig.drain()
        seal(rig)
    yield [i.batch_id for i in rig.store.outbox_items()]


def test_failed_delivery_persists_retry_state(rig: Rig, queued: list[str]) -> None:
    sink = FlakySink(failures=1)
    disp = Dispatcher(rig.store, sink, RetryPolicy(max_attempts=5, base_s=4, max_s=4))
    assert disp.run_once(T0) == 0
    first = rig.store.outbox_items()[0]
    assert (first.status, first.attempts, first.last_error) == ("pending", 1, "ERP down (call 1)")
    assert T0 + 2 <= first.visible_at <= T0 + 4
    assert all(i.attempts == 0 for i in rig.store.outbox_items()[1:])
    assert sink.calls == 1  # stopped at the first failure
    # a new dispatcher (a restart) sees the same state: nothing is held in memory
    disp2 = Dispatcher(rig.store, sink, RetryPolicy(max_attempts=5, base_s=4, max_s=4))
    assert disp2.run_once(T0 + 5) == len(queued)
    assert sink.delivered == queued
    assert {i.status for i in rig.store.outbox_items()} == {"sent"}
    assert disp2.run_once(T0 + 6) == 0


def test_breaker_opens_after_threshold_and_waits_for_cooldown(rig: Rig, queued: list[str]) -> None:
    sink = FlakySink(failures=3)
    breaker = CircuitBreaker(threshold=3, cooldown_s=60)
    disp = Dispatcher(rig.store, sink, RetryPolicy(max_attempts=10, base_s=2, max_s=2), breaker)
    for i in range(3):
        assert disp.run_once(T0 + 5 * i) == 0
    assert breaker.state == "open"
    assert rig.store.outbox_items()[0].attempts == 3
    # open: the row is due, but nothing is tried until the cooldown has passed
    assert disp.run_once(T0 + 20) == 0
    assert disp.run_once(T0 + 10 + 59) == 0
    assert sink.calls == 3
    # half-open after the cooldown: the ERP is back, everything drains in order
    assert disp.run_once(T0 + 10 + 60) == len(queued)
    assert breaker.state == "closed"
    assert sink.delivered == queued
    assert [i.status for i in rig.store.outbox_items()] == ["sent"] * len(queued)


def test_breaker_reopens_when_the_trial_delivery_fails(rig: Rig, queued: list[str]) -> None:
    sink = FlakySink(failures=4)
    breaker = CircuitBreaker(threshold=3, cooldown_s=60)
    disp = Dispatcher(rig.store, sink, RetryPolicy(max_attempts=10, base_s=2, max_s=2), breaker)
    for i in range(3):
        disp.run_once(T0 + 5 * i)
    assert disp.run_once(T0 + 100) == 0  # the trial fails
    assert breaker.state == "open"
    assert disp.run_once(T0 + 130) == 0 and sink.calls == 4
    assert disp.run_once(T0 + 160) == len(queued)
    assert sink.delivered == queued


def test_an_erp_outage_never_makes_a_row_dead(rig: Rig, queued: list[str]) -> None:
    """ErpUnavailable is retried past max_attempts, backing off at most unavailable_max_s."""
    sink = FlakySink(failures=6)
    disp = Dispatcher(
        rig.store,
        sink,
        RetryPolicy(max_attempts=2, base_s=1, max_s=100),
        CircuitBreaker(threshold=100),
        unavailable_max_s=3,
    )
    for k in range(6):
        disp.run_once(T0 + 10 * k)
    assert rig.store.outbox_items("dead") == []
    [head] = [o for o in rig.store.outbox_items("pending") if o.attempts]
    assert head.attempts == 6 and head.visible_at <= T0 + 50 + 3
    assert disp.run_once(T0 + 60) == len(queued)
    assert sink.delivered == queued


def test_exhausted_retries_mark_the_row_dead_with_its_error(rig: Rig, queued: list[str]) -> None:
    sink = FlakySink(failures=2, error=RuntimeError)  # a fault that is not an outage
    disp = Dispatcher(
        rig.store,
        sink,
        RetryPolicy(max_attempts=2, base_s=1, max_s=1),
        CircuitBreaker(threshold=100),
    )
    disp.run_once(T0)
    disp.run_once(T0 + 5)
    (dead,) = rig.store.outbox_items("dead")
    assert (dead.batch_id, dead.fmt, dead.attempts) == (queued[0], BATCH_FORMAT, 2)
    assert dead.last_error == "ERP down (call 2)"
    assert disp.run_once(T0 + 10) == len(queued) - 1
    assert sink.delivered == queued[1:]


def test_later_batches_wait_behind_a_failed_one(rig: Rig, queued: list[str]) -> None:
    sink = FlakySink(failures=1)
    disp = Dispatcher(
        rig.store,
        sink,
        RetryPolicy(max_attempts=5, base_s=60, max_s=60),
        CircuitBreaker(threshold=5),
    )
    disp.run_once(T0)
    disp.run_once(T0 + 1)  # the first row waits for its retry (30 to 60 s)
    assert sink.delivered == []
    disp.run_once(T0 + 61)
    assert sink.delivered == queued


def sample(batch_id: str = "JB-mllp-abc") -> JournalBatch:
    entries = [
        post(make_charge(f"{10 + i}.25", txn=f"T{i}"), key=f"evt-{i}:charge", token=f"tok-{i}")
        for i in range(3)
    ]
    return build_batch(batch_id, entries, policy="detailed", channel="mllp")


def test_a_row_no_sink_can_read_is_dead_with_a_work_item_and_the_rest_drains(rig: Rig) -> None:
    """A row the dispatcher cannot decode (a format this version does not know, a damaged
    body) reaches no sink: it is dead with an erp_rejected work item, and the rows after
    it still go."""
    odd = msgspec.structs.replace(sample("JB-odd"), entry_keys=())
    assert rig.store.record_batch(odd, [(DESTINATION, "batch.v9", b"{}")], T0)
    ledger(rig)
    made = seal(rig)
    sink = FlakySink()
    assert Dispatcher(rig.store, sink, RetryPolicy()).run_once(T0) == 1
    assert sink.delivered == made
    [dead] = rig.store.outbox_items("dead")
    assert dead.batch_id == "JB-odd" and "'batch.v9' is not a journal batch" in dead.last_error
    [work] = rig.store.work_items("open")
    assert (work.kind, work.queue, work.key) == ("erp_rejected", "finance-gl", "JB-odd")


def queued_batch(batch_id: str) -> QueuedBatch:
    return QueuedBatch(batch=sample(batch_id))


def test_file_sink_writes_whole_files_and_rewrites_harmlessly(tmp_path: Path) -> None:
    folder = tmp_path / "erp" / "in"
    sink = ErpFileSink(folder)
    sink.deliver(queued_batch("JB-mllp-abc"))
    assert sorted(p.name for p in folder.iterdir()) == ["JB-mllp-abc.csv", "JB-mllp-abc.jsonl"]
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert before["JB-mllp-abc.csv"].startswith(b"record,batch_id,")
    sink.deliver(queued_batch("JB-mllp-abc"))
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert not list(folder.glob("*.part"))


def test_file_sink_writes_only_the_file_an_old_row_stands_for(tmp_path: Path) -> None:
    ErpFileSink(tmp_path).deliver(msgspec.structs.replace(queued_batch("JB-a"), files=("jsonl",)))
    assert [p.name for p in tmp_path.iterdir()] == ["JB-a.jsonl"]


def test_file_sink_never_shows_a_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "erp"
    sink = ErpFileSink(folder)

    def no_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_disk)
    with pytest.raises(ErpUnavailable, match="No space left"):
        sink.deliver(queued_batch("JB-mllp-def"))
    assert list(folder.iterdir()) == []
    monkeypatch.undo()
    sink.deliver(queued_batch("JB-mllp-def"))
    batch = sample("JB-mllp-def")
    assert (folder / "JB-mllp-def.csv").read_text() == batch_to_csv(batch)
    assert (folder / "JB-mllp-def.jsonl").read_text() == batch_to_jsonl(batch)
    assert not list(folder.glob("*.part"))


def test_file_sink_unwritable_folder_is_erp_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "erp"
    blocker.write_text("not a folder")
    with pytest.raises(ErpUnavailable):
        ErpFileSink(blocker).deliver(queued_batch("JB-x"))


def test_dispatcher_to_file_sink_end_to_end(rig: Rig, tmp_path: Path) -> None:
    ledger(rig)
    seal(rig)
    folder = tmp_path / "exports"
    assert Dispatcher(rig.store, ErpFileSink(folder), RetryPolicy()).run_once(T0) == 1
    [item] = rig.store.outbox_items()
    batch = read(item)
    assert {p.name: p.read_text() for p in folder.iterdir()} == {
        f"{batch.batch_id}.csv": batch_to_csv(batch),
        f"{batch.batch_id}.jsonl": batch_to_jsonl(batch),
    }


def test_a_database_of_the_previous_version_drains_as_it_would_have(
    rig: Rig, tmp_path: Path
) -> None:
    """Rows queued by the previous version (a csv row and a jsonl row per batch, as its
    seal_batches stored them) still drain, into the files it would have written."""
    ledger(rig)
    entries = rig.store.entries(unbatched_channel=CHANNEL, limit=100)
    keys = [e.entry_key for e in entries]
    batch = build_batch(batch_id_for(CHANNEL, keys), entries, policy="summary", channel=CHANNEL)
    csv_text, jsonl_text = batch_to_csv(batch), batch_to_jsonl(batch)
    assert rig.store.record_batch(
        batch,
        [(DESTINATION, "csv", csv_text.encode()), (DESTINATION, "jsonl", jsonl_text.encode())],
        T0,
    )
    folder = tmp_path / "exports"
    assert Dispatcher(rig.store, ErpFileSink(folder), RetryPolicy()).run_once(T0) == 2
    assert {p.name: p.read_text() for p in folder.iterdir()} == {
        f"{batch.batch_id}.csv": csv_text,
        f"{batch.batch_id}.jsonl": jsonl_text,
    }
    assert {i.status for i in rig.store.outbox_items()} == {"sent"}
