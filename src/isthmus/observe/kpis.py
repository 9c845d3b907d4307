"""Finance KPIs of the hub (issue 7): what a revenue-cycle lead asks before the numbers.

Computed, never stored: every figure is derived on demand from what the store already
keeps (inbox messages and their events, journal entries sealed into ERP batches, outbox
delivery times, work items), read through the store port only. "Posted" means delivered
to the ERP: every outbox row of the batch that carries the journal entry is `sent` (for a
sent row the adapters keep the delivery time in `visible_at`).

- unposted charges: charge events (HL7 DFT FT1, FHIR ChargeItem) whose entry has not
  reached the ERP yet, held in a work item or waiting for export; count and amount per
  currency.
- charge lag: service date (FT1-4, midnight UTC) -> posted, p50/p95 in seconds.
- payment visibility latency: 835 received by the hub -> its claim payments posted.
- denial rate by CARC: denied claims (CLP02 = 4, or nothing paid with a denial CARC, as
  in `flows.remittance.is_denial`) citing a CARC (X12 code list 139), over remitted claims.
- unapplied cash aging: open `unapplied_cash` work items in 0-30/31-60/61-90/90+ day
  buckets of their age in the hub, count and amount per currency.
- SLA breaches per queue: open work items older than `workitem_age_hours` (per queue
  overrides in `queue_age_hours`), and under `charge-posting` the charges not posted
  within `charge_post_minutes` of their receipt.

No PHI: the result holds counts, amounts, currencies, CARCs and queue names only.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal

import msgspec

from isthmus.config import SlaSettings
from isthmus.flows.remittance import is_denial
from isthmus.model.envelope import decode_envelope
from isthmus.model.events import Charge, ClaimRemitted
from isthmus.store.ports import Store, WorkItem

CHARGE_POSTING = "charge-posting"
AGING_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-30", 0, 30), ("31-60", 31, 60), ("61-90", 61, 90), ("90+", 91, None))
_ALL = 1 << 62  # "no limit" for the store's list reads
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
    label: str  # "0-30", "31-60", "61-90", "90+" (days)
    count: int
    amount: Mapping[str, Decimal]  # per currency


@dataclass(frozen=True, slots=True)
class Kpis:
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


def quantile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank quantile (q in [0, 1]); None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def latency(values: list[float]) -> Latency:
    return Latency(len(values), quantile(values, 0.50), quantile(values, 0.95),
                   sum(values))


def aging_label(age_days: float) -> str:
    days = max(0, math.floor(age_days))
    for label, _low, high in AGING_BUCKETS:
        if high is None or days <= high:
            return label
    return AGING_BUCKETS[-1][0]  # pragma: no cover - the last bucket is open-ended


def _midnight(d: date) -> float:
    return datetime.combine(d, time(0), tzinfo=UTC).timestamp()


def delivered_at(store: Store, entry_keys: list[str]) -> dict[str, float]:
    """Entry key -> when the ERP got it: every outbox row of its batch sent (the latest
    send time). Entries not sealed yet, or whose batch is still pending, are absent."""
    batch_of = store.entry_batches(entry_keys)
    rows: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for item in store.outbox_items():
        rows[item.batch_id].append((item.status, item.visible_at))
    done = {bid: max(t for _s, t in r) for bid, r in rows.items()
            if r and all(s == "sent" for s, _t in r)}
    return {k: done[b] for k, b in batch_of.items() if b in done}


@dataclass(slots=True)
class _Inputs:
    charges: list[tuple[str, Charge, float]] = field(default_factory=list)
    remits: list[tuple[str, ClaimRemitted, float]] = field(default_factory=list)


class _Head(msgspec.Struct):
    """An envelope with its payload left undecoded: most events are neither kind read."""

    event_id: str
    type: str
    payload: msgspec.Raw


_heads = msgspec.json.Decoder(list[_Head])
_charge = msgspec.json.Decoder(Charge)
_remit = msgspec.json.Decoder(ClaimRemitted)


def _events(store: Store) -> _Inputs:
    found = _Inputs()
    for received, events in store.accepted_events():
        if not events:
            continue
        for head in _heads.decode(events):
            if head.type == "Charge":
                found.charges.append((head.event_id, _charge.decode(head.payload), received))
            elif head.type == "ClaimRemitted":
                ev = _remit.decode(head.payload)
                if not ev.reversal:
                    found.remits.append((head.event_id, ev, received))
    return found


def _denials(remits: list[tuple[str, ClaimRemitted, float]]
             ) -> tuple[int, tuple[CarcDenials, ...]]:
    by_carc: Counter[str] = Counter()
    denied = 0
    for _env, ev, _t in remits:
        if not is_denial(ev):
            continue
        denied += 1
        carcs = {a.reason for a in ev.adjustments if a.amount > 0} or {"none"}
        by_carc.update(carcs)
    total = len(remits)
    rows = tuple(CarcDenials(c, n, n / total) for c, n in
                 sorted(by_carc.items(), key=lambda kv: (-kv[1], kv[0])))
    return denied, rows


def _unapplied(items: list[WorkItem], now: float) -> tuple[AgingBucket, ...]:
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
    return tuple(AgingBucket(label, count[label], amount[label]) for label, _l, _h in
                 AGING_BUCKETS)


def _queue_breaches(items: list[WorkItem], sla: SlaSettings, now: float) -> Counter[str]:
    out: Counter[str] = Counter()
    for w in items:
        if w.status != "open":
            continue
        limit_h = sla.queue_age_hours.get(w.queue, sla.workitem_age_hours)
        if now - w.created_at > limit_h * 3600.0:
            out[w.queue] += 1
    return out


def compute_kpis(store: Store, now: datetime, *, sla: SlaSettings | None = None) -> Kpis:
    """Every KPI as of `now` (timezone-aware), from the store's current state."""
    sla = sla or SlaSettings()
    t_now = now.timestamp()
    found = _events(store)
    keys = [eid for eid, _c, _t in found.charges] + [eid for eid, _r, _t in found.remits]
    posted = delivered_at(store, keys)

    unposted = 0
    unposted_amount: dict[str, Decimal] = {}
    lags: list[float] = []
    posted_amount: dict[str, Decimal] = {}
    late = 0
    for eid, ch, received in found.charges:
        at = posted.get(eid)
        if at is None:
            unposted += 1
            cur = ch.amount.currency
            unposted_amount[cur] = unposted_amount.get(cur, Decimal(0)) + ch.amount.amount
            if t_now - received > sla.charge_post_minutes * 60.0:
                late += 1
            continue
        lags.append(max(0.0, at - _midnight(ch.service_date)))
        cur = ch.amount.currency
        posted_amount[cur] = posted_amount.get(cur, Decimal(0)) + ch.amount.amount
        if at - received > sla.charge_post_minutes * 60.0:
            late += 1

    visibility = [max(0.0, posted[eid] - received)
                  for eid, _r, received in found.remits if eid in posted]
    denied, by_carc = _denials(found.remits)
    items = store.work_items(limit=_ALL)
    breaches = _queue_breaches(items, sla, t_now)
    if late:
        breaches[CHARGE_POSTING] += late
    return Kpis(
        as_of=now, unposted_charges=unposted, unposted_amount=unposted_amount,
        posted_charges=len(found.charges) - unposted, posted_amount=posted_amount,
        charge_lag=latency(lags),
        payment_visibility=latency(visibility), remitted_claims=len(found.remits),
        denied_claims=denied,
        denial_rate=denied / len(found.remits) if found.remits else 0.0,
        denials_by_carc=by_carc, unapplied_cash=_unapplied(items, t_now),
        sla_breaches=dict(sorted(breaches.items())))
