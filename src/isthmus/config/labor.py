"""[labor]: the workforce accruals' pay codes, pay periods, employees and budgets.

flows/labor.py accrues worked hours by these; the defaults (four pay codes, a 14-day pay
period, the demonstration service lines) let a site start with only its employees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from isthmus.config.values import ConfigError, non_negative_decimal, str_map, subtable


@dataclass(frozen=True)
class PayCode:
    """One pay code of [labor.pay_codes]: hourly rate and the wages expense account."""

    rate: Decimal
    account: str


PAY_CODES = ("regular", "overtime", "differential", "on_call")
# [labor.service_lines]: department -> the service line its labor cost counts against
SERVICE_LINES: dict[str, str] = {
    "RAD": "Imaging",
    "RAD-1": "Imaging",
    "LAB": "Laboratory",
    "ED": "Emergency",
    "PHARM": "Pharmacy",
    "SURG": "Surgery",
    "CARD": "Cardiology",
}


def _default_pay_codes() -> dict[str, PayCode]:
    return {
        "regular": PayCode(Decimal("45.00"), "5100"),
        "overtime": PayCode(Decimal("67.50"), "5110"),
        "differential": PayCode(Decimal("4.00"), "5120"),
        "on_call": PayCode(Decimal("8.00"), "5130"),
    }


@dataclass(frozen=True)
class LaborSettings:
    """[labor]: workforce accruals (flows/labor.py). `employees` (employee id -> home
    department) is a copy of the ERP's master, read-only here; `budgets` are monthly labor
    budgets per department; a department at `budget_alert` (a fraction) of its budget is
    flagged. Pay periods are `pay_period_days` long, counted from `pay_period_anchor`."""

    company: str = "C100"
    accrued_account: str = "2300"
    pay_codes: dict[str, PayCode] = field(default_factory=_default_pay_codes)
    pay_period_days: int = 14
    pay_period_anchor: date = date(2026, 1, 4)
    employees: dict[str, str] = field(default_factory=dict)
    budgets: dict[str, Decimal] = field(default_factory=dict)
    budget_alert: Decimal = Decimal("0.90")
    service_lines: dict[str, str] = field(default_factory=lambda: dict(SERVICE_LINES))


def labor_from_table(raw: dict[str, Any]) -> LaborSettings:
    """The [labor] table, its pay codes over the defaults, checked."""
    base = LaborSettings()
    codes = dict(base.pay_codes)
    for code, spec in subtable(raw, "pay_codes").items():
        if code not in PAY_CODES or not isinstance(spec, dict):
            raise ConfigError(
                f"labor.pay_codes.{code}: one of {', '.join(PAY_CODES)}, "
                "a table with rate and account"
            )
        codes[code] = PayCode(
            non_negative_decimal(
                spec.get("rate", codes[code].rate), f"labor.pay_codes.{code}.rate"
            ),
            str(spec.get("account", codes[code].account)),
        )
    anchor = raw.get("pay_period_anchor", base.pay_period_anchor)
    if isinstance(anchor, str):
        anchor = date.fromisoformat(anchor)
    if not isinstance(anchor, date):
        raise ConfigError("labor.pay_period_anchor must be a date (YYYY-MM-DD)")
    days = int(raw.get("pay_period_days", base.pay_period_days))
    if days < 1:
        raise ConfigError("labor.pay_period_days must be 1 or more")
    return LaborSettings(
        company=str(raw.get("company", base.company)),
        accrued_account=str(raw.get("accrued_account", base.accrued_account)),
        pay_codes=codes,
        pay_period_days=days,
        pay_period_anchor=anchor,
        employees=str_map(subtable(raw, "employees"), "labor.employees"),
        budgets={
            str(k): non_negative_decimal(v, f"labor.budgets.{k}")
            for k, v in subtable(raw, "budgets").items()
        },
        budget_alert=non_negative_decimal(raw.get("budget_alert", "0.90"), "labor.budget_alert"),
        service_lines=str_map(subtable(raw, "service_lines"), "labor.service_lines")
        or dict(SERVICE_LINES),
    )
