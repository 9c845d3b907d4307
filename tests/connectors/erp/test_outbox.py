"""Outbox to an ERP with an API (the in-memory fake): post the batch of its outbox row (of
a previous version's csv and jsonl rows, the jsonl one); a rejection becomes a finance-gl
work item with the ERP's message and a dead outbox row; resubmitting it queues the batch
again and the item closes when it posts; an outage is retried behind the circuit breaker
and drains in order."""

from __future__ import annotations

from tests.connectors.erp.conftest import cost_centers
from tests.flows.helpers import Rig, adt, charge

from isthmus.connectors.erp_ports import ErpBatchSink, MemoryErp, expected_balances
from isthmus.connectors.erp_tryton_setup import CHART
from isthmus.flows.export import (
    DESTINATION,
    Dispatcher,
    ErpUnavailable,
    batch_id_for,
    rejection_event_id,
    resubmit_rejected,
    seal_batches,
)
from isthmus.flows.retry import RetryPolicy
from isthmus.ledger.batch import JournalBatch, build_batch
from isthmus.ledger.batch_codec import BATCH_FORMAT
from isthmus.ledger.batch_file import batch_to_csv, batch_to_jsonl
from isthmus.recon.erp import reconcile

T0 = 2_000_000_000.0


def fake() -> MemoryErp:
    return MemoryErp(accounts={c: n for c, (n, _k) in CHART.items()}, cost_centers=cost_centers())


def charge_day(rig: Rig, tag: str, n: int = 6) -> None:
    rig.ingest(
        [adt(f"{tag}A", f"{tag}M1"), adt(f"{tag}B", f"{tag}M2")]
        + [
            charge(
                f"{tag}C{i}",
                f"{tag}M{1 + i % 2}",
                amount=f"{10 + i}.50",
                code=("71045", "80053", "99283")[i % 3],
                dept=("RAD", "LAB", "ED")[i % 3],
            )
            for i in range(n)
        ]
    )
    rig.drain()


def seal(rig: Rig, policy: str = "summary") -> list[JournalBatch]:
    return seal_batches(rig.store, policy_of=lambda _c: policy, now=T0)


def test_posts_the_batch_and_reconciles(rig: Rig) -> None:
    erp = fake()
    charge_day(rig, "a")
    [batch] = seal(rig)
    sink = ErpBatchSink(erp)
    assert Dispatcher(rig.store, sink, RetryPolicy()).run_once(T0) == 1  # one row per batch
    assert erp.calls == 1 and sink.moves_posted == len(erp.moves)
    assert erp.balances() == expected_balances([batch])
    report = reconcile(rig.store, erp)
    assert report["zero_variance"], report
    assert [c["state"] for c in report["batches"]] == ["posted"]


def test_rejection_becomes_work_item_then_resubmit_posts(rig: Rig) -> None:
    erp = fake()
    del erp.cost_centers["CC-4200"]  # the ERP lacks a cost center the hub maps LAB to
    charge_day(rig, "r")
    seal(rig)
    d = Dispatcher(rig.store, ErpBatchSink(erp), RetryPolicy())
    d.run_once(T0)
    [item] = rig.store.work_items("open")
    assert (item.kind, item.queue) == ("erp_rejected", "finance-gl")
    assert "CC-4200" in item.detail
    [dead] = [o for o in rig.store.outbox_items("dead")]
    assert dead.fmt == BATCH_FORMAT and item.event_id == rejection_event_id(dead.id)
    assert d.breaker.state == "closed"  # a rejection is an answer, not an outage
    assert not reconcile(rig.store, erp)["zero_variance"]

    erp.cost_centers["CC-4200"] = "Laboratory"  # the fix, in the ERP
    resubmit_rejected(rig.store, item.event_id, T0 + 1)
    rig.store.set_work_item_status(item.id, "resubmitted", "", T0 + 1)
    assert d.run_once(T0 + 2) == 1
    assert rig.store.work_item(item.id).status == "resolved"  # type: ignore[union-attr]
    assert reconcile(rig.store, erp)["zero_variance"]


class FlakyErp(MemoryErp):
    down = True

    def post_batch(self, batch: JournalBatch):  # type: ignore[no-untyped-def]
        if self.down:
            raise ErpUnavailable("connection refused")
        return super().post_batch(batch)


def test_outage_retries_opens_breaker_and_drains_in_order(rig: Rig) -> None:
    erp = FlakyErp(accounts={c: n for c, (n, _k) in CHART.items()}, cost_centers=cost_centers())
    d = Dispatcher(
        rig.store, ErpBatchSink(erp), RetryPolicy(max_attempts=50, base_s=0.0, max_s=0.0)
    )
    for n in range(3):
        charge_day(rig, f"o{n}")
        seal(rig)
    for k in range(6):
        d.run_once(T0 + k)
    assert d.breaker.state == "open"
    assert [o.fmt for o in rig.store.outbox_items("pending")].count(BATCH_FORMAT) == 3
    erp.down = False
    order: list[str] = []
    real = erp.post_batch

    def record(batch: JournalBatch):  # type: ignore[no-untyped-def]
        order.append(batch.batch_id)
        return real(batch)

    erp.post_batch = record  # type: ignore[method-assign]
    d.run_once(T0 + 1000)
    sealed = [b for b, *_ in rig.store.batches()]
    assert order == sealed
    assert reconcile(rig.store, erp)["zero_variance"]


def test_rows_of_the_previous_version_post_once_and_reconcile(rig: Rig) -> None:
    """A database written by the previous version (a csv row and a jsonl row per batch)
    still drains: the jsonl row posts the batch, the csv row is skipped."""
    erp = fake()
    charge_day(rig, "v")
    entries = rig.store.entries(unbatched_channel=rig.store.unbatched_channels()[0], limit=1000)
    batch = build_batch(
        batch_id_for(entries[0].channel, [e.entry_key for e in entries]),
        entries,
        policy="summary",
        channel=entries[0].channel,
    )
    assert rig.store.record_batch(
        batch,
        [
            (DESTINATION, "csv", batch_to_csv(batch).encode()),
            (DESTINATION, "jsonl", batch_to_jsonl(batch).encode()),
        ],
        T0,
    )
    sink = ErpBatchSink(erp)
    assert Dispatcher(rig.store, sink, RetryPolicy()).run_once(T0) == 2
    assert erp.calls == 1 and sink.moves_posted == len(erp.moves) > 0
    assert erp.balances() == expected_balances([batch])
    report = reconcile(rig.store, erp)
    assert report["zero_variance"], report
    assert [(c["state"], c["outbox"]) for c in report["batches"]] == [("posted", "sent")]
