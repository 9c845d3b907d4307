"""Fiscal periods: open, closed with reject, closed with next_open."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from isthmus.ledger import ClosedPeriod, FiscalCalendar, InvalidPeriod, PeriodAssignment
from isthmus.ledger.periods import first_day, next_period, period_of


def test_open_period_posts_on_the_service_date() -> None:
    cal = FiscalCalendar(closed=frozenset({"2024-01"}), policy="reject")
    assert cal.assign(date(2024, 2, 29)) == PeriodAssignment(
        period="2024-02", posted_on=date(2024, 2, 29), moved_from=None
    )


def test_closed_period_with_reject_raises() -> None:
    cal = FiscalCalendar(closed=frozenset({"2024-01"}), policy="reject")
    with pytest.raises(ClosedPeriod) as info:
        cal.assign(date(2024, 1, 31))
    assert info.value.period == "2024-01"
    assert info.value.errors[0].code == "closed_period"


def test_closed_period_with_next_open_moves_to_first_day_of_next_open_month() -> None:
    cal = FiscalCalendar(closed=frozenset({"2024-01", "2024-02"}), policy="next_open")
    assert cal.assign(date(2024, 1, 17)) == PeriodAssignment(
        period="2024-03", posted_on=date(2024, 3, 1), moved_from="2024-01"
    )


def test_next_open_spans_the_year_end() -> None:
    cal = FiscalCalendar(closed=frozenset({"2024-11", "2024-12", "2025-01"}), policy="next_open")
    assert cal.assign(date(2024, 11, 30)) == PeriodAssignment(
        period="2025-02", posted_on=date(2025, 2, 1), moved_from="2024-11"
    )
    assert cal.assign(date(2024, 12, 31)).period == "2025-02"
    assert FiscalCalendar(closed=frozenset({"2024-12"})).assign(date(2024, 12, 5)) == (
        PeriodAssignment(period="2025-01", posted_on=date(2025, 1, 1), moved_from="2024-12")
    )


def test_period_helpers() -> None:
    assert period_of(date(987, 7, 4)) == "0987-07"
    assert FiscalCalendar.period_of(date(2024, 10, 1)) == "2024-10"
    assert next_period("2024-12") == "2025-01" and next_period("2024-09") == "2024-10"
    assert first_day("2025-02") == date(2025, 2, 1)
    with pytest.raises(InvalidPeriod):
        next_period("2024-00")


@pytest.mark.parametrize("bad", ["2024-1", "2024-13", "24-01", "2024/01", ""])
def test_calendar_refuses_malformed_closed_periods(bad: str) -> None:
    with pytest.raises(InvalidPeriod):
        FiscalCalendar(closed=frozenset({bad}))


def test_calendar_refuses_unknown_policy() -> None:
    with pytest.raises(InvalidPeriod):
        FiscalCalendar(policy="skip")  # type: ignore[arg-type]


@given(
    closed=st.frozensets(
        st.dates(date(2023, 1, 1), date(2025, 12, 31)).map(period_of), max_size=20
    ),
    day=st.dates(date(2023, 1, 1), date(2025, 12, 31)),
)
def test_next_open_never_lands_in_a_closed_period(closed: frozenset[str], day: date) -> None:
    where = FiscalCalendar(closed=closed, policy="next_open").assign(day)
    assert where.period not in closed
    assert period_of(where.posted_on) == where.period
    if period_of(day) in closed:
        assert where.moved_from == period_of(day) < where.period
        assert where.posted_on.day == 1
        # Every month strictly between the closed one and the target is closed too.
        p = next_period(period_of(day))
        while p != where.period:
            assert p in closed
            p = next_period(p)
    else:
        assert where == PeriodAssignment(period=period_of(day), posted_on=day)
