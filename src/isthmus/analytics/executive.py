"""The executive view (issue 21), read from the analytics warehouse, never from the inbox.

Figures, all per currency-less sums of one-currency sites (as recon.supply does):
- margin per service line and period: revenue (lines on `revenue` accounts), net of the
  contractual allowances, denials and write-offs of the 835s (fact_adjustment, CAS group
  CO / denied claims / OA, PI, CR), allocated to service lines by each account token's
  share of revenue; less supply (`supply_expense`) and accrued labor (`labor_expense`
  accruals). `gross_margin` is revenue - supply - labor, what `recon.supply.
  service_line_margin` shows on the Supply page.
- denials: remitted and denied claims (flows.denial_codes.is_denial) by month, by CARC
  (X12 code list 139) and by payer, with the rate over remitted claims (observe.kpis
  counts the same fact rows, through analytics.feed: the two agree);
  the denied amounts by category (CAS01 group code and CARC).
- A/R aging by payer class: open A/R per account token (debits applied first in, first
  out), aged from the posting date, in 0-30/31-60/61-90/90+ day buckets; days in A/R =
  open A/R over the average daily charges of the site's posted history.
- charge lag (service date -> received by the hub, days, p50/p95) and first-pass yield
  (remits paid without a denial over remits) by month.
- cash forecast: open A/R per payer class times that class's collection rate (paid over
  billed on its remits; the site's rate when the class has none), paid in the class's
  median days from posting to payment.
- close checklist per period: unposted charges from the warehouse; unreconciled
  deposits, open work items and unmatched invoices from the store's live state
  (`Store.deposit_records`, `Store.work_items`); the ERP variance is `isthmus recon erp`'s
  (it needs the ERP), shown as not measured here.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from isthmus.analytics.warehouse import modules
from isthmus.errors import TransientError
from isthmus.store.ports import Store


class Busy(TransientError, RuntimeError):
    """The warehouse cannot be opened now (an export holds it)."""

    retry_after = 5.0


BUCKETS = (("0-30", 0, 30), ("31-60", 31, 60), ("61-90", 61, 90), ("90+", 91, 1 << 30))

_ROLE = "SELECT account FROM dim_account WHERE role = '{}'"
_REV = f"account IN ({_ROLE.format('revenue')})"

GROSS = f"""
SELECT coalesce(nullif(service_line, ''), '(none)') AS service_line, period,
  sum(CASE WHEN {_REV} THEN credit - debit ELSE 0 END) AS revenue,
  sum(CASE WHEN account IN ({_ROLE.format("supply_expense")}) THEN debit - credit ELSE 0 END)
    AS supply,
  sum(CASE WHEN is_labor_accrual AND account IN ({_ROLE.format("labor_expense")})
    THEN debit - credit ELSE 0 END) AS labor
FROM fact_journal_line
WHERE {_REV} OR account IN ({_ROLE.format("supply_expense")})
   OR (is_labor_accrual AND account IN ({_ROLE.format("labor_expense")}))
GROUP BY ALL ORDER BY 1, 2"""

DEDUCTIONS = f"""
WITH tok AS (SELECT DISTINCT entry_key, account_token FROM fact_journal_line
             WHERE account_token <> ''),
rev AS (SELECT t.account_token, coalesce(nullif(r.service_line, ''), '(none)') AS sl,
          sum(r.credit - r.debit) AS revenue
        FROM fact_journal_line r JOIN tok t USING (entry_key) WHERE r.{_REV} GROUP BY ALL),
share AS (SELECT account_token, sl, revenue / nullif(sum(revenue) OVER
            (PARTITION BY account_token), 0) AS w FROM rev),
adj AS (SELECT account_token, period, category, sum(amount) AS amount FROM fact_adjustment
        WHERE category IN ('contractual', 'denial', 'write_off') GROUP BY ALL)
SELECT coalesce(s.sl, '(unallocated)') AS service_line, adj.period, adj.category,
  sum(adj.amount * coalesce(s.w, 1)) AS amount
FROM adj LEFT JOIN share s USING (account_token) GROUP BY ALL ORDER BY 1, 2, 3"""

PAYER_CLASS_OF = """
SELECT account_token, arg_max(coalesce(p.payer_class, 'commercial'), received_at) AS cls
FROM (SELECT account_token, payer_id, received_at FROM fact_remit UNION ALL
      SELECT account_token, payer_id, received_at FROM fact_claim) x
LEFT JOIN dim_payer p USING (payer_id) WHERE account_token <> '' GROUP BY account_token"""

AR_LINES = f"""
SELECT account_token, posted_on, debit, credit FROM fact_journal_line
WHERE account IN ({_ROLE.format("ar")}) AND account_token <> '' ORDER BY posted_on, position"""


def _money(v: Any) -> Decimal:
    return Decimal(str(v or 0)).quantize(Decimal("0.01"))


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, -(-int(q * 100) * len(ordered) // 100)) - 1]


def _bucket(days: int) -> str:
    return next(label for label, lo, hi in BUCKETS if lo <= days <= hi)


def _open_ar(rows: list[tuple[Any, ...]]) -> dict[str, list[tuple[date, Decimal]]]:
    """Open debits per token, credits applied to the oldest debits first."""
    debits: dict[str, list[list[Any]]] = defaultdict(list)
    credit: dict[str, Decimal] = defaultdict(Decimal)
    for token, on, dr, cr in rows:
        if dr:
            debits[token].append([on, Decimal(dr)])
        credit[token] += Decimal(cr)
    out: dict[str, list[tuple[date, Decimal]]] = {}
    for token, items in debits.items():
        left = credit[token]
        opened = []
        for on, amount in items:
            used = min(amount, left)
            left -= used
            if amount - used > 0:
                opened.append((on, amount - used))
        if opened:
            out[token] = opened
    return out


def read(warehouse: Path, store: Store | None, as_of: date) -> dict[str, Any]:
    """Every figure of the executive view, as plain JSON-able data (money as strings)."""
    duckdb, _pa = modules()
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error as exc:  # an export holds the file: the next request will do
        raise Busy(f"the analytics warehouse is busy (an export runs): {exc}") from exc
    try:
        return _read(con, store, as_of)
    finally:
        con.close()


def _margin(con: Any) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Decimal]] = {}
    zero = Decimal(0)

    def row(sl: str, period: str) -> dict[str, Decimal]:
        return rows.setdefault(
            (sl, period),
            dict.fromkeys(
                ("revenue", "contractual", "denial", "write_off", "supply", "labor"), zero
            ),
        )

    for sl, period, revenue, supply, labor in con.execute(GROSS).fetchall():
        r = row(sl, period)
        r["revenue"], r["supply"], r["labor"] = _money(revenue), _money(supply), _money(labor)
    for sl, period, category, amount in con.execute(DEDUCTIONS).fetchall():
        row(sl, period)[category] += _money(amount)
    out = []
    for (sl, period), r in sorted(rows.items()):
        gross = r["revenue"] - r["supply"] - r["labor"]
        net = gross - r["contractual"] - r["denial"] - r["write_off"]
        out.append(
            {
                "service_line": sl,
                "period": period,
                **{k: str(v) for k, v in r.items()},
                "gross_margin": str(gross),
                "net_margin": str(net),
            }
        )
    return out


def _denials(con: Any) -> dict[str, Any]:
    remits = con.execute(
        "SELECT event_id, period, payer_id, denied, charge FROM fact_remit WHERE NOT reversal"
    ).fetchall()
    carcs: dict[str, set[str]] = defaultdict(set)
    for eid, carc, amount in con.execute(
        "SELECT event_id, carc, amount FROM fact_adjustment"
    ).fetchall():
        if amount > 0:
            carcs[eid].add(carc)
    total = len(remits)
    denied = [r for r in remits if r[3]]
    by_carc: Counter[str] = Counter()
    for r in denied:
        by_carc.update(carcs.get(r[0]) or {"none"})
    by_month: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_payer: dict[str, list[Any]] = defaultdict(lambda: [0, 0, Decimal(0)])
    for _e, period, payer, is_denied, charge in remits:
        by_month[period][0] += 1
        by_payer[payer][0] += 1
        if is_denied:
            by_month[period][1] += 1
            by_payer[payer][1] += 1
            by_payer[payer][2] += _money(charge)
    by_group = [
        {"group": g, "carc": c, "adjustments": n, "amount": str(_money(a))}
        for g, c, n, a in con.execute(
            "SELECT group_code, carc, count(*), sum(amount) FROM fact_adjustment "
            "WHERE category = 'denial' GROUP BY ALL ORDER BY 3 DESC, 1, 2"
        ).fetchall()
    ]
    return {
        "remitted_claims": total,
        "denied_claims": len(denied),
        "by_category": by_group,
        "denial_rate": len(denied) / total if total else 0.0,
        "by_carc": [
            {"carc": c, "denials": n, "rate": n / total}
            for c, n in sorted(by_carc.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "by_month": [
            {"period": p, "remitted": a, "denied": d, "rate": d / a if a else 0.0}
            for p, (a, d) in sorted(by_month.items())
        ],
        "by_payer": [
            {"payer_id": p, "remitted": a, "denied": d, "denied_charge": str(c)}
            for p, (a, d, c) in sorted(by_payer.items())
        ],
    }


def _ar(con: Any, as_of: date) -> tuple[dict[str, Any], dict[str, Decimal]]:
    classes = dict(con.execute(PAYER_CLASS_OF).fetchall())
    opened = _open_ar(con.execute(AR_LINES).fetchall())
    aging: dict[str, dict[str, Decimal]] = defaultdict(lambda: {b[0]: Decimal(0) for b in BUCKETS})
    open_by_class: dict[str, Decimal] = defaultdict(Decimal)
    for token, items in opened.items():
        cls = classes.get(token, "unbilled")
        for on, amount in items:
            aging[cls][_bucket(max(0, (as_of - on).days))] += amount
            open_by_class[cls] += amount
    span = con.execute(
        f"SELECT sum(debit), min(posted_on), max(posted_on) FROM fact_journal_line WHERE "
        f"account IN ({_ROLE.format('ar')}) AND channel NOT IN ('refunds')"
    ).fetchone()
    days = ((span[2] - span[1]).days + 1) if span and span[1] else 0
    daily = _money(span[0]) / days if days else Decimal(0)
    rows = [
        {
            "payer_class": cls,
            **{k: str(v) for k, v in aging[cls].items()},
            "open": str(open_by_class[cls]),
            "days_in_ar": float(round(open_by_class[cls] / daily, 1)) if daily else None,
        }
        for cls in sorted(aging)
    ]
    total = sum(open_by_class.values(), Decimal(0))
    return (
        {
            "by_class": rows,
            "open": str(total),
            "average_daily_charges": str(daily.quantize(Decimal("0.01"))),
            "days_in_ar": float(round(total / daily, 1)) if daily else None,
        },
        dict(open_by_class),
    )


def _forecast(con: Any, open_by_class: dict[str, Decimal]) -> list[dict[str, Any]]:
    history = con.execute(
        "SELECT coalesce(p.payer_class, 'commercial'), sum(r.paid), sum(r.charge), "
        "median(date_diff('day', t.first_on, r.payment_date)) FROM fact_remit r "
        "LEFT JOIN dim_payer p USING (payer_id) LEFT JOIN (SELECT account_token, "
        "min(posted_on) AS first_on FROM fact_journal_line WHERE account_token <> '' "
        "GROUP BY ALL) t USING (account_token) WHERE NOT r.reversal GROUP BY ALL"
    ).fetchall()
    rates = {c: (Decimal(p) / Decimal(b) if b else Decimal(0), d) for c, p, b, d in history}
    paid = sum((Decimal(p) for _c, p, _b, _d in history), Decimal(0))
    billed = sum((Decimal(b) for _c, _p, b, _d in history), Decimal(0))
    site = paid / billed if billed else Decimal(0)
    out = []
    for cls, amount in sorted(open_by_class.items()):
        rate, lag = rates.get(cls, (site, None))
        out.append(
            {
                "payer_class": cls,
                "open": str(amount),
                "collection_rate": float(round(rate, 4)),
                "expected": str((amount * rate).quantize(Decimal("0.01"))),
                "expected_in_days": None if lag is None else float(lag),
                "history": "class" if cls in rates else "site",
            }
        )
    return out


def _trends(con: Any) -> list[dict[str, Any]]:
    lags: dict[str, list[float]] = defaultdict(list)
    for period, lag in con.execute(
        "SELECT strftime(received_at, '%Y-%m'), epoch(received_at) - epoch(CAST("
        "service_date AS TIMESTAMPTZ)) FROM fact_charge"
    ).fetchall():
        lags[period].append(max(0.0, float(lag)) / 86_400.0)
    fpy = dict(
        (p, (n, ok))
        for p, n, ok in con.execute(
            "SELECT period, count(*), count(*) FILTER (WHERE paid > 0 AND NOT denied) "
            "FROM fact_remit WHERE NOT reversal GROUP BY ALL"
        ).fetchall()
    )
    return [
        {
            "period": p,
            "charges": len(lags.get(p, [])),
            "charge_lag_p50_days": _quantile(lags.get(p, []), 0.5),
            "charge_lag_p95_days": _quantile(lags.get(p, []), 0.95),
            "remits": fpy.get(p, (0, 0))[0],
            "first_pass_yield": (fpy[p][1] / fpy[p][0]) if p in fpy and fpy[p][0] else None,
        }
        for p in sorted(set(lags) | set(fpy))
    ]


def _close(con: Any, store: Store | None) -> list[dict[str, Any]]:
    periods: dict[str, dict[str, Any]] = {}

    def row(p: str) -> dict[str, Any]:
        return periods.setdefault(
            p,
            {
                "period": p,
                "unposted_charges": 0,
                "unreconciled_deposits": 0,
                "open_work_items": 0,
                "unmatched_invoices": 0,
                "erp_variance": None,
            },
        )

    for p, n in con.execute(
        "SELECT c.period, count(*) FROM fact_charge c WHERE c.event_id NOT IN "
        "(SELECT causation_id FROM fact_journal_line) GROUP BY ALL"
    ).fetchall():
        row(p)["unposted_charges"] = n
    for (p,) in con.execute("SELECT period FROM dim_period").fetchall():
        row(p)
    if store is not None:
        for d in store.deposit_records():
            if not d.matched_with:
                row(f"{d.on_date.year:04d}-{d.on_date.month:02d}")["unreconciled_deposits"] += 1
        for w in store.work_items(status="open", limit=1 << 30):
            at = datetime.fromtimestamp(w.created_at, UTC)
            r = row(f"{at.year:04d}-{at.month:02d}")
            r["open_work_items"] += 1
            if w.kind == "invoice_mismatch":
                r["unmatched_invoices"] += 1
    for r in periods.values():
        r["ready"] = not (
            r["unposted_charges"]
            or r["unreconciled_deposits"]
            or r["open_work_items"]
            or r["unmatched_invoices"]
        )
    return [periods[p] for p in sorted(periods)]


def _read(con: Any, store: Store | None, as_of: date) -> dict[str, Any]:
    ar, open_by_class = _ar(con, as_of)
    marks = dict(con.execute("SELECT source, position FROM watermark").fetchall())
    return {
        "as_of": as_of.isoformat(),
        "watermarks": marks,
        "margin": _margin(con),
        "denials": _denials(con),
        "ar": ar,
        "forecast": _forecast(con, open_by_class),
        "trends": _trends(con),
        "close": _close(con, store),
    }


PERIOD = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")  # fullmatch: YYYY-MM, ASCII digits


def for_period(view: dict[str, Any], period: str) -> dict[str, Any]:
    """The view with its per-period series cut to one accounting period (YYYY-MM): margin,
    denials by month, trends and the close checklist. The point-in-time figures (A/R aging,
    days in A/R, the cash forecast, the denial totals) stay as of `as_of`."""
    denials = {
        **view["denials"],
        "by_month": [r for r in view["denials"]["by_month"] if r["period"] == period],
    }
    return {
        **view,
        "period": period,
        "denials": denials,
        **{k: [r for r in view[k] if r["period"] == period] for k in ("margin", "trends", "close")},
    }
