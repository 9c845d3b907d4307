"""Mapping drift: hub mappings that name an account or cost center the ERP does not have.

The hub maps departments to cost centers and charge codes to revenue accounts
([mappings] in the config); the ERP owns the chart and the cost centers (DESIGN.md, master
data ownership). When the two part (a cost center closed in the ERP, a mapping pointing at
an account never created there), every batch touching it would be rejected; finding it in
the master data first names the fix before a posting fails.

Each distinct drift is one open work item (kind `erp_drift`, queue `erp-mapping`): a pull
that finds it again adds nothing, a pull that no longer finds it resolves the item, and a
drift that comes back later opens a new one.
"""

from __future__ import annotations

from dataclasses import dataclass

from isthmus.config import Settings
from isthmus.ports.erp import MasterData
from isthmus.store.ports import Store

DRIFT_KIND, DRIFT_QUEUE = "erp_drift", "erp-mapping"


@dataclass(frozen=True, slots=True, order=True)
class Drift:
    """A code the hub maps to that the ERP does not have: an account or a cost center."""

    kind: str  # "account" | "cost_center"
    code: str  # the code the ERP lacks (after erp.account_map)
    mapped_from: str  # what maps to it: "department RAD", "charge code 71045", "posting ar"

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.code}"

    def describe(self) -> str:
        label = "account" if self.kind == "account" else "cost center"
        return (
            f"{label} {self.code} (mapped from {self.mapped_from}) is not in the ERP: "
            "create it there, or change the hub mapping"
        )


@dataclass(frozen=True, slots=True)
class DriftReport:
    """What one pull of the ERP's chart found, and which drift work items it opened and
    closed."""

    drift: tuple[Drift, ...]  # every drift found by this pull
    opened: tuple[str, ...]  # drift keys that got a new work item
    closed: tuple[str, ...]  # drift keys whose work item this pull resolved


def find_drift(settings: Settings, md: MasterData) -> list[Drift]:
    """Every mapped cost center and account missing from the ERP's master data (pure)."""
    maps = settings.mappings
    by_code: dict[tuple[str, str], list[str]] = {}
    for dept, cc in sorted(maps.department_cost_center.items()):
        if cc not in md.cost_centers:
            by_code.setdefault(("cost_center", cc), []).append(f"department {dept}")
    wanted = [
        (f"charge code {code}", m.revenue_account) for code, m in sorted(maps.charge_codes.items())
    ]
    wanted.append(("posting.ar_account", settings.posting.ar_account))
    for source, account in wanted:
        code = settings.erp.account_map.get(account, account)
        if code not in md.accounts:
            by_code.setdefault(("account", code), []).append(source)
    return sorted(
        Drift(kind, code, ", ".join(sources)) for (kind, code), sources in by_code.items()
    )


def _key_of(event_id: str) -> str:
    # event id: erp-drift:<kind>:<code>:<opened at>
    return event_id.removeprefix("erp-drift:").rsplit(":", 1)[0]


def open_drift(store: Store) -> dict[str, str]:
    """Drift keys with an open work item -> that item's event id."""
    return {
        _key_of(w.event_id): w.event_id
        for w in store.work_items("open", limit=1_000_000)
        if w.kind == DRIFT_KIND
    }


def record_drift(store: Store, drift: list[Drift], now: float) -> DriftReport:
    """Open a work item per drift not already open; resolve open ones that cleared."""
    current = open_drift(store)
    found = {d.key: d for d in drift}
    opened, closed = [], []
    with store.transaction() as tx:
        for key, d in sorted(found.items()):
            if key in current:
                continue
            tx.add_work_item(
                kind=DRIFT_KIND,
                queue=DRIFT_QUEUE,
                key=key,
                event_id=f"erp-drift:{key}:{now:.6f}",
                correlation_id=key,
                detail=d.describe(),
                envelope=b"",
                now=now,
            )
            opened.append(key)
        for key, event_id in sorted(current.items()):
            if key not in found:
                tx.close_work_items(event_id, "cleared: the ERP has it now", now)
                closed.append(key)
    return DriftReport(tuple(drift), tuple(opened), tuple(closed))
