"""Encounter charges -> the ledger: enrich a Charge from the mapping tables, then post it.

Enrichment (config mapping tables, with operator overrides stored by `workitems resolve`):
department -> cost center, facility -> ERP company, charge code -> revenue account and
service line. Anything unmapped is held behind the ONE work item of the missing key
(flows/mapping_holds.py), which releases every charge it holds when the mapping is added;
a service date in a closed period under the `reject` policy, or a charge the ledger
refuses, becomes a work item of its own with the event inside it, to be resubmitted. It is
never a crash and never a partial posting.

`post_charge` reads the facts (the live patient account, the mapping lookup with its
overrides), `decide_charge` decides without the store, and `flows.decision.apply` writes
the decision at the worker's `now` (issue 17).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NamedTuple

from isthmus.config import Mappings, RevenueMapping
from isthmus.flows.accounts import resolve
from isthmus.flows.decision import Decision, Resolve, apply, hold
from isthmus.flows.mapping_holds import MappingHold
from isthmus.flows.outcome import POSTED, Held
from isthmus.ledger.errors import ClosedPeriod, LedgerRefusal
from isthmus.ledger.periods import FiscalCalendar
from isthmus.ledger.rules import charge_entry
from isthmus.model import Charge
from isthmus.model.envelope import Envelope
from isthmus.store.ports import ChargeRecord, Patient, Tx

# work item kind -> (owning queue, what the operator must supply)
QUEUES = {
    "unmapped_charge_code": "revenue-integrity",
    "unmapped_department": "finance-master-data",
    "unmapped_facility": "finance-master-data",
    "closed_period": "finance-close",
    "unpostable_charge": "revenue-integrity",
}


@dataclass(frozen=True)
class Enrichment:
    """What the mapping tables give a charge: its company, cost center and revenue mapping."""

    company: str
    cost_center: str
    revenue: RevenueMapping


@dataclass(frozen=True)
class Missing:
    """The mapping row a charge lacks: its work item kind, table and code."""

    kind: str
    table: str
    code: str
    detail: str


def lookup(tx: Tx, maps: Mappings, charge: Charge) -> Enrichment | Missing:
    """The dimensions of a charge, or the mapping row that is missing."""
    company = tx.mapping_override("facility_company", charge.facility) or maps.facility_company.get(
        charge.facility
    )
    if not company:
        return Missing(
            "unmapped_facility",
            "facility_company",
            charge.facility,
            f"facility {charge.facility!r} has no ERP company",
        )
    cost_center = tx.mapping_override(
        "department_cost_center", charge.department
    ) or maps.department_cost_center.get(charge.department)
    if not cost_center:
        return Missing(
            "unmapped_department",
            "department_cost_center",
            charge.department,
            f"department {charge.department!r} has no cost center",
        )
    override = tx.mapping_override("charge_codes", charge.charge_code)
    if override:
        spec = json.loads(override)
        revenue = RevenueMapping(spec["revenue_account"], spec.get("service_line", "General"))
    elif charge.charge_code in maps.charge_codes:
        revenue = maps.charge_codes[charge.charge_code]
    else:
        return Missing(
            "unmapped_charge_code",
            "charge_codes",
            charge.charge_code,
            f"charge code {charge.charge_code!r} has no revenue account",
        )
    return Enrichment(company, cost_center, revenue)


class RecordCharge(NamedTuple):
    """The charge's own record (patient, account token, amounts, the entry it posts): a
    `flows.decision` write (a named tuple, as the decision: made for every charge)."""

    record: ChargeRecord

    def write(self, tx: Tx, now: float) -> bool:
        tx.record_charge(self.record)
        return True


def decide_charge(
    env: Envelope,
    charge: Charge,
    patient: Patient,
    found: Enrichment | Missing,
    *,
    ar_account: str,
    calendar: FiscalCalendar,
) -> Decision:
    """What one charge comes to, from its facts (the live patient account and the mapping
    lookup), without the store: held behind a missing mapping row, held in a work item of
    its own (closed period, refused by the ledger), or posted with its record."""
    if isinstance(found, Missing):
        amount = charge.amount
        return Decision(
            Held(QUEUES[found.kind], found.detail),
            writes=(MappingHold(env, found.table, found.code, amount.amount, amount.currency),),
        )
    try:
        where = calendar.assign(charge.service_date)
        entry = charge_entry(
            charge,
            entry_key=env.event_id,
            ar_account=ar_account,
            revenue_account=found.revenue.revenue_account,
            service_line=found.revenue.service_line,
            cost_center=found.cost_center,
            company=found.company,
            account_token=patient.token,
            period=where.period,
            posted_on=where.posted_on,
            channel=env.source.channel,
            correlation_id=env.correlation_id,
            causation_id=env.event_id,
            moved_from=where.moved_from,
        )
    except ClosedPeriod as exc:
        return hold(env, kind="closed_period", queue=QUEUES["closed_period"], detail=str(exc))
    except LedgerRefusal as exc:
        kind = "unpostable_charge"
        return hold(env, kind=kind, queue=QUEUES[kind], detail=str(exc))
    record = ChargeRecord(
        event_id=env.event_id,
        patient_key=patient.key,
        account_token=patient.token,
        transaction_id=charge.transaction_id,
        transaction_type=charge.transaction_type,
        charge_code=charge.charge_code,
        amount=charge.amount.amount,
        currency=charge.amount.currency,
        service_date=charge.service_date,
        entry_key=entry.entry_key,
    )
    settled = (Resolve(env.event_id, "posted after the fix", entry.entry_key),)
    return Decision(POSTED, None, (), (RecordCharge(record),), (entry,), settled)


def post_charge(
    tx: Tx,
    env: Envelope,
    charge: Charge,
    *,
    secret: str,
    maps: Mappings,
    ar_account: str,
    calendar: FiscalCalendar,
    now: float,
) -> str:
    """Post one charge; returns "posted", "duplicate" or "held" (a work item was opened)."""
    patient = resolve(tx, secret, charge.patient)
    found = lookup(tx, maps, charge)
    decision = decide_charge(env, charge, patient, found, ar_account=ar_account, calendar=calendar)
    return apply(tx, decision, now).label
