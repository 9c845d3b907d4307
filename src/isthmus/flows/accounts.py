"""Registration -> patient account: ADT and BAR events kept as account state.

The same MRN under the same assigning authority is the same account (`PatientRef.key`).
Each account gets an opaque token, an HMAC of its key, which is all the ledger and the ERP
ever see of a patient. A merge (ADT^A40) points the merged account at the survivor, moves
its charges, encounters and billing accounts, and reclassifies its A/R balance to the
survivor's token with one balanced journal entry. A delete (A29) of a person with an A/R
balance becomes a work item (`delete_person`). The account and visit moves and identifier
changes (A41..A51) are `flows.merges`.
"""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal

from isthmus.flows.decision import Decision, apply, hold
from isthmus.flows.outcome import APPLIED, Outcome
from isthmus.ledger.errors import ClosedPeriod
from isthmus.ledger.periods import FiscalCalendar, PeriodAssignment, first_day, period_of
from isthmus.ledger.rules import merge_reclass_entry
from isthmus.model import (
    AccountsMerged,
    BillingAccountOpened,
    EncounterDischarged,
    EncounterStarted,
    PatientRef,
    PatientRegistered,
)
from isthmus.model.envelope import Envelope
from isthmus.model.events import PatientDeleted
from isthmus.store.ports import Patient, Tx


def account_token(secret: str, key: str) -> str:
    """Opaque, stable, non-reversible account token: PA- + 16 hex of HMAC-SHA256."""
    return "PA-" + hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()[:16]


def live_token(tx: Tx, secret: str, patient_key: str) -> str:
    """The A/R token of the live account for a patient key, following merges."""
    seen: set[str] = set()
    key = patient_key
    while True:
        p = tx.get_patient(key)
        if p is None:
            return account_token(secret, key)
        if not p.merged_into or p.merged_into in seen:
            return p.token
        seen.add(key)
        key = p.merged_into


def resolve(tx: Tx, secret: str, ref: PatientRef) -> Patient:
    """The live account for a patient reference, following merges; created if unknown."""
    seen: set[str] = set()
    key = ref.key
    while True:
        p = tx.get_patient(key)
        if p is None:
            p = Patient(
                key=key, mrn=ref.mrn, authority=ref.authority, token=account_token(secret, key)
            )
            tx.put_patient(p)
            return p
        if not p.merged_into or p.merged_into in seen:
            return p
        seen.add(key)
        key = p.merged_into


def register(tx: Tx, secret: str, ev: PatientRegistered) -> None:
    """Keep a registered patient's demographics (PID-5, PID-7, PID-8), keeping stored values
    the event leaves empty."""
    current = resolve(tx, secret, ev.patient)
    tx.put_patient(
        Patient(
            key=current.key,
            mrn=current.mrn,
            authority=current.authority,
            token=current.token,
            family_name=ev.family_name or current.family_name,
            given_name=ev.given_name or current.given_name,
            birth_date=ev.birth_date or current.birth_date,
            sex=ev.sex or current.sex,
            merged_into=current.merged_into,
        )
    )


def encounter(tx: Tx, secret: str, ev: EncounterStarted | EncounterDischarged, at: str) -> None:
    """Record a visit (PV1-19) under its patient: active when it starts, discharged when it ends."""
    p = resolve(tx, secret, ev.patient)
    if isinstance(ev, EncounterStarted):
        tx.put_encounter(ev.visit_number, p.key, ev.facility, ev.patient_class, "active", at)
    else:
        tx.put_encounter(ev.visit_number, p.key, ev.facility, "", "discharged", at)


def billing_account(tx: Tx, secret: str, ev: BillingAccountOpened) -> None:
    """Record a billing account (PID-18) under its patient and facility."""
    p = resolve(tx, secret, ev.patient)
    tx.put_billing_account(ev.account_number, p.key, ev.facility)


def merge(
    tx: Tx,
    secret: str,
    env: Envelope,
    ev: AccountsMerged,
    *,
    ar_account: str,
    calendar: FiscalCalendar,
    patient_ar: str = "",
) -> None:
    """ADT A40 (module docstring); `patient_ar`, when given, is a second receivable account
    whose balance on the merged token moves too (835 patient responsibility)."""
    survivor = resolve(tx, secret, ev.survivor)
    merged = tx.get_patient(ev.merged.key)
    if merged is None:
        merged = resolve(tx, secret, ev.merged)
    if merged.key == survivor.key:
        return
    tx.put_patient(
        Patient(
            key=merged.key,
            mrn=merged.mrn,
            authority=merged.authority,
            token=merged.token,
            family_name=merged.family_name,
            given_name=merged.given_name,
            birth_date=merged.birth_date,
            sex=merged.sex,
            merged_into=survivor.key,
        )
    )
    tx.merge_patient(merged.key, survivor.key)
    try:
        where = calendar.assign(env.occurred_at.date())
    except ClosedPeriod:  # an A/R move between tokens goes to the next open month
        period = calendar.next_open(period_of(env.occurred_at.date()))
        where = PeriodAssignment(
            period=period, posted_on=first_day(period), moved_from=period_of(env.occurred_at.date())
        )
    for account in dict.fromkeys(a for a in (ar_account, patient_ar) if a):
        by_company: dict[str, dict[str, Decimal]] = {}
        for (company, currency), amount in tx.ar_balances(account, merged.token).items():
            by_company.setdefault(company, {})[currency] = amount
        for company, balances in sorted(by_company.items()):
            suffix = "" if account == ar_account else f"/{account}"
            entry = merge_reclass_entry(
                balances,
                from_token=merged.token,
                to_token=survivor.token,
                ar_account=account,
                company=company,
                entry_key=f"{env.event_id}/reclass/{company}{suffix}",
                posted_on=where.posted_on,
                period=where.period,
                channel=env.source.channel,
                correlation_id=env.correlation_id,
                causation_id=env.event_id,
                moved_from=where.moved_from,
            )
            if entry is not None:
                tx.insert_entry(entry)


PATIENT_ACCOUNTING = "patient-accounting"


def has_activity(tx: Tx, secret: str, ev: PatientDeleted, *, ar_account: str) -> bool:
    """Whether the person ADT A29 deletes has financial activity: any A/R posting on the
    live account, even settled to zero (the fact `decide_delete` needs)."""
    if tx.get_patient(ev.patient.key) is None:
        return False
    return bool(tx.ar_balances(ar_account, resolve(tx, secret, ev.patient).token))


def decide_delete(env: Envelope, active: bool) -> Decision:
    """ADT A29: a person with financial activity is never deleted: the message waits in a
    `person_delete_refused` work item. Without activity there is nothing financial to
    remove: the patient row stays."""
    if not active:
        return Decision(APPLIED)
    return hold(
        env,
        kind="person_delete_refused",
        queue=PATIENT_ACCOUNTING,
        detail="ADT^A29 deletes a person whose account has postings: not deleted; "
        "merge or settle the account first, then resolve",
    )


def delete_person(
    tx: Tx, secret: str, env: Envelope, ev: PatientDeleted, *, ar_account: str, now: float
) -> Outcome:
    """ADT A29 (`decide_delete`), written at `now`."""
    return apply(tx, decide_delete(env, has_activity(tx, secret, ev, ar_account=ar_account)), now)
