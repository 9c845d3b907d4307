"""Labor accruals and the budget check, by hand-computed figures (ledger/labor.py)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from isthmus.ledger.errors import InvalidEntry
from isthmus.ledger.journal import JournalEntry, validate_entry
from isthmus.ledger.labor import (
    Rate,
    accrual_entry,
    budget_variance,
    labor_cost,
    pay_period_end,
    shift_cost,
)

RATES = {
    "regular": Rate(D("45.00"), "5100"),
    "overtime": Rate(D("67.50"), "5110"),
    "differential": Rate(D("4.00"), "5120"),
    "on_call": Rate(D("8.00"), "5130"),
}
ANCHOR = date(2026, 1, 4)


@pytest.mark.parametrize(
    ("day", "end"),
    [
        (date(2026, 1, 4), date(2026, 1, 17)),
        (date(2026, 1, 17), date(2026, 1, 17)),
        (date(2026, 1, 18), date(2026, 1, 31)),
        (date(2026, 1, 3), date(2026, 1, 3)),
        (date(2025, 12, 21), date(2026, 1, 3)),
    ],
)
def test_pay_period_end(day: date, end: date) -> None:
    assert pay_period_end(day, anchor=ANCHOR, days=14) == end


def _entry(
    key: str,
    costs: dict[str, D],
    cc: str = "CC-4300",
    period: str = "2026-01",
    on: date = date(2026, 1, 17),
) -> JournalEntry:
    return accrual_entry(
        entry_key=key,
        costs=costs,
        rates=RATES,
        accrued_account="2300",
        company="C100",
        cost_center=cc,
        posted_on=on,
        period=period,
        memo="Labor accrual, shift S1",
        correlation_id="c",
        causation_id="e",
    )


def test_shift_cost_and_a_balanced_accrual() -> None:
    costs = shift_cost(
        {"regular": D("8"), "overtime": D(0), "differential": D("2.5"), "on_call": D("0.25")}, RATES
    )
    assert costs == {"regular": D("360.00"), "differential": D("10.00"), "on_call": D("2.00")}
    e = accrual_entry(
        entry_key="labor:accrual:x",
        costs=costs,
        rates=RATES,
        accrued_account="2300",
        company="C100",
        cost_center="CC-4300",
        posted_on=date(2026, 1, 17),
        period="2026-01",
        memo="m",
        correlation_id="c",
        causation_id="e",
    )
    assert validate_entry(e) == []
    got = [(x.account, x.debit, x.credit, x.dims.cost_center) for x in e.lines]
    assert sorted(got) == [
        ("2300", D("0.00"), D("372.00"), "CC-4300"),
        ("5100", D("360.00"), D("0.00"), "CC-4300"),
        ("5120", D("10.00"), D("0.00"), "CC-4300"),
        ("5130", D("2.00"), D("0.00"), "CC-4300"),
    ]


def test_an_accrual_without_hours_is_refused() -> None:
    with pytest.raises(InvalidEntry):
        accrual_entry(
            entry_key="k",
            costs={},
            rates=RATES,
            accrued_account="2300",
            company="C100",
            cost_center="CC",
            posted_on=date(2026, 1, 17),
            period="2026-01",
            memo="m",
            correlation_id="c",
            causation_id="e",
        )


def test_budget_variance_hand_computed() -> None:
    # ED: 2 shifts x 8 h x 45.00 = 720.00 + 3 h overtime x 67.50 = 202.50 -> 922.50
    # LAB: 8 h x 45.00 = 360.00; a February shift and reversals are not January's cost
    entries = [
        _entry("labor:accrual:a", {"regular": D("360.00")}),
        _entry("labor:accrual:b", {"regular": D("360.00")}),
        _entry("labor:accrual:overtime:b", {"overtime": D("202.50")}),
        _entry("labor:accrual:c", {"regular": D("360.00")}, cc="CC-4200"),
        _entry("labor:accrual:d", {"regular": D("360.00")}, period="2026-02", on=date(2026, 2, 14)),
    ]
    cost = labor_cost(entries, ["5100", "5110", "5120", "5130"], "2026-01")
    assert cost == {"CC-4300": D("922.50"), "CC-4200": D("360.00")}
    rows = budget_variance(
        cost,
        {"ED": D("1000.00"), "LAB": D("2000.00"), "RAD": D(0)},
        {"ED": "CC-4300", "LAB": "CC-4200", "RAD": "CC-4100"},
        D("0.90"),
    )
    got = [(r.department, r.budget, r.actual, r.variance, r.used, r.alert) for r in rows]
    assert got == [
        ("ED", D("1000.00"), D("922.50"), D("77.50"), D("0.9225"), True),
        ("LAB", D("2000.00"), D("360.00"), D("1640.00"), D("0.1800"), False),
        ("RAD", D(0), D(0), D(0), D(0), False),
    ]
