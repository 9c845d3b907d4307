"""The KPIs' facts, one row type per fact: charges and remitted claims, from fact rows.

The KPIs (observe/kpis.py) read a few columns of the warehouse's `fact_charge`,
`fact_remit` and `fact_adjustment` rows (analytics/facts.py, analytics/schema.py), by
column name: a charge's receipt time, service day, amount and currency (`ChargeFact`), a
remitted claim's receipt time, denial and the CARCs of its positive adjustments
(`RemitFact`; reversals are left out). `analytics.feed` keeps them; no PHI (event ids,
times, amounts, currencies and CARCs only).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

from isthmus.analytics import facts
from isthmus.analytics.schema import TABLES


@dataclass(frozen=True, slots=True)
class ChargeFact:
    """A charge event (fact_charge): when the hub got it, its service day, its amount."""

    event_id: str
    received: float  # epoch seconds
    service_start: float  # the service date's midnight (UTC), where its charge lag starts
    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class RemitFact:
    """A remitted claim that is not a reversal (fact_remit), with the CARCs of its positive
    adjustments (fact_adjustment)."""

    event_id: str
    received: float
    denied: bool
    carcs: frozenset[str]


_CH = TABLES["fact_charge"].names.index
_RE = TABLES["fact_remit"].names.index
_AD = TABLES["fact_adjustment"].names.index


def kpi_facts(rows: facts.Rows) -> tuple[list[ChargeFact], list[RemitFact]]:
    """The KPIs' columns of a page of fact rows (analytics/facts.py), by column name."""
    ev, at, day, amt, cur = (
        _CH(c) for c in ("event_id", "received_at", "service_date", "amount", "currency")
    )
    charges = [
        ChargeFact(str(r[ev]), _ts(r[at]), midnight(_day(r[day])), _dec(r[amt]), str(r[cur]))
        for r in rows.tables.get("fact_charge", [])
    ]
    carcs: dict[str, set[str]] = {}
    a_ev, a_carc, a_amt = _AD("event_id"), _AD("carc"), _AD("amount")
    for r in rows.tables.get("fact_adjustment", []):
        if _dec(r[a_amt]) > 0:
            carcs.setdefault(str(r[a_ev]), set()).add(str(r[a_carc]))
    r_ev, r_at, r_den, r_rev = (_RE(c) for c in ("event_id", "received_at", "denied", "reversal"))
    remits = [
        RemitFact(
            str(r[r_ev]), _ts(r[r_at]), bool(r[r_den]), frozenset(carcs.get(str(r[r_ev]), ()))
        )
        for r in rows.tables.get("fact_remit", [])
        if not r[r_rev]
    ]
    return charges, remits


def _ts(v: object) -> float:
    assert isinstance(v, datetime)
    return v.timestamp()


def _day(v: object) -> date:
    assert isinstance(v, date)
    return v


def _dec(v: object) -> Decimal:
    assert isinstance(v, Decimal)
    return v


@functools.lru_cache(maxsize=4096)  # a site's charges fall on a few hundred days
def midnight(d: date) -> float:
    """A service date's start (UTC), where a charge's lag starts."""
    return datetime.combine(d, time(0), tzinfo=UTC).timestamp()
