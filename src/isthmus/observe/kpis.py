"""Finance KPIs of the hub (issue 7): what a revenue-cycle lead asks before the numbers.

Computed, never stored. Where each figure comes from (issue 21 item 4):

- the figures about posted or received business (unposted charges, charge lag, payment
  visibility latency, denial rate by CARC, and the charge-posting SLA) count the analytics
  facts `fact_charge`, `fact_remit` and `fact_adjustment`, as `analytics/facts.py` defines
  them for the warehouse too, kept by an `analytics.feed.FactFeed`: read from the warehouse
  up to its inbox watermark when there is one, then advanced incrementally from the store
  (`Store.inbox_after`). No request decodes the whole inbox; the result says which inbox id
  the facts reach (`facts_mark`, `facts_warehouse_mark`) and when they were refreshed.
- the work-item figures (unapplied cash aging, SLA breaches per queue) read the live work
  items (`Store.work_items`) on each call: they are operational state, not inbox scans.

"Posted" means delivered to the ERP: every outbox row of the batch that carries the journal
entry is `sent` (for a sent row the adapters keep the delivery time in `visible_at`).

- unposted charges: charge events (HL7 DFT FT1, FHIR ChargeItem) whose entry has not
  reached the ERP yet, held in a work item or waiting for export; count and amount per
  currency.
- charge lag: service date (FT1-4, midnight UTC) -> posted, p50/p95 in seconds.
- payment visibility latency: 835 received by the hub -> its claim payments posted.
- denial rate by CARC: denied claims (CLP02 = 4, or nothing paid with a denial CARC, as
  in `flows.denial_codes.is_denial`) citing a CARC (X12 code list 139), over remitted claims.
- unapplied cash aging: open `unapplied_cash` work items in 0-30/31-60/61-90/90+ day
  buckets of their age in the hub, count and amount per currency.
- SLA breaches per queue: open work items older than `workitem_age_hours` (per queue
  overrides in `queue_age_hours`), and under `charge-posting` the charges not posted
  within `charge_post_minutes` of their receipt.

Freshness: a feed refreshes when its last refresh is `max_age_s` old (analytics.feed,
10 s by default); /metrics adds its cache's 10 s (observe/metrics.KpiCache, whose feed
refreshes on every recompute), so a charge or a posting shows within about 10 s plus the
store's commit lag, and the alert loop's feed refreshes on every round (max_age_s 0). A
one-shot call (no `feed`) builds a feed and reads the store's facts from the start.

No PHI: the result holds counts, amounts, currencies, CARCs and queue names only.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import msgspec

from isthmus.analytics.feed import FactFeed
from isthmus.config import SlaSettings
from isthmus.model.envelope import decode_envelope
from isthmus.model.events import ClaimRemitted
from isthmus.store.ports import Store, WorkItem

CHARGE_POSTING = "charge-posting"
AGING_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-30", 0, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("90+", 91, None),
)
ALL = 1 << 62  # "no limit" for the store's list reads
_DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class Latency:
    """A latency distribution in seconds; p50/p95 are None when nothing was measured."""

    count: int = 0
    p50_s: float | None = None
    p95_s: float | None = None
    sum_s: float = 0.0


@dataclass(frozen=True, slots=True)
class CarcDenials:
    """Denied claims citing one CARC, and their share of all remitted claims."""

    carc: str
    denials: int
    rate: float


@dataclass(frozen=True, slots=True)
class AgingBucket:
    """One aging bucket of unapplied cash: how many items, and their amount per currency."""

    label: str  # "0-30", "31-60", "61-90", "90+" (days)
    count: int
    amount: Mapping[str, Decimal]  # per currency


@dataclass(frozen=True, slots=True)
class Kpis:
    """The finance KPIs at `as_of`, and how far the analytics facts behind them reach (the
    module docstring says where each figure comes from)."""

    as_of: datetime
    unposted_charges: int = 0
    unposted_amount: Mapping[str, Decimal] = field(default_factory=dict)  # per currency
    posted_charges: int = 0
    posted_amount: Mapping[str, Decimal] = field(default_factory=dict)  # per currency
    charge_lag: Latency = Latency()
    payment_visibility: Latency = Latency()
    remitted_claims: int = 0
    denied_claims: int = 0
    denial_rate: float = 0.0
    denials_by_carc: tuple[CarcDenials, ...] = ()  # most frequent first
    unapplied_cash: tuple[AgingBucket, ...] = ()  # in AGING_BUCKETS order
    sla_breaches: Mapping[str, int] = field(default_factory=dict)  # queue -> count
    # what the fact-fed figures cover: the inbox id the facts reach, the warehouse's part
    # of it (0: none), when they were refreshed, "store" or "warehouse+store"
    facts_mark: int = 0
    facts_warehouse_mark: int = 0
    facts_refreshed: datetime | None = None
    facts_source: str = ""


def quantile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank quantile (q in [0, 1]); None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def latency(values: list[float]) -> Latency:
    """Count, median, 95th percentile (nearest rank) and sum of latencies in seconds."""
    return Latency(len(values), quantile(values, 0.50), quantile(values, 0.95), sum(values))


def ascending_latency(values: Sequence[float], total: float) -> Latency:
    """`latency` of values already in ascending order, their sum given: no sort."""
    n = len(values)
    if not n:
        return Latency()
    return Latency(
        n, values[max(1, math.ceil(0.50 * n)) - 1], values[max(1, math.ceil(0.95 * n)) - 1], total
    )


def aging_label(age_days: float) -> str:
    """The aging bucket (0-30, 31-60, 61-90, 90+) of an age in days, counted in whole days."""
    days = max(0, math.floor(age_days))
    for label, _low, high in AGING_BUCKETS:
        if high is None or days <= high:
            return label
    return AGING_BUCKETS[-1][0]  # pragma: no cover - the last bucket is open-ended


def unapplied_aging(items: list[WorkItem], now: float) -> tuple[AgingBucket, ...]:
    """Open unapplied-cash work items aged from their creation, per bucket: count and the
    paid amount per currency."""
    count: Counter[str] = Counter()
    amount: dict[str, dict[str, Decimal]] = {b[0]: {} for b in AGING_BUCKETS}
    for w in items:
        if w.kind != "unapplied_cash" or w.status != "open":
            continue
        label = aging_label((now - w.created_at) / _DAY_S)
        count[label] += 1
        try:
            ev = decode_envelope(w.envelope).payload
        except msgspec.DecodeError:
            continue
        if isinstance(ev, ClaimRemitted):
            per = amount[label]
            per[ev.currency] = per.get(ev.currency, Decimal(0)) + ev.paid
    return tuple(AgingBucket(label, count[label], amount[label]) for label, _l, _h in AGING_BUCKETS)


def queue_breaches(items: list[WorkItem], sla: SlaSettings, now: float) -> Counter[str]:
    """Per queue, the open work items older than the queue's [sla] limit (or the default
    work-item limit)."""
    out: Counter[str] = Counter()
    for w in items:
        if w.status != "open":
            continue
        limit_h = sla.queue_age_hours.get(w.queue, sla.workitem_age_hours)
        if now - w.created_at > limit_h * 3600.0:
            out[w.queue] += 1
    return out


def compute_kpis(
    store: Store, now: datetime, *, sla: SlaSettings | None = None, feed: FactFeed | None = None
) -> Kpis:
    """Every KPI as of `now` (timezone-aware): the business figures from `feed`'s facts
    (a new feed when None: the one-shot case), the work-item figures from the store."""
    sla = sla or SlaSettings()
    t_now = now.timestamp()
    snap = (feed or FactFeed(store)).snapshot(t_now)
    limit_s = sla.charge_post_minutes * 60.0
    unposted_amount: dict[str, Decimal] = {}
    late = 0
    for ch in snap.unposted:
        unposted_amount[ch.currency] = unposted_amount.get(ch.currency, Decimal(0)) + ch.amount
        if t_now - ch.received > limit_s:
            late += 1
    # posted later than the SLA: the delays are ascending, those above the limit at the end
    late += len(snap.post_delays) - bisect.bisect_right(snap.post_delays, limit_s)
    items = store.work_items(status="open", limit=ALL)  # the figures count open ones only
    breaches = queue_breaches(items, sla, t_now)
    if late:
        breaches[CHARGE_POSTING] += late
    total = snap.remitted
    by_carc = tuple(
        CarcDenials(c, n, n / total)
        for c, n in sorted(snap.denials_by_carc.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    return Kpis(
        as_of=now,
        unposted_charges=len(snap.unposted),
        unposted_amount=unposted_amount,
        posted_charges=snap.posted_charges,
        posted_amount=dict(snap.posted_amount),
        charge_lag=ascending_latency(snap.charge_lags, snap.charge_lag_sum),
        payment_visibility=ascending_latency(snap.visibility, snap.visibility_sum),
        remitted_claims=total,
        denied_claims=snap.denied,
        denial_rate=snap.denied / total if total else 0.0,
        denials_by_carc=by_carc,
        unapplied_cash=unapplied_aging(items, t_now),
        sla_breaches=dict(sorted(breaches.items())),
        facts_mark=snap.mark,
        facts_warehouse_mark=snap.warehouse_mark,
        facts_refreshed=datetime.fromtimestamp(snap.refreshed_at, UTC),
        facts_source=snap.source,
    )
