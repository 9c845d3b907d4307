"""The KPIs from the analytics facts (issue 21 item 4): the same numbers as the inbox scan
they replace (tests/observe/kpis_reference.py), read incrementally, never by a scan."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from isthmus.analytics.feed import FactFeed
from isthmus.config import SlaSettings
from isthmus.observe.kpis import Kpis, ascending_latency, compute_kpis, latency
from isthmus.store.memory import MemoryStore
from isthmus.store.ports import HELD, Hold, Inbound, Store
from tests.observe.builders import (
    DAY,
    NOW,
    T,
    charge,
    entry,
    envelope,
    post_and_send,
    receive,
    remit,
    ts,
)
from tests.observe.kpis_reference import scan_kpis
from tests.observe.test_kpis import known_store

NOV1 = date(2026, 11, 1)


def same_figures(k: Kpis) -> Kpis:
    """The figures only: what the scan never had (where the facts come from) left out."""
    return dataclasses.replace(
        k, facts_mark=0, facts_warehouse_mark=0, facts_refreshed=None, facts_source=""
    )


class Reads:
    """A store whose reads are counted (and the inbox scan refused)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.afters: list[int] = []
        self.outbox = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def accepted_events(self, since: float | None = None) -> list[tuple[float, bytes]]:
        raise AssertionError("the KPIs scanned the inbox")

    def inbox_after(self, after: int, limit: int = 10_000) -> list[tuple[int, str, float, bytes]]:
        self.afters.append(after)
        return self.store.inbox_after(after, limit)

    def outbox_items(self, status: str | None = None) -> Any:
        self.outbox += status is None
        return self.store.outbox_items(status)


def counted(store: Store) -> tuple[Reads, Store]:
    r = Reads(store)
    return r, r  # type: ignore[return-value]  # a Store by duck typing


@pytest.mark.parametrize(
    "sla",
    [
        None,
        SlaSettings(
            charge_post_minutes=24 * 60.0,
            workitem_age_hours=24 * 50.0,
            queue_age_hours={"denials": 4.0},
        ),
    ],
)
def test_the_facts_give_the_numbers_of_the_inbox_scan(sla: SlaSettings | None) -> None:
    store = known_store()
    got = compute_kpis(store, NOW, sla=sla)
    assert same_figures(got) == scan_kpis(store, NOW, sla=sla)
    assert (
        got.facts_source == "store"
        and got.facts_mark == max(m.id for m in store.messages())
        and got.facts_warehouse_mark == 0
    )


def test_a_feed_reads_only_the_new_messages_and_never_scans() -> None:
    reads, store = counted(known_store())
    feed = FactFeed(store, max_age_s=60.0)
    first = compute_kpis(store, NOW, feed=feed)
    mark = first.facts_mark
    assert reads.afters == [0]  # one short page: caught up
    assert compute_kpis(store, NOW, feed=feed) == first  # within max_age: no store read
    assert reads.afters == [0]

    receive(reads.store, "D9", [envelope("c9", charge("70.00", NOV1), control="D9")], T + 10)
    later = NOW.replace(minute=1)
    k = compute_kpis(store, later, feed=feed)
    assert reads.afters == [0, mark]  # from the watermark on
    assert k.facts_mark == mark + 1 and k.facts_refreshed == later
    assert k.unposted_charges == first.unposted_charges + 1
    assert k.unposted_amount["USD"] == first.unposted_amount["USD"] + Decimal("70.00")
    assert same_figures(k) == scan_kpis(reads.store, later)


def test_full_pages_are_read_on_until_a_short_one() -> None:
    reads, store = counted(known_store())
    k = compute_kpis(store, NOW, feed=FactFeed(store, page=1))
    assert reads.afters == list(range(k.facts_mark + 1)) and k.facts_mark == 5  # 5 messages
    assert same_figures(k) == scan_kpis(reads.store, NOW)


def test_a_posting_shows_at_the_next_refresh_and_is_final() -> None:
    reads, store = counted(MemoryStore())
    receive(
        reads.store, "D1", [envelope("c1", charge("100.00", NOV1), control="D1")], ts(NOV1) + 3600
    )
    feed = FactFeed(store, max_age_s=0.0)
    k = compute_kpis(store, NOW, feed=feed)
    assert (k.unposted_charges, k.posted_charges) == (1, 0)
    post_and_send(reads.store, "B1", [entry("c1", "100.00")], sent_at=None)
    k = compute_kpis(store, NOW, feed=feed)
    assert (k.unposted_charges, k.posted_charges) == (1, 0)  # sealed, not delivered
    for item in reads.store.outbox_items():
        reads.store.outbox_settle(item.id, status="sent", visible_at=ts(NOV1) + DAY)
    k = compute_kpis(store, NOW, feed=feed)
    assert (k.unposted_charges, k.posted_charges) == (0, 1)
    assert k.charge_lag.p50_s == DAY and k.posted_amount == {"USD": Decimal("100.00")}
    seen = reads.outbox
    compute_kpis(store, NOW, feed=feed)
    assert reads.outbox == seen  # nothing left to post: the outbox is not read again


def test_a_held_message_counts_once_its_channel_releases_it() -> None:
    store = MemoryStore()
    env = envelope(
        "r1", remit("0", status="4", carcs=[("CO", "50", "100.00")]), channel="x12", control="H1"
    )
    store.accept(
        [
            Inbound(
                channel="x12",
                control_id="H1",
                raw=b"ISA",
                received_at=T - 60,
                peer="p",
                message_type="835",
                status=HELD,
                ack_code="999-E",
                error="",
                events=msgspec.json.encode([env]),
                hold=Hold("unbalanced_remittance", "cash-posting", "out"),
            )
        ]
    )
    feed = FactFeed(store, max_age_s=0.0)
    k = compute_kpis(store, NOW, feed=feed)
    assert k.remitted_claims == 0 and k.facts_mark == 1  # passed, not counted
    assert store.release("x12", "H1", resolution="payer confirmed", now=T) is not None
    k = compute_kpis(store, NOW, feed=feed)
    assert (k.remitted_claims, k.denied_claims) == (1, 1)
    assert same_figures(k) == scan_kpis(store, NOW)
    assert compute_kpis(store, NOW, feed=feed).remitted_claims == 1  # once


@pytest.mark.parametrize("step", [lambda t: t + 30.0, lambda t: t - 30.0])
def test_a_feed_refreshes_when_older_than_its_age_or_the_clock_went_back(
    step: Callable[[float], float],
) -> None:
    reads, store = counted(MemoryStore())
    feed = FactFeed(store, max_age_s=10.0)
    feed.snapshot(T)
    feed.snapshot(T + 9.9)
    assert len(reads.afters) == 1
    feed.snapshot(step(T))
    assert len(reads.afters) == 2


@pytest.mark.parametrize("n", [1, 2, 19, 20, 21, 100])
def test_ascending_latency_is_the_nearest_rank_latency(n: int) -> None:
    values = [float((i * 37) % 101) for i in range(n)]
    assert ascending_latency(sorted(values), sum(values)) == latency(values)
    assert ascending_latency([], 0.0) == latency([])
