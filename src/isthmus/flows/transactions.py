"""One FT1 line (DFT^P03 / P11) -> the posting its transaction type calls for.

FT1-6 (HL7 table 0017: CG charge, CD credit, PY payment, AJ adjustment, or a site's own
code) is mapped by `[mappings.transaction_types]` to charge, credit, payment or adjustment.
Before any posting:
- a type with no mapping holds the line with an `unmapped_transaction_type` work item;
- a line to a billing account that BAR P06 ended or P02 purged is held with a
  `charge_to_closed_account` work item (`flows.visits.closed_status`);
- a line with no department (FT1-13) takes the department of the location the visit was in
  on the service date (ADT A02/A12/A17, `flows.visits.department_at`), so charges after a
  transfer land on the new cost center; an FT1-13 department always wins.
Charges and credits are `flows.charges.post_charge`; payments and adjustments post against
the patient's A/R with `ledger.ft1.balance_entry` (cash clearing and other adjustments
accounts of the remittance chart).
"""

from __future__ import annotations

import time

from msgspec.structs import replace

from isthmus.config import Mappings
from isthmus.flows import visits
from isthmus.flows.accounts import resolve
from isthmus.flows.charges import post_charge
from isthmus.ledger.errors import ClosedPeriod, LedgerRefusal
from isthmus.ledger.ft1 import balance_entry
from isthmus.ledger.periods import FiscalCalendar
from isthmus.ledger.remit import RemitAccounts
from isthmus.model import Charge
from isthmus.model.envelope import Envelope, encode_envelope
from isthmus.store.ports import Tx

QUEUES = {"unmapped_transaction_type": "finance-master-data",
          "charge_to_closed_account": "patient-accounting",
          "unmapped_facility": "finance-master-data",
          "closed_period": "finance-close", "unpostable_charge": "revenue-integrity"}


def _hold(tx: Tx, env: Envelope, kind: str, detail: str) -> str:
    tx.add_work_item(kind=kind, queue=QUEUES[kind], key=env.key, event_id=env.event_id,
                     correlation_id=env.correlation_id, detail=detail,
                     envelope=encode_envelope(env), now=time.time())
    return "held"


def post_line(tx: Tx, env: Envelope, line: Charge, *, secret: str, maps: Mappings,
              accounts: RemitAccounts, calendar: FiscalCalendar) -> str:
    """Post one FT1 line (module docstring): "posted", "duplicate" or "held"."""
    kind = maps.transaction_types.get(line.transaction_type)
    if kind is None:
        return _hold(tx, env, "unmapped_transaction_type",
                     f"FT1-6 transaction type {line.transaction_type!r} has no posting "
                     "kind: add it to [mappings.transaction_types]")
    closed = visits.closed_status(tx, line.account_number)
    if closed:
        return _hold(tx, env, "charge_to_closed_account",
                     f"FT1 {line.transaction_type} {line.transaction_id} to a billing account "
                     f"{closed} by BAR^{'P02' if closed == 'purged' else 'P06'}: reopen it "
                     "(BAR P01/P05) and resubmit, or resolve")
    if not line.department:
        department = visits.department_at(tx, line.visit_number, line.service_date)
        if department:
            line = replace(line, department=department)
    if kind in ("charge", "credit"):
        code = "CD" if kind == "credit" or line.negative else "CG"
        if code != line.transaction_type:
            line = replace(line, transaction_type=code)
        outcome = post_charge(tx, env, line, secret=secret, maps=maps,
                              ar_account=accounts.ar, calendar=calendar)
        if outcome == "posted":
            visits.charge_posted(tx, line.visit_number, env.event_id)
        return outcome
    return _post_balance(tx, env, line, "payment" if kind == "payment" else "adjustment",
                         secret=secret, maps=maps, accounts=accounts, calendar=calendar)


def _post_balance(tx: Tx, env: Envelope, line: Charge, kind: str, *, secret: str,
                  maps: Mappings, accounts: RemitAccounts, calendar: FiscalCalendar) -> str:
    company = tx.mapping_override("facility_company", line.facility) or \
        maps.facility_company.get(line.facility)
    if not company:
        return _hold(tx, env, "unmapped_facility",
                     f"facility {line.facility!r} has no ERP company")
    patient = resolve(tx, secret, line.patient)
    try:
        where = calendar.assign(line.service_date)
        entry = balance_entry(
            "payment" if kind == "payment" else "adjustment", line.amount,
            raises=not line.negative, ar_account=accounts.ar,
            counter_account=accounts.cash_clearing if kind == "payment"
            else accounts.other_adjustments,
            company=company, account_token=patient.token, entry_key=env.event_id,
            posted_on=where.posted_on, period=where.period, channel=env.source.channel,
            memo=f"{line.transaction_type} {kind} txn {line.transaction_id}",
            correlation_id=env.correlation_id, causation_id=env.event_id,
            moved_from=where.moved_from)
    except ClosedPeriod as exc:
        return _hold(tx, env, "closed_period", str(exc))
    except LedgerRefusal as exc:
        return _hold(tx, env, "unpostable_charge", str(exc))
    posted = tx.insert_entry(entry)
    tx.close_work_items(env.event_id, "posted after the fix", time.time())
    return "posted" if posted else "duplicate"
