"""One FT1 line (DFT^P03 / P11) -> the posting its transaction type calls for.

FT1-6 (HL7 table 0017: CG charge, CD credit, PY payment, AJ adjustment, or a site's own
code) is mapped by `[mappings.transaction_types]` to charge, credit, payment or adjustment.
Before any posting:
- a type with no mapping holds the line with an `unmapped_transaction_type` work item;
- a line to a billing account that BAR P06 ended or P02 purged is held with a
  `charge_to_closed_account` work item (`flows.account_state.closed_status`);
- a line with no department (FT1-13) takes the department of the location the visit was in
  on the service date (ADT A02/A12/A17, `flows.visits.department_at`), so charges after a
  transfer land on the new cost center; an FT1-13 department always wins.
Charges and credits are `flows.charges.post_charge`; payments and adjustments post against
the patient's A/R with `ledger.ft1.balance_entry` (cash clearing and other adjustments
accounts of the remittance chart), their facility's company found, or held behind that
facility's one mapping item, as the remittance flow does (`flows.mapping_holds`,
`flows.posting`). A charge from a FHIR Claim item notes, under its claim's key, that it
posted or which mapping item it waits behind, so the claim's EOB applies, or waits behind
that same item (`flows.remittance`).
"""

from __future__ import annotations

from msgspec.structs import replace

from isthmus.config import Mappings
from isthmus.flows import account_state, mapping_holds, posting, visits
from isthmus.flows.accounts import resolve
from isthmus.flows.charges import Missing, lookup, post_charge
from isthmus.formats.hl7v2 import code_display
from isthmus.ledger.errors import ClosedPeriod, LedgerRefusal
from isthmus.ledger.ft1 import balance_entry
from isthmus.ledger.periods import FiscalCalendar
from isthmus.ledger.remit import RemitAccounts
from isthmus.model import Charge
from isthmus.model.envelope import Envelope
from isthmus.store.ports import Tx

CLAIM_ITEM = "Claim/"  # a charge from a FHIR Claim item (formats.fhir.claim_charges)
QUEUES = {
    "unmapped_transaction_type": "finance-master-data",
    "charge_to_closed_account": "patient-accounting",
    "closed_period": "finance-close",
    "unpostable_charge": "revenue-integrity",
}


def _hold(tx: Tx, env: Envelope, kind: str, detail: str, now: float) -> str:
    return posting.hold(tx, env, kind=kind, queue=QUEUES[kind], detail=detail, now=now)


def post_line(
    tx: Tx,
    env: Envelope,
    line: Charge,
    *,
    secret: str,
    maps: Mappings,
    accounts: RemitAccounts,
    calendar: FiscalCalendar,
    now: float,
) -> str:
    """Post one FT1 line (module docstring): "posted", "duplicate" or "held"."""
    kind = maps.transaction_types.get(line.transaction_type)
    if kind is None:
        return _hold(
            tx,
            env,
            "unmapped_transaction_type",
            "FT1-6 transaction type "
            f"{code_display.shown('transaction_types', line.transaction_type)!r} "
            "has no posting kind: add it to [mappings.transaction_types]",
            now,
        )
    closed = account_state.closed_status(tx, line.account_number)
    if closed:
        return _hold(
            tx,
            env,
            "charge_to_closed_account",
            f"FT1 {line.transaction_type} {line.transaction_id} to a billing account "
            f"{closed} by BAR^{'P02' if closed == 'purged' else 'P06'}: reopen it "
            "(BAR P01/P05) and resubmit, or resolve",
            now,
        )
    if not line.department:
        department = visits.department_at(tx, line.visit_number, line.service_date)
        if department:
            line = replace(line, department=department)
    if kind in ("charge", "credit"):
        code = "CD" if kind == "credit" or line.negative else "CG"
        if code != line.transaction_type:
            line = replace(line, transaction_type=code)
        outcome = post_charge(
            tx,
            env,
            line,
            secret=secret,
            maps=maps,
            ar_account=accounts.ar,
            calendar=calendar,
            now=now,
        )
        if outcome == "posted":
            if line.transaction_id.startswith(CLAIM_ITEM):  # its EOB may apply now
                mapping_holds.note_claim_charged(tx, env.key)
        elif outcome == "held" and line.transaction_id.startswith(CLAIM_ITEM):
            missing = lookup(tx, maps, line)  # its EOB waits behind the same item
            if isinstance(missing, Missing):
                mapping_holds.note_claim_hold(
                    tx, env.key, mapping_holds.ref_of(missing.table, missing.code)
                )
        return outcome
    return _post_balance(
        tx,
        env,
        line,
        "payment" if kind == "payment" else "adjustment",
        secret=secret,
        maps=maps,
        accounts=accounts,
        calendar=calendar,
        now=now,
    )


def _post_balance(
    tx: Tx,
    env: Envelope,
    line: Charge,
    kind: str,
    *,
    secret: str,
    maps: Mappings,
    accounts: RemitAccounts,
    calendar: FiscalCalendar,
    now: float,
) -> str:
    company = mapping_holds.company(tx, maps, line.facility)
    if not company:
        return mapping_holds.hold_facility(
            tx,
            env,
            line.facility,
            amount=line.amount.amount,
            currency=line.amount.currency,
            now=now,
        )
    patient = resolve(tx, secret, line.patient)
    try:
        where = calendar.assign(line.service_date)
        entry = balance_entry(
            "payment" if kind == "payment" else "adjustment",
            line.amount,
            raises=not line.negative,
            ar_account=accounts.ar,
            counter_account=accounts.cash_clearing
            if kind == "payment"
            else accounts.other_adjustments,
            company=company,
            account_token=patient.token,
            entry_key=env.event_id,
            posted_on=where.posted_on,
            period=where.period,
            channel=env.source.channel,
            memo=f"{line.transaction_type} {kind} txn {line.transaction_id}",
            correlation_id=env.correlation_id,
            causation_id=env.event_id,
            moved_from=where.moved_from,
        )
    except ClosedPeriod as exc:
        return _hold(tx, env, "closed_period", str(exc), now)
    except LedgerRefusal as exc:
        return _hold(tx, env, "unpostable_charge", str(exc), now)
    return posting.post(tx, env, entry, now)
