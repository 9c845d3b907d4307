"""The KPIs' fact feed (issue 21 item 4): the facts the KPIs count, kept in process.

The KPIs (observe/kpis.py) count charges, remitted claims and their CARCs. Those are the
warehouse's `fact_charge`, `fact_remit` and `fact_adjustment` rows, and they come from one
definition, `facts.inbox_rows`, for both readers: the export writes them to DuckDB and
Parquet, and this feed keeps the few columns the KPIs read (`kpi_facts`). A feed never
decodes the whole inbox on a request:

- it starts from the warehouse when there is one (`warehouse` given, the `analytics` extra
  installed, the file exported): the rows up to its `inbox` watermark, read once. Without
  the extra, without an export, or while an export holds the file, it starts from message 0
  (once per process);
- then it advances from its own watermark with `Store.inbox_after` (the export's read: only
  committed messages, in id order) through `facts.inbox_rows`, so a message between the
  export's watermark and now is counted the same way as the warehouse counts it. A message
  still "held" (a paused channel) when the feed passes it is looked up again by id at each
  refresh and counted once released (the export's known limit, docs/analytics.md, does not
  apply to the tail the feed read itself);
- a refresh happens at most every `max_age_s` seconds (`snapshot`): the result states the
  inbox id the facts reach (`mark`), the warehouse's part of it and when it was refreshed.
  On PostgreSQL `inbox_after` may wait up to 2 s for a writer in flight (never reading
  past one): a refresh can take that long, and the facts then stop below that writer.

"Posted" is the ERP's state, not a fact of the inbox: for each charge or remit not posted
yet, `Store.entry_batches` finds its batch and the outbox says whether every row of the
batch is `sent` (the latest send time is the posting time, final once found). Only the
pending keys are asked about; the pending and dead outbox rows are read at each refresh,
and the whole outbox (one read, as the KPIs always did) only when a pending key's batch
may be done. (A port read of the delivery time of given batches would replace that read:
the lead's call, store/ports.py.)

What a feed keeps: the charges not posted yet one by one, the remits not posted yet as
their receipt time, and for what is posted only the figures it ends in (counts, amounts
per currency, CARC counts, and three arrays of doubles, ascending when read: charge lag,
charge posting delay, payment visibility). A posting is final, so its share is too: a
snapshot costs the unposted charges plus copying those arrays (8 bytes a posted charge),
never a pass over the history (timings: docs/benchmarks.md, "Analytics export (issue 21)").

No PHI: event ids, times, amounts, currencies and CARCs only (claim keys and account tokens
are not even computed: the KPIs do not need them).
"""

from __future__ import annotations

import threading
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from isthmus.analytics import facts
from isthmus.analytics.kpi_facts import ChargeFact, kpi_facts
from isthmus.analytics.schema import TABLES
from isthmus.analytics.warehouse import WAREHOUSE, Missing, modules
from isthmus.store.ports import HELD, Store

MAX_AGE_S = 10.0  # a snapshot's facts are at most this old (plus the store's commit lag)
PAGE = 20_000  # inbox messages read a page, as the export
_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The facts as of `mark` (an inbox message id), with the postings known at
    `refreshed_at`. A posted fact is folded into the figures it ends in (a posting is final,
    and so is its share): only the charges not posted yet are kept one by one."""

    unposted: Sequence[ChargeFact] = ()  # in inbox order
    posted_charges: int = 0
    posted_amount: Mapping[str, Decimal] = field(default_factory=dict)  # per currency
    charge_lags: Sequence[float] = ()  # posted - service date's midnight, ascending
    charge_lag_sum: float = 0.0
    post_delays: Sequence[float] = ()  # posted - received, ascending (the posting SLA)
    remitted: int = 0  # remitted claims (reversals left out)
    denied: int = 0
    denials_by_carc: Mapping[str, int] = field(default_factory=dict)  # "none": no CARC
    visibility: Sequence[float] = ()  # remit posted - 835 received, ascending
    visibility_sum: float = 0.0
    mark: int = 0
    warehouse_mark: int = 0  # the part of `mark` read from the warehouse (0: none)
    refreshed_at: float = 0.0
    source: str = "store"  # "store" | "warehouse+store"


class _Sorted:
    """Floats appended in any order, read ascending: sorted when read (Timsort on a sorted
    run plus a short tail is one merge), an array of doubles, not a list of objects."""

    def __init__(self) -> None:
        self.values = array("d")
        self.sum = 0.0
        self._sorted = True

    def add(self, v: float) -> None:
        if self.values and v < self.values[-1]:
            self._sorted = False
        self.values.append(v)
        self.sum += v

    def ascending(self) -> array[float]:
        if not self._sorted:
            self.values = array("d", sorted(self.values))
            self._sorted = True
        return array("d", self.values)  # a copy: the caller reads outside the lock


def _no_claims(_number: str) -> tuple[str, str]:
    return "", ""  # the KPIs read no claim key nor account token


def _cents(v: Any) -> Decimal:
    """DECIMAL(20,4) back at the scale the events carry (cents) when nothing is lost."""
    d = Decimal(v)
    q = d.quantize(_CENT)
    return q if q == d else d


def from_warehouse(path: Path) -> tuple[facts.Rows, int] | None:
    """The KPIs' fact rows of the warehouse and its inbox watermark; None when there is no
    warehouse to read (no export yet, no `analytics` extra, another schema version, or an
    export holding the file): the feed then starts from the store."""
    if not path.is_file():
        return None
    try:
        duckdb, _pa = modules()  # the optional `analytics` extra
    except Missing:
        return None
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:  # an export holds it: the store tail will do this time
        return None
    try:
        marks = dict(con.execute("SELECT source, position FROM watermark").fetchall())
        mark = int(marks.get("inbox", 0))
        rows = facts.Rows()
        rows.tables["fact_charge"] = [
            tuple(r)
            for r in con.execute(
                f"SELECT {', '.join(TABLES['fact_charge'].names)} FROM fact_charge "
                f"ORDER BY inbox_id, event_id"
            ).fetchall()
        ]
        rows.tables["fact_remit"] = [
            tuple(r)
            for r in con.execute(
                f"SELECT {', '.join(TABLES['fact_remit'].names)} FROM fact_remit "
                f"ORDER BY inbox_id, event_id"
            ).fetchall()
        ]
        rows.tables["fact_adjustment"] = [
            tuple(r)
            for r in con.execute(
                f"SELECT {', '.join(TABLES['fact_adjustment'].names)} FROM fact_adjustment "
                f"WHERE amount > 0"
            ).fetchall()
        ]
    except duckdb.Error:  # another schema (VersionMismatch's case) or a broken file
        return None
    finally:
        con.close()
    for name in ("fact_charge", "fact_remit", "fact_adjustment"):
        cols = TABLES[name].names
        money = [i for i, c in enumerate(cols) if TABLES[name].columns[i][1].startswith("DECIMAL")]
        rows.tables[name] = [
            tuple(_cents(v) if i in money else v for i, v in enumerate(r))
            for r in rows.tables[name]
        ]
    return rows, mark


@dataclass(slots=True)
class _State:
    unposted: dict[str, ChargeFact] = field(default_factory=dict)  # inbox order
    unposted_remits: dict[str, float] = field(default_factory=dict)  # event id -> received
    posted_charges: int = 0
    posted_amount: dict[str, Decimal] = field(default_factory=dict)
    lags: _Sorted = field(default_factory=_Sorted)
    delays: _Sorted = field(default_factory=_Sorted)
    visibility: _Sorted = field(default_factory=_Sorted)
    remitted: int = 0
    denied: int = 0
    by_carc: Counter[str] = field(default_factory=Counter)
    held: dict[int, None] = field(default_factory=dict)  # held message ids passed
    mark: int = 0
    warehouse_mark: int = 0
    started: bool = False
    refreshed_at: float = float("-inf")


class FactFeed:
    """One per reader that asks often (the metrics cache, the alert loop, the console), for
    the life of the process; thread-safe. See the module docstring."""

    def __init__(
        self,
        store: Store,
        *,
        warehouse: Path | None = None,
        max_age_s: float = MAX_AGE_S,
        page: int = PAGE,
    ) -> None:
        self._store, self._warehouse = store, warehouse
        self._max_age, self._page = max_age_s, page
        self._lock = threading.Lock()
        self._s = _State()

    def snapshot(self, now: float) -> Snapshot:
        """The facts, refreshed first when the last refresh is `max_age_s` or more before
        `now` (or in its future: a clock set back)."""
        with self._lock:
            s = self._s
            if not (0 <= now - s.refreshed_at < self._max_age):
                self._refresh(now)
            return Snapshot(
                tuple(s.unposted.values()),
                s.posted_charges,
                dict(s.posted_amount),
                s.lags.ascending(),
                s.lags.sum,
                s.delays.ascending(),
                s.remitted,
                s.denied,
                dict(s.by_carc),
                s.visibility.ascending(),
                s.visibility.sum,
                s.mark,
                s.warehouse_mark,
                s.refreshed_at,
                "warehouse+store" if s.warehouse_mark else "store",
            )

    def _refresh(self, now: float) -> None:
        s = self._s
        if not s.started:
            s.started = True
            seeded = from_warehouse(self._warehouse) if self._warehouse else None
            if seeded is not None:
                rows, s.mark = seeded
                s.warehouse_mark = s.mark
                self._add(rows)
        self._released()
        while True:
            page = self._store.inbox_after(s.mark, self._page)
            for mid, status, _t, _ev in page:
                if status == HELD:
                    s.held[mid] = None
            if page:
                self._read(page)
                s.mark = page[-1][0]
            if len(page) < self._page:  # caught up (PostgreSQL: up to a writer in flight)
                break
        self._post()
        s.refreshed_at = now

    def _read(self, page: Iterable[tuple[int, str, float, bytes]]) -> None:
        rows = facts.Rows()
        facts.inbox_rows(page, _no_claims, rows)
        self._add(rows)

    def _add(self, rows: facts.Rows) -> None:
        s = self._s
        charges, remits = kpi_facts(rows)
        for c in charges:
            s.unposted[c.event_id] = c
        for r in remits:
            s.remitted += 1
            if r.denied:
                s.denied += 1
                s.by_carc.update(r.carcs or {"none"})
            s.unposted_remits[r.event_id] = r.received

    def _released(self) -> None:
        """Held messages the feed passed, counted once the channel releases them."""
        s = self._s
        for mid in list(s.held):
            m = self._store.message(mid)
            if m is None or m.status != HELD:
                del s.held[mid]
                if m is not None and m.status == "accepted":
                    self._read([(mid, m.status, m.received_at, m.events)])

    def _post(self) -> None:
        """Posting times of the keys not posted yet (see the module docstring), each
        folded into the figures once found."""
        s = self._s
        if not s.unposted and not s.unposted_remits:
            return
        batch_of = self._store.entry_batches([*s.unposted, *s.unposted_remits])
        if not batch_of:
            return
        open_ = {o.batch_id for st in ("pending", "dead") for o in self._store.outbox_items(st)}
        maybe = set(batch_of.values()) - open_
        if not maybe:
            return
        rows: dict[str, list[tuple[str, float]]] = {}
        for o in self._store.outbox_items():  # one read: every row of a batch, one state
            if o.batch_id in maybe:
                rows.setdefault(o.batch_id, []).append((o.status, o.visible_at))
        done = {
            b: max(t for _s, t in r) for b, r in rows.items() if all(st == "sent" for st, _t in r)
        }
        for key, batch in batch_of.items():
            at = done.get(batch)
            if at is None:
                continue
            charge = s.unposted.pop(key, None)
            if charge is not None:
                s.posted_charges += 1
                cur = charge.currency
                s.posted_amount[cur] = s.posted_amount.get(cur, Decimal(0)) + charge.amount
                s.lags.add(max(0.0, at - charge.service_start))
                s.delays.add(at - charge.received)
            received = s.unposted_remits.pop(key, None)
            if received is not None:
                s.visibility.add(max(0.0, at - received))


def site_feed(
    store: Store, data_dir: Path | str | None, *, max_age_s: float = MAX_AGE_S
) -> FactFeed:
    """A feed that starts from the site's default warehouse (`<data_dir>/analytics/
    warehouse.duckdb`, where `serve` exports), or from the store without a data dir."""
    wh = Path(data_dir) / WAREHOUSE if data_dir is not None else None
    return FactFeed(store, warehouse=wh, max_age_s=max_age_s)
