"""KPIs over known data: every figure is checked against numbers worked out by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import msgspec
import pytest

from isthmus.config import SlaSettings
from isthmus.observe.kpis import (
    CHARGE_POSTING,
    CarcDenials,
    Kpis,
    Latency,
    aging_label,
    compute_kpis,
    quantile,
)
from isthmus.store.memory import MemoryStore
from isthmus.store.ports import Store
from tests.observe.builders import (
    DAY,
    NOW,
    T,
    charge,
    entry,
    envelope,
    hold,
    post_and_send,
    receive,
    remit,
    ts,
)

NOV1, NOV2, NOV3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)


def known_store(store: Store | None = None) -> Store:
    store = store if store is not None else MemoryStore()
    c1 = envelope("c1", charge("100.00", NOV1), control="D1")
    c2 = envelope("c2", charge("200.00", NOV1), control="D2")
    c3 = envelope("c3", charge("50.00", NOV1), control="D3")
    c4 = envelope("c4", charge("25.00", NOV1, currency="EUR"), control="D4")
    receive(store, "D1", [c1], ts(NOV1) + 10 * 3600)  # posted 14 h later: an SLA breach
    receive(store, "D2", [c2], ts(NOV3) - 1800)  # posted 30 min later
    receive(store, "D3", [c3], T - 7200)  # held for 2 h: unposted and late
    receive(store, "D4", [c4], T - 600)  # sealed, not delivered yet: unposted, in time
    post_and_send(store, "B1", [entry("c1", "100.00")], sent_at=ts(NOV2))
    post_and_send(store, "B2", [entry("c2", "200.00")], sent_at=ts(NOV3))
    post_and_send(store, "B3", [entry("c4", "25.00")], sent_at=None)
    hold(store, c3, kind="unmapped_charge_code", queue="revenue-integrity", created=T - 7200)

    rs = {
        "r1": remit("80.00"),
        "r2": remit("0", status="4", carcs=[("CO", "50", "100.00")]),
        "r3": remit("0", carcs=[("CO", "16", "100.00"), ("PR", "1", "0")]),
        "r4": remit("0", status="4", carcs=[("CO", "50", "60.00"), ("CO", "16", "40.00")]),
        "r5": remit("40.00"),
        "r6": remit("10.00"),
        "r7": remit("5.00"),
    }
    envs = {k: envelope(k, v, channel="x12", control="R1") for k, v in rs.items()}
    reversal = envelope(
        "r8", msgspec.structs.replace(remit("80.00"), reversal=True), channel="x12", control="R1"
    )
    receive(store, "R1", [*envs.values(), reversal], T - 5 * 3600, channel="x12", mtype="835")
    post_and_send(store, "B4", [entry("r1", "80.00")], sent_at=T - 4 * 3600)
    for k in ("r2", "r4"):
        hold(store, envs[k], kind="denial", queue="denials", created=T - 5 * 3600)
    hold(store, envs["r5"], kind="unapplied_cash", queue="cash-posting", created=T - 45 * DAY)
    hold(store, envs["r6"], kind="unapplied_cash", queue="cash-posting", created=T - DAY)
    hold(store, envs["r7"], kind="unapplied_cash", queue="cash-posting", created=T - 99 * DAY)
    closed = [w for w in store.work_items() if w.event_id == "r7"]
    store.set_work_item_status(closed[0].id, "resolved", "matched", T)
    return store


@pytest.fixture(scope="module")
def kpis() -> Kpis:
    return compute_kpis(known_store(), NOW)


def test_unposted_charges_count_and_amount_per_currency(kpis: Kpis) -> None:
    assert kpis.unposted_charges == 2
    assert kpis.unposted_amount == {"USD": Decimal("50.00"), "EUR": Decimal("25.00")}
    assert kpis.posted_charges == 2
    assert kpis.posted_amount == {"USD": Decimal("300.00")}


def test_charge_lag_runs_from_service_date_to_erp_delivery(kpis: Kpis) -> None:
    assert kpis.charge_lag == Latency(count=2, p50_s=DAY, p95_s=2 * DAY, sum_s=3 * DAY)


def test_payment_visibility_runs_from_835_receipt_to_delivery(kpis: Kpis) -> None:
    assert kpis.payment_visibility == Latency(count=1, p50_s=3600.0, p95_s=3600.0, sum_s=3600.0)


def test_denial_rate_by_carc_over_remitted_claims(kpis: Kpis) -> None:
    assert kpis.remitted_claims == 7  # the reversal is not a claim remitted again
    assert kpis.denied_claims == 3
    assert kpis.denial_rate == pytest.approx(3 / 7)
    assert kpis.denials_by_carc == (CarcDenials("16", 2, 2 / 7), CarcDenials("50", 2, 2 / 7))


def test_unapplied_cash_aging_buckets_open_items_only(kpis: Kpis) -> None:
    rows = {b.label: (b.count, dict(b.amount)) for b in kpis.unapplied_cash}
    assert rows == {
        "0-30": (1, {"USD": Decimal("10.00")}),
        "31-60": (1, {"USD": Decimal("40.00")}),
        "61-90": (0, {}),
        "90+": (0, {}),
    }


def test_sla_breaches_per_queue(kpis: Kpis) -> None:
    # c1 posted 14 h after receipt, c3 still held after 2 h; r5 open for 45 days
    assert kpis.sla_breaches == {CHARGE_POSTING: 2, "cash-posting": 1}


def test_sla_thresholds_and_per_queue_overrides_apply() -> None:
    sla = SlaSettings(
        charge_post_minutes=24 * 60.0,
        workitem_age_hours=24 * 50.0,
        queue_age_hours={"denials": 4.0},
    )
    k = compute_kpis(known_store(), NOW, sla=sla)
    assert k.sla_breaches == {"denials": 2}


def test_an_empty_hub_has_zero_kpis_and_no_quantiles() -> None:
    k = compute_kpis(MemoryStore(), NOW)
    assert (k.unposted_charges, k.remitted_claims, k.denial_rate) == (0, 0, 0.0)
    assert k.charge_lag == Latency() and k.sla_breaches == {}
    assert [b.count for b in k.unapplied_cash] == [0, 0, 0, 0]


@pytest.mark.parametrize(
    ("days", "label"),
    [
        (0, "0-30"),
        (30.9, "0-30"),
        (31, "31-60"),
        (60, "31-60"),
        (61, "61-90"),
        (90.5, "61-90"),
        (91, "90+"),
        (400, "90+"),
        (-1, "0-30"),
    ],
)
def test_aging_bucket_edges(days: float, label: str) -> None:
    assert aging_label(days) == label


def test_nearest_rank_quantiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert quantile(values, 0.5) == 50.0
    assert quantile(values, 0.95) == 95.0
    assert quantile([7.0], 0.95) == 7.0
    assert quantile([], 0.5) is None
