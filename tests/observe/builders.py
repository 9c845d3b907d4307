"""Known data for the observe tests: envelopes, inbox messages, entries and batches built
by hand, so each test states the exact times and amounts its KPI is about."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

import msgspec

from isthmus.ledger.batch import build_batch
from isthmus.ledger.journal import JournalEntry
from isthmus.ledger.periods import period_of
from isthmus.ledger.rules import charge_entry
from isthmus.model.envelope import Envelope, Source, encode_envelope
from isthmus.model.events import Charge, ClaimRemitted, Event, PatientRef, RemitAdjustment
from isthmus.model.money import Money
from isthmus.store.ports import Inbound, Store

_enc = msgspec.json.Encoder(decimal_format="string")
NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
T = NOW.timestamp()
DAY = 86_400.0


def ts(d: date) -> float:
    return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()


def envelope(
    event_id: str, payload: Event, *, channel: str = "mllp", control: str = "C1"
) -> Envelope:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    return Envelope(
        event_id=event_id,
        type=type(payload).__name__,
        occurred_at=at,
        recorded_at=at,
        source=Source(channel, control, "1"),
        correlation_id=f"{channel}/{control}",
        causation_id=event_id,
        key="acct-1",
        payload=payload,
    )


def charge(amount: str, service: date = date(2026, 11, 1), currency: str = "USD") -> Charge:
    return Charge(
        patient=PatientRef("MRN1", "HOSP"),
        transaction_id="T1",
        transaction_type="CG",
        quantity=1,
        amount=Money(Decimal(amount), currency),
        charge_code="80053",
        department="LAB",
        facility="NORTH",
        service_date=service,
    )


def remit(
    paid: str,
    *,
    status: str = "1",
    carcs: Sequence[tuple[str, str, str]] = (),
    currency: str = "USD",
) -> ClaimRemitted:
    return ClaimRemitted(
        payer_id="P1",
        payer_name="PAYER",
        payee_npi="1",
        payee_tin="2",
        trace_number="TR1",
        payment_method="ACH",
        patient_control_number="A1",
        claim_status=status,
        charge=Decimal("100.00"),
        paid=Decimal(paid),
        adjustments=tuple(RemitAdjustment(g, r, Decimal(a)) for g, r, a in carcs),
        currency=currency,
    )


def receive(
    store: Store,
    control: str,
    envs: Sequence[Envelope],
    at: float,
    *,
    channel: str = "mllp",
    mtype: str = "DFT^P03",
) -> None:
    store.accept(
        [
            Inbound(
                channel=channel,
                control_id=control,
                raw=b"MSH|" + control.encode(),
                received_at=at,
                peer="127.0.0.1:1",
                message_type=mtype,
                status="accepted",
                ack_code="AA",
                error="",
                events=_enc.encode(list(envs)),
            )
        ]
    )


def reject(store: Store, control: str, at: float, channel: str = "mllp") -> None:
    store.accept(
        [
            Inbound(
                channel=channel,
                control_id=control,
                raw=b"garbage",
                received_at=at,
                peer="127.0.0.1:1",
                message_type="",
                status="rejected",
                ack_code="AR",
                error="not HL7",
                events=b"",
            )
        ]
    )


def entry(key: str, amount: str = "100.00", posted_on: date = date(2026, 11, 1)) -> JournalEntry:
    return charge_entry(
        charge(amount, posted_on),
        entry_key=key,
        ar_account="1200",
        revenue_account="4200",
        service_line="Laboratory",
        cost_center="CC-4200",
        company="C100",
        account_token="PA-1",
        period=period_of(posted_on),
        posted_on=posted_on,
        channel="mllp",
        correlation_id="mllp/C1",
        causation_id=key,
    )


def post_and_send(
    store: Store, batch_id: str, entries: Sequence[JournalEntry], sent_at: float | None
) -> None:
    """Post entries, seal them in one batch with two outbox files, and deliver both at
    `sent_at` (None: the batch stays pending)."""
    with store.transaction() as tx:
        for e in entries:
            tx.insert_entry(e)
    batch = build_batch(batch_id, entries, policy="detailed", channel="mllp")
    assert store.record_batch(
        batch, [("erp", "csv", b"c"), ("erp", "jsonl", b"j")], now=sent_at or T
    )
    if sent_at is None:
        return
    for item in store.outbox_items():
        if item.batch_id == batch_id:
            store.outbox_settle(item.id, status="sent", visible_at=sent_at)


def hold(store: Store, env: Envelope, *, kind: str, queue: str, created: float) -> None:
    with store.transaction() as tx:
        tx.add_work_item(
            kind=kind,
            queue=queue,
            key=env.key,
            event_id=env.event_id,
            correlation_id=env.correlation_id,
            detail=kind,
            envelope=encode_envelope(env),
            now=created,
        )
