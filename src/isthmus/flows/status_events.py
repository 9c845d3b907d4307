"""Status events from what a flow applied (issue 18): the worker's applied event and its
outcome in, the `model.status` events a route may send back out.

Pure but for the balance read of `AccountBalanceChanged` (the account's A/R as this same
transaction sees it, right after the posting). Only what was really applied speaks: a
duplicate, a conflict or a hold says nothing, except a denial, which is news while its
work item waits. The worker calls this only when at least one route exists
(flows/routes.py), so a hub without routes pays nothing on its hot path.

Each status event keeps the bus key of its cause (the account, claim or requisition), so
a destination gets them in the order the hub applied them, per key; `event_id` is the
source event's id (lineage), and an `account_token` stands in for the patient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from isthmus.config import TRANSACTION_TYPES
from isthmus.flows.accounts import live_token
from isthmus.flows.denial_codes import is_denial
from isthmus.ledger.currency import quantize
from isthmus.model.envelope import Envelope
from isthmus.model.events import (
    Charge,
    ClaimRemitted,
    PatientPaymentSettled,
    PatientRef,
    ShiftWorked,
    SupplyRequested,
)
from isthmus.model.status import (
    ACCOUNT_BALANCE_CHANGED,
    ADJUSTMENT_POSTED,
    CHARGE_POSTED,
    CLAIM_DENIED,
    INVOICE_MATCHED,
    PAYMENT_POSTED,
    PAYROLL_ACCRUED,
    REQUISITION_SENT,
    StatusEvent,
)
from isthmus.store.ports import Tx

POSTED = frozenset({"posted", "applied"})
_KIND_EVENT = {
    "charge": CHARGE_POSTED,
    "credit": CHARGE_POSTED,
    "payment": PAYMENT_POSTED,
    "adjustment": ADJUSTMENT_POSTED,
}
_FT1_CODE = {CHARGE_POSTED: "CG", PAYMENT_POSTED: "PY", ADJUSTMENT_POSTED: "AJ"}


@dataclass(frozen=True)
class Derivation:
    """What deriving needs of the site: the token secret, the A/R account, the FT1 kinds."""

    secret: str
    ar_account: str = "1200"
    transaction_types: dict[str, str] = field(default_factory=lambda: dict(TRANSACTION_TYPES))


def derive(tx: Tx, env: Envelope, outcome: str, how: Derivation) -> list[StatusEvent]:
    """The status events for what a flow did with an envelope: a denied 835 claim payment
    posted or held; once posted, a charge, a payment, a requisition or a worked shift; none
    otherwise."""
    ev = env.payload
    if isinstance(ev, ClaimRemitted) and is_denial(ev) and outcome in ("posted", "held"):
        return [
            _event(
                env,
                CLAIM_DENIED,
                {
                    "payer_id": ev.payer_id,
                    "payer_claim_control_number": ev.payer_claim_control_number,
                    "patient_control_number": ev.patient_control_number,
                    "claim_status": ev.claim_status,
                    "charge": StatusEvent.amount(ev.charge),
                    "paid": StatusEvent.amount(ev.paid),
                    "currency": ev.currency,
                    "reasons": " ".join(f"{a.group}-{a.reason}" for a in ev.adjustments),
                },
            )
        ]
    if outcome not in POSTED:
        return []
    if isinstance(ev, Charge):
        kind = how.transaction_types.get(ev.transaction_type, "")
        kind_event = _KIND_EVENT.get(kind)
        if kind_event is None:
            return []
        fields = {
            "transaction_id": ev.transaction_id,
            "transaction_type": ev.transaction_type,
            "ft1_type": "CD" if kind == "credit" else _FT1_CODE[kind_event],
            "charge_code": ev.charge_code,
            "quantity": str(ev.quantity),
            "amount": StatusEvent.amount(ev.amount.amount),
            "currency": ev.amount.currency,
            "department": ev.department,
            "facility": ev.facility,
            "service_date": ev.service_date.isoformat(),
            **_patient(tx, how, ev.patient),
            "account_number": ev.account_number,
            "visit_number": ev.visit_number,
        }
        out = [_event(env, kind_event, fields)]
        return out + _balance(
            tx, env, how, ev.patient, ev.account_number, ev.facility, ev.amount.currency
        )
    if isinstance(ev, ClaimRemitted) and ev.paid:
        return [
            _event(
                env,
                PAYMENT_POSTED,
                {
                    "payer_id": ev.payer_id,
                    "trace_number": ev.trace_number,
                    "payment_method": ev.payment_method,
                    "amount": StatusEvent.amount(ev.paid),
                    "currency": ev.currency,
                    "ft1_type": "PY",
                    "payer_claim_control_number": ev.payer_claim_control_number,
                    "patient_control_number": ev.patient_control_number,
                    "account_number": ev.patient_control_number,
                    "payment_date": ev.payment_date.isoformat() if ev.payment_date else "",
                },
            )
        ]
    if isinstance(ev, PatientPaymentSettled) and ev.kind == "payment":
        return [
            _event(
                env,
                PAYMENT_POSTED,
                {
                    "processor": ev.processor,
                    "transaction_id": ev.transaction_id,
                    "amount": StatusEvent.amount(ev.gross),
                    "currency": ev.currency,
                    "ft1_type": "PY",
                    "account_number": ev.account_number,
                    "payment_date": ev.transaction_date.isoformat(),
                },
            )
        ]
    if isinstance(ev, SupplyRequested):
        return [
            _event(
                env,
                REQUISITION_SENT,
                {
                    "request_id": ev.request_id,
                    "item": ev.item,
                    "location": ev.location,
                    "quantity": StatusEvent.amount(ev.quantity),
                    "department": ev.department,
                    "requested_on": ev.requested_on.isoformat(),
                },
            )
        ]
    if isinstance(ev, ShiftWorked):
        hours = ev.regular_hours + ev.overtime_hours + ev.differential_hours + ev.on_call_hours
        return [
            _event(
                env,
                PAYROLL_ACCRUED,
                {
                    "shift_id": ev.shift_id,
                    "employee_id": ev.employee_id,
                    "department": ev.department,
                    "work_date": ev.work_date.isoformat(),
                    "hours": StatusEvent.amount(hours),
                    "overtime_hours": StatusEvent.amount(ev.overtime_hours),
                },
            )
        ]
    return []


def invoice_matched(
    *,
    invoice_id: str,
    po: str,
    line: str,
    supplier: str,
    quantity: Decimal,
    unit_price: Decimal,
    order_price: Decimal,
    currency: str,
    invoiced_on: date,
    channel: str,
    at: float,
) -> StatusEvent:
    """A supplier invoice line that passed the three-way match (flows/supply.py decides it
    outside any applied event: the ERP's invoices come in through a sync). Keyed by the
    purchase order, so its lines' events keep their order; nothing about a patient."""
    variance = quantize((unit_price - order_price) * quantity, currency)
    return StatusEvent(
        type=INVOICE_MATCHED,
        key=po,
        event_id=f"supply/invoice/{invoice_id}",
        occurred_at=datetime.fromtimestamp(at, UTC),
        channel=channel,
        fields={
            "invoice_id": invoice_id,
            "po": po,
            "line": line,
            "supplier": supplier,
            "quantity": StatusEvent.amount(quantity),
            "unit_price": StatusEvent.amount(unit_price),
            "amount": StatusEvent.amount(quantize(quantity * unit_price, currency)),
            "currency": currency,
            "price_variance": StatusEvent.amount(variance),
            "match": "matched" if not variance else "matched_within_tolerance",
            "invoiced_on": invoiced_on.isoformat(),
        },
    )


def _event(env: Envelope, kind: str, fields: dict[str, str]) -> StatusEvent:
    return StatusEvent(
        type=kind,
        key=env.key,
        event_id=env.event_id,
        occurred_at=env.occurred_at,
        fields=fields,
        channel=env.source.channel,
    )


def _patient(tx: Tx, how: Derivation, patient: PatientRef) -> dict[str, str]:
    return {
        "account_token": live_token(tx, how.secret, patient.key),
        "mrn": patient.mrn,
        "assigning_authority": patient.authority,
    }


def _balance(
    tx: Tx,
    env: Envelope,
    how: Derivation,
    patient: PatientRef,
    account: str,
    facility: str,
    currency: str,
) -> list[StatusEvent]:
    token = live_token(tx, how.secret, patient.key)
    balances = tx.ar_balances(how.ar_account, token)
    balance = sum((v for (_, cur), v in balances.items() if cur == currency), Decimal(0))
    return [
        StatusEvent(
            type=ACCOUNT_BALANCE_CHANGED,
            key=env.key,
            event_id=env.event_id,
            occurred_at=env.occurred_at,
            channel=env.source.channel,
            fields={
                "account_token": token,
                "balance": StatusEvent.amount(balance),
                "currency": currency,
                "facility": facility,
                "account_number": account,
                "mrn": patient.mrn,
                "assigning_authority": patient.authority,
            },
        )
    ]
