"""Prometheus metrics: the hub's transport and business state in the text exposition format.

Format: Prometheus text exposition format 0.0.4 (`# HELP`, `# TYPE`, one sample a line,
label values escaped for backslash, double quote and newline), served by `GET /metrics`
as `text/plain; version=0.0.4`. Counters are declared and sampled as `<name>_total`, as
prometheus_client writes them; summaries carry `quantile` samples with `_sum` and
`_count`.

Two halves: `collect` reads the store, the bus and this process's live parts (MLLP
listener, inbox ACK counters, worker, ERP breaker) into metric families; `render` turns
families into text and does no I/O. Labels are channel, status, ACK code, queue, outcome,
currency, CARC, bucket and role only: nothing that names a patient or an account.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from isthmus.analytics.feed import site_feed
from isthmus.bus.ports import Bus
from isthmus.config import SlaSettings
from isthmus.connectors.mllp import MllpStats
from isthmus.flows.export import breaker_state
from isthmus.flows.worker import WorkerStats
from isthmus.observe.kpis import Kpis, Latency, compute_kpis
from isthmus.store.ports import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "isthmus_"
_ALL = 1 << 62
_DLQ_LIMIT = 1_000_000


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample of a metric family: its name suffix, labels and value."""

    suffix: str  # "" or "_total", "_sum", "_count"
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(slots=True)
class Family:
    """A metric family (a `# HELP` and `# TYPE` block) and its samples."""

    name: str
    kind: str  # counter | gauge | summary
    help: str
    samples: list[Sample] = field(default_factory=list)

    def add(self, value: float | Decimal | int, suffix: str = "", **labels: str) -> Family:
        self.samples.append(Sample(suffix, tuple(labels.items()), float(value)))
        return self


@dataclass(frozen=True, slots=True)
class LiveParts:
    """What this process runs, read from its in-memory counters (None: not here)."""

    role: str = ""
    acks: Mapping[str, int] | None = None
    mllp: MllpStats | None = None
    worker: WorkerStats | None = None
    breaker: str | None = None  # the dispatcher's breaker state, when this process exports


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)


def render(families: Sequence[Family]) -> str:
    """The text exposition of `families`, one block per family, in the order given."""
    out: list[str] = []
    for f in families:
        name = PREFIX + f.name
        help_text = f.help.replace("\\", "\\\\").replace("\n", "\\n")
        declared = name + "_total" if f.kind == "counter" else name  # as prometheus_client
        out.append(f"# HELP {declared} {help_text}")
        out.append(f"# TYPE {declared} {f.kind}")
        for s in f.samples:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in s.labels)
            out.append(f"{name}{s.suffix}{'{' + labels + '}' if labels else ''} {_number(s.value)}")
    return "\n".join(out) + "\n"


def _summary(name: str, help_text: str, lat: Latency) -> Family:
    f = Family(name, "summary", help_text)
    for q, v in (("0.5", lat.p50_s), ("0.95", lat.p95_s)):
        f.add(math.nan if v is None else v, quantile=q)
    return f.add(lat.sum_s, "_sum").add(lat.count, "_count")


def kpi_families(k: Kpis) -> list[Family]:
    """The finance KPIs as metric families (gauges, and summaries for the latencies)."""
    unposted = Family(
        "unposted_charges",
        "gauge",
        "Charges not yet delivered to the ERP (held or waiting for export)",
    )
    unposted.add(k.unposted_charges)
    unposted_amt = Family(
        "unposted_charges_amount", "gauge", "Amount of the unposted charges, per currency"
    )
    for cur, amt in sorted(k.unposted_amount.items()):
        unposted_amt.add(amt, currency=cur)
    posted = Family(
        "charges_posted_amount", "gauge", "Amount of the charges delivered to the ERP, per currency"
    )
    for cur, amt in sorted(k.posted_amount.items()):
        posted.add(amt, currency=cur)
    remitted = Family("remitted_claims", "gauge", "Claims remitted (835 CLP, reversals out)")
    remitted.add(k.remitted_claims)
    denied = Family("denied_claims", "gauge", "Remitted claims that were denials")
    denied.add(k.denied_claims)
    rate = Family("denial_rate", "gauge", "Denied claims over remitted claims")
    rate.add(k.denial_rate)
    by_carc = Family(
        "denial_rate_by_carc",
        "gauge",
        "Denied claims citing a CARC over remitted claims (X12 code list 139)",
    )
    carc_n = Family("denials_by_carc", "gauge", "Denied claims citing a CARC")
    for row in k.denials_by_carc:
        by_carc.add(row.rate, carc=row.carc)
        carc_n.add(row.denials, carc=row.carc)
    aging = Family(
        "unapplied_cash_items", "gauge", "Open unapplied cash work items per age bucket (days)"
    )
    aging_amt = Family(
        "unapplied_cash_amount", "gauge", "Unapplied cash per age bucket (days) and currency"
    )
    for b in k.unapplied_cash:
        aging.add(b.count, bucket=b.label)
        for cur, amt in sorted(b.amount.items()):
            aging_amt.add(amt, bucket=b.label, currency=cur)
    sla = Family("sla_breaches", "gauge", "Items past their SLA, per queue")
    for queue, n in sorted(k.sla_breaches.items()):
        sla.add(n, queue=queue)
    return [
        unposted,
        unposted_amt,
        posted,
        _summary("charge_lag_seconds", "Service date to ERP delivery of a charge", k.charge_lag),
        _summary(
            "payment_visibility_seconds",
            "835 receipt to ERP delivery of its claim payments",
            k.payment_visibility,
        ),
        remitted,
        denied,
        rate,
        by_carc,
        carc_n,
        aging,
        aging_amt,
        sla,
    ]


def _live_families(live: LiveParts) -> list[Family]:
    out: list[Family] = []
    if live.role:
        out.append(
            Family("process_role", "gauge", "The role this process serves").add(1, role=live.role)
        )
    if live.acks is not None:
        acks = Family("mllp_acks", "counter", "MLLP acknowledgements by code (this process)")
        for code, n in sorted(live.acks.items()):
            acks.add(n, "_total", code=code)
        out.append(acks)
    if live.mllp is not None:
        m = live.mllp
        out += [
            Family("mllp_connections", "gauge", "Open MLLP connections").add(m.connections),
            Family("mllp_connections_accepted", "counter", "MLLP connections accepted").add(
                m.connections_total, "_total"
            ),
            Family("mllp_connections_refused", "counter", "MLLP connections refused").add(
                m.connections_refused, "_total"
            ),
            Family("mllp_frames", "counter", "Well-framed MLLP blocks received").add(
                m.messages, "_total"
            ),
            Family("mllp_framing_errors", "counter", "MLLP framing problems").add(
                m.errors, "_total"
            ),
            Family("mllp_received_bytes", "counter", "Bytes read from MLLP peers").add(
                m.bytes_received, "_total"
            ),
            Family("mllp_sent_bytes", "counter", "Bytes of answers written to MLLP peers").add(
                m.bytes_sent, "_total"
            ),
            Family("mllp_idle_closes", "counter", "MLLP connections closed when idle").add(
                m.idle_closes, "_total"
            ),
        ]
    if live.worker is not None:
        w = Family("worker_events", "counter", "Bus events by worker outcome (this process)")
        for outcome, n in (
            ("applied", live.worker.applied),
            ("retried", live.worker.retried),
            ("dead", live.worker.dead),
        ):
            w.add(n, "_total", outcome=outcome)
        out.append(w)
        # what the flows made of the applied events: posted, duplicate (a business fact
        # already kept from another envelope), conflict (same key, other content), held ...
        f = Family("worker_outcomes", "counter", "Applied events by flow outcome (this process)")
        for outcome, n in sorted(live.worker.outcomes.items()):
            f.add(n, "_total", outcome=outcome)
        out.append(f)
    return out


def collect(
    store: Store, bus: Bus, *, now: float, live: LiveParts | None = None, kpis: Kpis | None = None
) -> list[Family]:
    """Every metric family, read now. `kpis` is computed when not given."""
    counts = store.counts()
    received = Family(
        "messages_received", "counter", "Inbound messages stored, per channel, status and ACK code"
    )
    for (channel, status, ack), n in sorted(store.message_counts().items()):
        received.add(n, "_total", channel=channel, status=status, ack_code=ack)
    pending = store.outbox_items("pending")
    outbox = Family("outbox_items", "gauge", "ERP outbox rows per status")
    outbox.add(len(pending), status="pending")
    outbox.add(len(store.outbox_items("dead")), status="dead")
    failing = Family("outbox_failing", "gauge", "Pending outbox rows whose last try failed")
    failing.add(sum(1 for o in pending if o.last_error))
    state = (
        live.breaker if live is not None and live.breaker is not None else breaker_state(pending)
    )
    breaker = Family("erp_circuit_open", "gauge", "1 when the ERP circuit breaker is open")
    breaker.add(1 if state == "open" else 0)
    wi = Family("work_items_open", "gauge", "Open exception work items per queue")
    oldest = Family(
        "work_item_oldest_age_seconds", "gauge", "Age of the oldest open work item per queue"
    )
    first: dict[str, float] = {}
    per_queue: dict[str, int] = {}
    for w in store.work_items("open", limit=_ALL):
        per_queue[w.queue] = per_queue.get(w.queue, 0) + 1
        first[w.queue] = min(first.get(w.queue, w.created_at), w.created_at)
    for queue in sorted(per_queue):
        wi.add(per_queue[queue], queue=queue)
        oldest.add(max(0.0, now - first[queue]), queue=queue)
    k = kpis or compute_kpis(store, datetime.fromtimestamp(now, UTC))
    posted_n = Family("charges_posted", "gauge", "Charges delivered to the ERP")
    posted_n.add(k.posted_charges)
    families = [
        received,
        Family("inbox_unpublished", "gauge", "Stored messages not yet relayed to the bus").add(
            counts.get("unpublished", 0)
        ),
        Family("bus_pending", "gauge", "Events on the bus not yet applied").add(bus.pending()),
        Family("bus_dead_letters", "gauge", "Events in the dead-letter queue").add(
            len(bus.dead_letters(limit=_DLQ_LIMIT))
        ),
        outbox,
        failing,
        breaker,
        Family("journal_entries", "gauge", "Journal entries in the hub ledger").add(
            counts.get("journal_entries", 0)
        ),
        Family("journal_batches", "gauge", "ERP journal batches sealed").add(
            counts.get("batches", 0)
        ),
        posted_n,
        wi,
        oldest,
        *kpi_families(k),
    ]
    if live is not None:
        families += _live_families(live)
    return families


class KpiCache:
    """KPIs read at most every `ttl_s` seconds: a scraper or the alert loop may ask often.
    Its fact feed (analytics/feed.py: the site's warehouse when `data_dir` has one, then
    the store from its watermark)
    refreshes on each recompute, so /metrics lags the store by at most `ttl_s` (plus the
    store's commit lag). One per process, owned by whoever serves (no module global)."""

    def __init__(
        self,
        store: Store,
        sla: SlaSettings,
        ttl_s: float = 10.0,
        *,
        data_dir: Path | str | None = None,
    ) -> None:
        self._store, self._sla, self._ttl = store, sla, ttl_s
        self._feed = site_feed(store, data_dir, max_age_s=0.0)
        self._lock = threading.Lock()
        self._at = -math.inf
        self._value: Kpis | None = None

    def get(self, now: float | None = None) -> Kpis:
        now = time.time() if now is None else now
        with self._lock:
            if self._value is None or now - self._at >= self._ttl:
                self._value = compute_kpis(
                    self._store, datetime.fromtimestamp(now, UTC), sla=self._sla, feed=self._feed
                )
                self._at = now
            return self._value
