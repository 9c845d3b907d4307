"""Builders of the store contract's records: real postings (the ledger's own rules),
messages, patients and work items, shared by every aggregate's contract suite."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from isthmus.ledger.batch import JournalBatch, build_batch
from isthmus.ledger.journal import JournalEntry
from isthmus.ledger.periods import period_of
from isthmus.ledger.rules import charge_entry
from isthmus.model import Charge, Money, PatientRef
from isthmus.store.ports import (
    ChargeRecord,
    Inbound,
    Patient,
    Store,
    StoredMessage,
)

AR, REVENUE = "1200", "4000"


class Boom(Exception):
    """A failing step inside a unit of work."""


# --- builders ------------------------------------------------------------------------------


def inbound(
    control_id: str,
    *,
    channel: str = "adt",
    status: str = "accepted",
    ack_code: str = "AA",
    error: str = "",
    events: bytes = b'[{"e":1}]',
    received_at: float = 100.0,
    raw: bytes | None = None,
    message_type: str = "ADT^A01",
) -> Inbound:
    return Inbound(
        channel=channel,
        control_id=control_id,
        raw=raw if raw is not None else f"MSH|{control_id}".encode(),
        received_at=received_at,
        peer="10.0.0.7:4411",
        message_type=message_type,
        status=status,
        ack_code=ack_code,
        error=error,
        events=events,
    )


def entry(
    key: str,
    *,
    amount: str = "125.50",
    currency: str = "USD",
    token: str = "PA-1",
    company: str = "C1",
    channel: str = "dft",
    corr: str = "corr-1",
    kind: str = "CG",
    posted_on: date = date(2024, 3, 5),
    moved_from: str | None = None,
) -> JournalEntry:
    """A real posting, made by the ledger's own charge rule: DR A/R / CR revenue (CG)."""
    charge = Charge(
        patient=PatientRef("MRN1", "HOSP"),
        transaction_id=key,
        transaction_type=kind,
        quantity=1,
        amount=Money(Decimal(amount), currency),
        charge_code="99213",
        department="CARD",
        facility="F1",
        service_date=posted_on,
    )
    return charge_entry(
        charge,
        entry_key=key,
        ar_account=AR,
        revenue_account=REVENUE,
        service_line="CARDIO",
        cost_center="CC10",
        company=company,
        account_token=token,
        period=period_of(posted_on),
        posted_on=posted_on,
        channel=channel,
        correlation_id=corr,
        causation_id=f"ev-{key}",
        moved_from=moved_from,
    )


def charge_record(
    event_id: str, patient_key: str = "HOSP|1", amount: str = "10.00"
) -> ChargeRecord:
    return ChargeRecord(
        event_id=event_id,
        patient_key=patient_key,
        account_token="PA-1",
        transaction_id=f"T-{event_id}",
        transaction_type="CG",
        charge_code="99213",
        amount=Decimal(amount),
        currency="USD",
        service_date=date(2024, 3, 5),
        entry_key=f"E-{event_id}",
    )


def patient(key: str, **kw: str) -> Patient:
    authority, mrn = key.split("|")
    return Patient(key=key, mrn=mrn, authority=authority, token=f"PA-{mrn}", **kw)


def message_ids(messages: Sequence[StoredMessage]) -> list[int]:
    return [m.id for m in messages]


def post(store: Store, *entries: JournalEntry) -> list[bool]:
    with store.transaction() as tx:
        return [tx.insert_entry(e) for e in entries]


def work(
    store: Store,
    event_id: str,
    *,
    kind: str = "unmapped_code",
    corr: str = "corr-1",
    detail: str = "code 99999 unmapped",
    now: float = 10.0,
) -> int | None:
    with store.transaction() as tx:
        return tx.add_work_item(
            kind=kind,
            queue="charge-master",
            key="acct-1",
            event_id=event_id,
            correlation_id=corr,
            detail=detail,
            envelope=f"env-{event_id}".encode(),
            now=now,
        )


def detailed(batch_id: str, entries: Sequence[JournalEntry], channel: str = "dft") -> JournalBatch:
    return build_batch(batch_id, entries, policy="detailed", channel=channel)


FILES = [("erp", "csv", b"csv body"), ("erp", "jsonl", b"jsonl body")]


# --- the suite -----------------------------------------------------------------------------
