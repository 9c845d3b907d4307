"""Builders for the refund tests: a hub-less refund service over a store and an audit log,
an account with a credit balance, and the actors of segregation of duties."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from isthmus.demo.chart import demo_mappings
from isthmus.flows.accounts import account_token
from isthmus.flows.refund_request import Actor, RefundPolicy
from isthmus.flows.refunds import Refunds
from isthmus.governance import rbac
from isthmus.governance.audit import AuditLog
from isthmus.ledger.journal import Dimensions, JournalEntry, cr, dr
from isthmus.ledger.periods import FiscalCalendar
from isthmus.store.ports import Patient, Store

SECRET = "refund-tests"
AR, PAYABLE, REVENUE = "1200", "2100", "4100"
NOW = 1_790_000_000.0  # 2026-09-21
ALICE = Actor("alice", frozenset({rbac.REVENUE}))  # asks
BOB = Actor("bob", frozenset({rbac.FINANCE}))  # approves
CAROL = Actor("carol", frozenset({rbac.FINANCE}))  # approves too
ROOT = Actor("root", frozenset({rbac.ADMIN}))  # may ask and approve
VIEWER = Actor("vic", frozenset({rbac.READ_ONLY}))


def policy(
    threshold: str = "500.00",
    closed: frozenset[str] = frozenset(),
    closed_policy: str = "next_open",
) -> RefundPolicy:
    return RefundPolicy(
        approval_threshold=Decimal(threshold),
        ar_account=AR,
        refunds_payable_account=PAYABLE,
        calendar=FiscalCalendar(closed=closed, policy=closed_policy),  # type: ignore[arg-type]
        mappings=demo_mappings(),
        secret=SECRET,
    )


def desk(store: Store, log: AuditLog, threshold: str = "500.00", **kw: object) -> Refunds:
    return Refunds(store, log, policy(threshold, **kw), clock=lambda: NOW)  # type: ignore[arg-type]


def open_account(
    store: Store, number: str = "A100", mrn: str = "M1", facility: str = "NORTH"
) -> str:
    """A billing account and its patient; returns the A/R token."""
    key = f"NORTHMRN|{mrn}"
    token = account_token(SECRET, key)
    with store.transaction() as tx:
        tx.put_patient(Patient(key=key, mrn=mrn, authority="NORTHMRN", token=token))
        tx.put_billing_account(number, key, facility)
    return token


def move_ar(
    store: Store, token: str, amount: str, *, key: str, company: str = "C100", currency: str = "USD"
) -> None:
    """Post A/R for a token: negative `amount` credits A/R (a credit balance grows)."""
    value = Decimal(amount)
    ar = Dimensions(company=company, account_token=token)
    rev = Dimensions(company=company, cost_center="CC-4100", service_line="Imaging")
    lines = (
        (dr(AR, value, currency, ar), cr(REVENUE, value, currency, rev))
        if value > 0
        else (dr(REVENUE, -value, currency, rev), cr(AR, -value, currency, ar))
    )
    with store.transaction() as tx:
        assert tx.insert_entry(
            JournalEntry(
                entry_key=key,
                posted_on=date(2026, 9, 1),
                period="2026-09",
                channel="mllp",
                memo="test",
                lines=lines,
                correlation_id=f"mllp/{key}",
                causation_id=key,
            )
        )


def ar_balance(store: Store, token: str, company: str = "C100", currency: str = "USD") -> Decimal:
    with store.transaction() as tx:
        return tx.ar_balances(AR, token).get((company, currency), Decimal(0))
