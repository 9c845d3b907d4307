"""[mappings]: the site's chart, from department, facility and charge code to the ERP's codes.

Empty by default, so that nothing posts unmapped: every charge waits behind a mapping work
item until the site maps it. `[mappings] include = "demo"` starts from the demonstration
chart (demo/chart.py, written as this table would be; the loader's `mappings_from_table`
reads it), the file's own rows then merged over it. [mappings.transaction_types] maps
FT1-6 codes to posting kinds, over HL7 table 0017.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from isthmus.config.values import ConfigError, str_map, subtable


@dataclass(frozen=True)
class RevenueMapping:
    """Where revenue of one charge code (FT1-7) posts: its revenue account and service line."""

    revenue_account: str
    service_line: str


TRANSACTION_KINDS = ("charge", "credit", "payment", "adjustment")
TRANSACTION_TYPES = {"CG": "charge", "CD": "credit", "PY": "payment", "AJ": "adjustment"}


@dataclass(frozen=True)
class Mappings:
    """Enrichment: department -> cost center, facility -> ERP company, code -> revenue.

    Empty by default (a safe default: nothing posts unmapped); `include` names a chart the
    tables start from ("demo", demo/chart.py), "" for none."""

    department_cost_center: dict[str, str] = field(default_factory=dict)
    facility_company: dict[str, str] = field(default_factory=dict)
    charge_codes: dict[str, RevenueMapping] = field(default_factory=dict)
    include: str = ""
    # FT1-6 transaction type (HL7 table 0017) -> charge | credit | payment | adjustment
    transaction_types: dict[str, str] = field(default_factory=lambda: dict(TRANSACTION_TYPES))


CHARTS = ("demo",)  # what `[mappings] include` may name


def included_chart(maps: dict[str, Any]) -> Any:
    """What `[mappings] include` names (falsy: no chart), refused unless one of CHARTS."""
    include = maps.get("include", "")
    if include and include not in CHARTS:
        raise ConfigError(
            f"mappings.include must be one of {', '.join(CHARTS)} "
            f"(or left out for an empty chart), got {include!r}"
        )
    return include


def mappings_over(base: dict[str, Any], maps: dict[str, Any]) -> Mappings:
    """The mapping tables of a `[mappings]` table, its own rows over `base` (the rows of the
    chart it includes, written as a `[mappings]` table; empty for none). The chart is read
    by the loader (`isthmus.config.mappings_from_table`), so that this module, which the
    flows import, does not reach the demonstration data."""
    include = included_chart(maps)
    codes: dict[str, RevenueMapping] = {}
    for source in (base, maps):
        for code, spec in subtable(source, "charge_codes").items():
            if not isinstance(spec, dict) or "revenue_account" not in spec:
                raise ConfigError(f"mappings.charge_codes.{code} needs revenue_account")
            codes[str(code)] = RevenueMapping(
                str(spec["revenue_account"]), str(spec.get("service_line", "General"))
            )
    tables = {
        name: {
            **str_map(subtable(base, name), f"mappings.{name}"),
            **str_map(subtable(maps, name), f"mappings.{name}"),
        }
        for name in ("department_cost_center", "facility_company")
    }
    return Mappings(
        department_cost_center=tables["department_cost_center"],
        facility_company=tables["facility_company"],
        charge_codes=codes,
        include=str(include),
        transaction_types=_transaction_types(subtable(maps, "transaction_types")),
    )


def _transaction_types(raw: dict[str, Any]) -> dict[str, str]:
    """[mappings.transaction_types]: FT1-6 code -> posting kind, over the table 0017 defaults."""
    out = dict(TRANSACTION_TYPES)
    for code, kind in raw.items():
        if kind not in TRANSACTION_KINDS:
            raise ConfigError(
                f"mappings.transaction_types.{code} must be one of "
                f"{', '.join(TRANSACTION_KINDS)}, not {kind!r}"
            )
        out[str(code).strip().upper()] = kind
    return out
