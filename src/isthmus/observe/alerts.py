"""Alerts: rules over the hub's state, edge-triggered, sent to a webhook.

Rules ([alerts] thresholds), each condition with a key of its own:
- `queue_age/<queue>`: the oldest open work item of a queue is older than
  `queue_age_minutes`;
- `error_rate`: rejected messages and dead letters over the messages received in the last
  `error_window_minutes` exceed `error_rate` (and number at least `error_min_count`);
- `sla_breach/<queue>`: a queue has items past their [sla] threshold (observe/kpis.py;
  the charge-posting count from the KPIs' fact feed, refreshed at every round);
- `erp_circuit_open`: the ERP circuit breaker is open;
- `labor_budget/<department>`: the department's accrued labor cost this month has reached
  [labor] budget_alert of its [labor.budgets] budget (`flows.labor_budget.budget_usage`).

Edge-triggered, never a storm: `step` (pure) compares the conditions that hold now with
the ones that held at the last evaluation and emits one `firing` notification when a
condition starts and one `resolved` when it clears; nothing while it holds. The state
(what is firing since when, and the notifications not yet delivered) is persisted in the
store before anything is sent, so a restart neither fires again nor loses a transition;
undelivered notifications are retried with exponential backoff, in order. One evaluator
per site (a lease on the bus, as for the ERP exporter).

The webhook body is one JSON object per transition: `{"version", "id", "status", "rule",
"key", "labels", "summary", "value", "threshold", "starts_at", "ends_at"}`; `id` is
stable for a transition, so a receiver can drop a duplicate (delivery is at least once).
Labels carry queue names only: no PHI.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

import httpx

from isthmus.analytics.feed import FactFeed
from isthmus.bus.ports import Bus
from isthmus.config import AlertSettings, SlaSettings
from isthmus.flows.export import breaker_state
from isthmus.observe.kpis import compute_kpis
from isthmus.store.ports import Store

log = logging.getLogger(__name__)

STATE_TABLE = "alert-state"  # kept with the store's keyed values (mapping overrides)
STATE_CODE = "state"
_ALL = 1 << 62


@dataclass(frozen=True, slots=True)
class Condition:
    """A rule's condition that holds now."""

    rule: str
    key: str
    summary: str
    value: float
    threshold: float
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Notification:
    """One firing or resolved transition of a condition, as the webhook receives it; `id`
    is stable per transition, so a receiver can drop a duplicate."""

    id: str
    status: str  # firing | resolved
    rule: str
    key: str
    labels: Mapping[str, str]
    summary: str
    value: float
    threshold: float
    starts_at: float
    ends_at: float | None = None
    attempts: int = 0
    next_attempt: float = 0.0

    def body(self) -> dict[str, object]:
        def iso(t: float | None) -> str | None:
            return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()

        return {
            "version": "1",
            "id": self.id,
            "status": self.status,
            "rule": self.rule,
            "key": self.key,
            "labels": dict(self.labels),
            "summary": self.summary,
            "value": self.value,
            "threshold": self.threshold,
            "starts_at": iso(self.starts_at),
            "ends_at": iso(self.ends_at),
        }


@dataclass(frozen=True, slots=True)
class Active:
    """A condition that is firing: since when, and what it said when it started."""

    rule: str
    since: float
    summary: str
    value: float
    threshold: float
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlertState:
    """What the evaluator persists between rounds: the conditions firing (by key) and the
    notifications not yet delivered, in order."""

    active: Mapping[str, Active] = field(default_factory=dict)
    pending: tuple[Notification, ...] = ()


@dataclass(frozen=True, slots=True)
class Inputs:
    """What the rules read, gathered by `gather` (or built by a test)."""

    oldest_open_s: Mapping[str, float]  # queue -> age of its oldest open work item
    received: int  # messages received in the error window
    errors: int  # rejected messages and dead letters in the error window
    sla_breaches: Mapping[str, int]
    circuit_open: bool
    labor_budget: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    # department -> (share of its labor budget used, alert threshold)


# -- rules (pure) -------------------------------------------------------------------------


def evaluate(inputs: Inputs, settings: AlertSettings) -> dict[str, Condition]:
    """The conditions that hold, by key."""
    out: dict[str, Condition] = {}
    limit = settings.queue_age_minutes * 60.0
    for queue, age in sorted(inputs.oldest_open_s.items()):
        if age > limit:
            out[f"queue_age/{queue}"] = Condition(
                "queue_age",
                f"queue_age/{queue}",
                f"oldest open work item in {queue} is {age / 60:.0f} min old "
                f"(limit {settings.queue_age_minutes:g} min)",
                age,
                limit,
                {"queue": queue},
            )
    rate = inputs.errors / max(inputs.received, 1)
    if inputs.errors >= max(settings.error_min_count, 1) and rate > settings.error_rate:
        out["error_rate"] = Condition(
            "error_rate",
            "error_rate",
            f"{inputs.errors} rejected or dead-lettered of {inputs.received} messages in "
            f"{settings.error_window_minutes:g} min ({rate:.1%} > "
            f"{settings.error_rate:.1%})",
            rate,
            settings.error_rate,
        )
    if settings.sla_breach:
        for queue, n in sorted(inputs.sla_breaches.items()):
            if n > 0:
                out[f"sla_breach/{queue}"] = Condition(
                    "sla_breach",
                    f"sla_breach/{queue}",
                    f"{n} item(s) past their SLA in {queue}",
                    float(n),
                    0.0,
                    {"queue": queue},
                )
    if settings.circuit_open and inputs.circuit_open:
        out["erp_circuit_open"] = Condition(
            "erp_circuit_open",
            "erp_circuit_open",
            "the ERP circuit breaker is open: deliveries are held",
            1.0,
            0.0,
        )
    for dept, (used, limit) in sorted(inputs.labor_budget.items()):
        if used >= limit:
            out[f"labor_budget/{dept}"] = Condition(
                "labor_budget",
                f"labor_budget/{dept}",
                f"department {dept} has used {used:.1%} of its labor budget (alert at {limit:.0%})",
                used,
                limit,
                {"department": dept},
            )
    return out


def _id(key: str, status: str, since: float) -> str:
    return hashlib.sha256(f"{key}|{status}|{since!r}".encode()).hexdigest()[:24]


def step(
    state: AlertState, holding: Mapping[str, Condition], now: float
) -> tuple[AlertState, list[Notification]]:
    """Compare what holds now with what was firing: one notification per start and per
    clear, none while a condition holds. The new notifications are queued in the state."""
    active = dict(state.active)
    new: list[Notification] = []
    for key, c in holding.items():
        if key not in active:
            active[key] = Active(c.rule, now, c.summary, c.value, c.threshold, c.labels)
            new.append(
                Notification(
                    _id(key, "firing", now),
                    "firing",
                    c.rule,
                    key,
                    c.labels,
                    c.summary,
                    c.value,
                    c.threshold,
                    now,
                )
            )
    for key in sorted(set(active) - set(holding)):
        a = active.pop(key)
        new.append(
            Notification(
                _id(key, "resolved", a.since),
                "resolved",
                a.rule,
                key,
                a.labels,
                f"cleared: {a.summary}",
                a.value,
                a.threshold,
                a.since,
                now,
            )
        )
    return AlertState(active, (*state.pending, *new)), new


def backoff(attempts: int, cap_s: float) -> float:
    """Seconds to wait before the next delivery attempt: 1, 2, 4, ... doubling per attempt,
    at most `cap_s`."""
    return float(min(cap_s, 2.0 ** max(attempts - 1, 0)))


# -- persistence --------------------------------------------------------------------------


def encode_state(state: AlertState) -> str:
    """The alert state as JSON text, for the store."""
    return json.dumps(
        {
            "active": {k: asdict(a) for k, a in state.active.items()},
            "pending": [asdict(n) for n in state.pending],
        },
        sort_keys=True,
    )


def decode_state(text: str | None) -> AlertState:
    """The alert state from `encode_state`'s text; empty when nothing was stored yet."""
    if not text:
        return AlertState()
    raw = json.loads(text)
    return AlertState(
        {k: Active(**a) for k, a in raw.get("active", {}).items()},
        tuple(Notification(**n) for n in raw.get("pending", [])),
    )


def load_state(store: Store) -> AlertState:
    """The persisted alert state (kept with the store's keyed values)."""
    with store.transaction() as tx:
        return decode_state(tx.mapping_override(STATE_TABLE, STATE_CODE))


def save_state(store: Store, state: AlertState) -> None:
    """Persist the alert state, before any notification of it is sent."""
    store.set_mapping_override(STATE_TABLE, STATE_CODE, encode_state(state))


# -- I/O: gathering and delivery ------------------------------------------------------------

LaborUsage = Callable[[float], Mapping[str, tuple[float, float]]]


def gather(
    store: Store,
    bus: Bus,
    settings: AlertSettings,
    sla: SlaSettings,
    now: float,
    breaker: str | None = None,
    labor: LaborUsage | None = None,
    feed: FactFeed | None = None,
) -> Inputs:
    """Read the rule inputs; `breaker` is this process's breaker state when it exports.
    `feed` keeps the KPIs' facts between rounds (the Alerter's refreshes every round)."""
    oldest: dict[str, float] = {}
    for w in store.work_items("open", limit=_ALL):
        oldest[w.queue] = max(oldest.get(w.queue, 0.0), now - w.created_at)
    since = now - settings.error_window_minutes * 60.0
    counts = store.message_counts(since=since)
    received = sum(counts.values())
    rejected = sum(n for (_ch, status, _ack), n in counts.items() if status == "rejected")
    dead = sum(1 for d in bus.dead_letters(limit=1_000_000) if d.failed_at >= since)
    kpis = (
        compute_kpis(store, datetime.fromtimestamp(now, UTC), sla=sla, feed=feed)
        if settings.sla_breach
        else None
    )
    state = breaker if breaker is not None else breaker_state(store.outbox_items("pending"))
    return Inputs(
        oldest,
        received,
        rejected + dead,
        dict(kpis.sla_breaches) if kpis else {},
        state == "open",
        dict(labor(now)) if labor is not None else {},
    )


Post = Callable[[str, dict[str, object]], None]


def http_post(timeout_s: float) -> Post:
    """POST JSON; any transport error or non-2xx answer raises (the caller retries)."""

    def post(url: str, body: dict[str, object]) -> None:
        r = httpx.post(url, json=body, timeout=timeout_s)
        r.raise_for_status()

    return post


class Alerter:
    """Evaluate the rules, persist the transitions, deliver them; one round per call."""

    def __init__(
        self,
        store: Store,
        bus: Bus,
        settings: AlertSettings,
        sla: SlaSettings,
        post: Post | None = None,
        labor: LaborUsage | None = None,
    ) -> None:
        self._store, self._bus, self._settings, self._sla = store, bus, settings, sla
        self._labor = labor
        self._feed = FactFeed(store, max_age_s=0.0)  # current as of each round
        self._post = post or http_post(settings.timeout_s)

    def run_once(
        self, now: float, *, breaker: str | None = None, inputs: Inputs | None = None
    ) -> list[Notification]:
        """One evaluation; returns the notifications delivered in this round."""
        found = inputs or gather(
            self._store, self._bus, self._settings, self._sla, now, breaker, self._labor, self._feed
        )
        state, new = step(load_state(self._store), evaluate(found, self._settings), now)
        if new:
            save_state(self._store, state)  # before sending: a crash loses nothing
            for n in new:
                log.warning("alert %s %s: %s", n.status, n.key, n.summary)
        return self.deliver(state, now)

    def deliver(self, state: AlertState, now: float) -> list[Notification]:
        sent: list[Notification] = []
        pending = list(state.pending)
        while pending and pending[0].next_attempt <= now:
            head = pending[0]
            try:
                self._post(self._settings.webhook_url, head.body())
            except (httpx.HTTPError, OSError) as exc:
                attempts = head.attempts + 1
                pending[0] = replace(
                    head,
                    attempts=attempts,
                    next_attempt=now + backoff(attempts, self._settings.retry_max_s),
                )
                log.warning(
                    "alert webhook failed (attempt %d, %s %s): %s",
                    attempts,
                    head.status,
                    head.key,
                    exc,
                )
                break
            sent.append(pending.pop(0))
        if tuple(pending) != state.pending:
            save_state(self._store, AlertState(state.active, tuple(pending)))
        return sent


def pending_notifications(store: Store) -> Sequence[Notification]:
    """The notifications not yet delivered to the webhook, oldest first."""
    return load_state(store).pending
