"""The KPIs as first built (issue 7): decoded from every accepted inbox message on each
call. Kept here, in the tests only, as the oracle the fact-fed `compute_kpis` must equal
(issue 21 item 4: tests/observe/test_kpi_feed.py, tests/analytics/test_kpis_from_facts.py);
src/ no longer scans the inbox for the KPIs. Copied unchanged but for the names."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal

import msgspec

from isthmus.config import SlaSettings
from isthmus.flows.denial_codes import is_denial
from isthmus.model.events import Charge, ClaimRemitted
from isthmus.observe.kpis import (
    ALL,
    CHARGE_POSTING,
    CarcDenials,
    Kpis,
    latency,
    queue_breaches,
    unapplied_aging,
)
from isthmus.store.ports import Store


def _midnight(d: date) -> float:
    return datetime.combine(d, time(0), tzinfo=UTC).timestamp()


def delivered_at(store: Store, entry_keys: list[str]) -> dict[str, float]:
    """Entry key -> when the ERP got it: every outbox row of its batch sent (the latest
    send time). Entries not sealed yet, or whose batch is still pending, are absent."""
    batch_of = store.entry_batches(entry_keys)
    rows: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for item in store.outbox_items():
        rows[item.batch_id].append((item.status, item.visible_at))
    done = {
        bid: max(t for _s, t in r)
        for bid, r in rows.items()
        if r and all(s == "sent" for s, _t in r)
    }
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


def _denials(remits: list[tuple[str, ClaimRemitted, float]]) -> tuple[int, tuple[CarcDenials, ...]]:
    by_carc: Counter[str] = Counter()
    denied = 0
    for _env, ev, _t in remits:
        if not is_denial(ev):
            continue
        denied += 1
        carcs = {a.reason for a in ev.adjustments if a.amount > 0} or {"none"}
        by_carc.update(carcs)
    total = len(remits)
    rows = tuple(
        CarcDenials(c, n, n / total)
        for c, n in sorted(by_carc.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    return denied, rows


def scan_kpis(store: Store, now: datetime, *, sla: SlaSettings | None = None) -> Kpis:
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

    visibility = [
        max(0.0, posted[eid] - received) for eid, _r, received in found.remits if eid in posted
    ]
    denied, by_carc = _denials(found.remits)
    items = store.work_items(limit=ALL)
    breaches = queue_breaches(items, sla, t_now)
    if late:
        breaches[CHARGE_POSTING] += late
    return Kpis(
        as_of=now,
        unposted_charges=unposted,
        unposted_amount=unposted_amount,
        posted_charges=len(found.charges) - unposted,
        posted_amount=posted_amount,
        charge_lag=latency(lags),
        payment_visibility=latency(visibility),
        remitted_claims=len(found.remits),
        denied_claims=denied,
        denial_rate=denied / len(found.remits) if found.remits else 0.0,
        denials_by_carc=by_carc,
        unapplied_cash=unapplied_aging(items, t_now),
        sla_breaches=dict(sorted(breaches.items())),
    )
