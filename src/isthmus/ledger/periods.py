"""Fiscal periods: which month an event posts to, and what happens when that month is closed.

Periods are calendar months written YYYY-MM (so they sort as text). Once finance closes a
month, nothing may post into it. A late charge for a closed month is either refused
(`reject`: the caller opens a work item for finance) or moved to the first open month after
it (`next_open`: posted on that month's first day, with `moved_from` kept for the audit
trail). The calendar takes plain values, not the settings object, so the ledger does not
depend on configuration.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

import msgspec

from isthmus.ledger.errors import ClosedPeriod, InvalidPeriod, LedgerError

PERIOD_RE = re.compile(r"\d{4}-(0[1-9]|1[0-2])")

ClosedPolicy = Literal["reject", "next_open"]


_PERIODS: dict[date, str] = {}  # date -> its period, formatted once (every posting asks)


def period_of(d: date) -> str:
    """The accounting period (calendar month, YYYY-MM) a date falls in."""
    found = _PERIODS.get(d)
    if found is None:
        found = f"{d.year:04d}-{d.month:02d}"
        if len(_PERIODS) < 100_000:  # a bounded memo: dates cluster in a few months
            _PERIODS[d] = found
    return found


def is_period(text: str) -> bool:
    """True for a well-formed period string, YYYY-MM with month 01..12."""
    return isinstance(text, str) and PERIOD_RE.fullmatch(text) is not None


def first_day(period: str) -> date:
    """The first calendar day of a period."""
    _require_period(period)
    return date(int(period[:4]), int(period[5:]), 1)


def next_period(period: str) -> str:
    """The month after `period` (2024-12 -> 2025-01)."""
    _require_period(period)
    year, month = int(period[:4]), int(period[5:])
    return f"{year + 1:04d}-01" if month == 12 else f"{year:04d}-{month + 1:02d}"


class PeriodAssignment(msgspec.Struct, frozen=True, kw_only=True):
    """Where an event posts: period, accounting date, and the closed period it left, if any."""

    period: str
    posted_on: date
    moved_from: str | None = None


class FiscalCalendar(msgspec.Struct, frozen=True, kw_only=True):
    """The closed periods and the policy for events that fall into one of them."""

    closed: frozenset[str] = frozenset()
    policy: ClosedPolicy = "next_open"

    def __post_init__(self) -> None:
        for period in sorted(self.closed):
            _require_period(period)
        if self.policy not in ("reject", "next_open"):
            raise InvalidPeriod(f"policy {self.policy!r} is not reject or next_open")

    @staticmethod
    def period_of(d: date) -> str:
        """The period a date falls in, whether open or closed."""
        return period_of(d)

    def is_closed(self, period: str) -> bool:
        return period in self.closed

    def next_open(self, period: str) -> str:
        """`period` itself if open, else the first open period after it."""
        while period in self.closed:
            period = next_period(period)
        return period

    def assign(self, service_date: date) -> PeriodAssignment:
        """The period and accounting date for an event that happened on `service_date`.

        Open period: posts on the service date. Closed period: `reject` raises ClosedPeriod;
        `next_open` posts on the first day of the first open period after it.
        """
        period = period_of(service_date)
        if period not in self.closed:
            return PeriodAssignment(period=period, posted_on=service_date)
        if self.policy == "reject":
            raise ClosedPeriod(period)
        target = self.next_open(period)
        return PeriodAssignment(period=target, posted_on=first_day(target), moved_from=period)


def _require_period(period: str) -> None:
    if not is_period(period):
        message = f"period {period!r} is not YYYY-MM"
        raise InvalidPeriod(message, (LedgerError(code="bad_period", message=message),))
