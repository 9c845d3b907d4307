"""The settlement decisions without a store (issue 17): facts in, a `Decision` out.

`SettlementFlow.decide` reads nothing: what the store knows comes in as `Facts`, and what
is to be written comes out as data, so each rule of `flows.settlement` is checked here on
values. `flows.decision.apply` writes them (tests/flows/test_decision.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from isthmus.config import SettlementPolicy
from isthmus.demo.chart import demo_mappings
from isthmus.flows.decision import FacilityHold, Resolve
from isthmus.flows.outcome import APPLIED, POSTED, Held
from isthmus.flows.settlement import (
    BANK,
    EFT,
    PROCESSOR,
    Facts,
    MatchDeposits,
    RecordDeposit,
    SettlementFlow,
    counterpart,
    deposit_of,
)
from isthmus.ledger.periods import FiscalCalendar
from isthmus.model import BankDeposited, PatientPaymentSettled, ProcessorDeposited, RemittancePaid
from isthmus.model.envelope import Envelope, Source
from isthmus.model.events import Event
from isthmus.store.ports import BillingAccount, DepositRecord

AT = datetime(2026, 11, 3, 9, tzinfo=UTC)
FLOW = SettlementFlow("s", demo_mappings(), SettlementPolicy(), FiscalCalendar(), "1200")
D = Decimal


def env(payload: Event, event_id: str = "e1") -> Envelope:
    return Envelope(
        event_id=event_id,
        type=type(payload).__name__,
        occurred_at=AT,
        recorded_at=AT,
        source=Source("settlement", "f1", "m1"),
        correlation_id="settlement/f1",
        causation_id="m1",
        key="k",
        payload=payload,
    )


def card(gross: str = "40.00") -> PatientPaymentSettled:
    return PatientPaymentSettled(
        processor="stripe",
        deposit_id="PO-1",
        transaction_id="T1",
        kind="payment",
        account_number="A100",
        transaction_date=date(2026, 11, 2),
        deposit_date=date(2026, 11, 3),
        gross=D(gross),
        fee=D("1.20"),
        net=D(gross) - D("1.20"),
    )


def record(event_id: str, side: str, amount: str, reference: str = "REF-9") -> DepositRecord:
    return DepositRecord(event_id, side, reference, D(amount), "USD", date(2026, 11, 3), "x", "c")


ACCOUNT = BillingAccount("A100", "urn:oid:1|MRN-1", "MAIN")


def test_a_card_payment_to_an_unknown_account_is_held_as_unapplied_cash() -> None:
    d = FLOW.decide(env(card()), Facts())
    assert d.outcome == Held("cash-posting", d.open[0].detail)
    [item] = d.open
    assert (item.kind, item.queue, item.event_id) == ("unapplied_cash", "cash-posting", "e1")
    assert "A100" in item.detail and item.envelope  # the event is kept for a resubmit
    assert d.entries == () and d.claim is None and d.resolve == ()


def test_a_card_payment_whose_facility_has_no_company_waits_behind_its_mapping() -> None:
    e = env(card())
    d = FLOW.decide(e, Facts(ACCOUNT))
    assert d.outcome.label == "held" and d.open == () and d.entries == ()
    assert d.writes == (FacilityHold(e, "MAIN", D("40.00"), "USD"),)


def test_a_card_payment_posts_clearing_against_the_patients_receivable() -> None:
    d = FLOW.decide(env(card()), Facts(ACCOUNT, "C100", "PA-1"))
    [entry] = d.entries
    assert d.outcome is POSTED
    lines = {(ln.account, ln.debit, ln.credit, ln.dims.account_token) for ln in entry.lines}
    assert lines == {("1020", D("40.00"), D(0), ""), ("1200", D(0), D("40.00"), "PA-1")}
    assert entry.entry_key == "e1" and entry.period == "2026-11"
    assert d.resolve == (Resolve("e1", "posted after the fix", "e1"),)


def test_a_card_payment_in_a_closed_period_is_held_for_finance() -> None:
    closed = SettlementFlow(
        "s",
        demo_mappings(),
        SettlementPolicy(),
        FiscalCalendar(closed=frozenset({"2026-11"}), policy="reject"),
    )
    d = closed.decide(env(card()), Facts(ACCOUNT, "C100", "PA-1"))
    assert [(w.kind, w.queue) for w in d.open] == [("closed_period", "finance-close")]
    assert d.entries == ()


def test_a_processor_deposit_is_recorded_matched_to_its_bank_credit_and_posted() -> None:
    ev = ProcessorDeposited(
        processor="stripe",
        deposit_id=" po-1 ",
        deposit_date=date(2026, 11, 3),
        gross=D("100.00"),
        fee=D("3.00"),
        net=D("97.00"),
        transactions=2,
    )
    bank = record("b1", BANK, "97.00", "PO-1")
    d = FLOW.decide(env(ev, "p1"), Facts(counterpart=bank))
    assert isinstance(d.claim, RecordDeposit)
    assert (d.claim.record.side, d.claim.record.reference) == (PROCESSOR, "PO-1")
    assert d.writes == (MatchDeposits("p1", "b1", ""),)
    [entry] = d.entries
    assert d.outcome is POSTED and sum(ln.debit for ln in entry.lines) == D("100.00")


def test_a_bank_credit_matching_an_835_payment_posts_the_bank_side() -> None:
    ev = BankDeposited(deposit_date=date(2026, 11, 4), amount=D("250.00"), reference="trn-7")
    eft = record("r1", EFT, "250.00", "TRN-7")
    d = FLOW.decide(env(ev, "b2"), Facts(counterpart=eft))
    [entry] = d.entries
    assert entry.entry_key == "b2/match"
    assert d.writes == (MatchDeposits("b2", "r1", "b2/match"),)
    assert {(ln.account, ln.debit) for ln in entry.lines} == {("1050", D("250.00")), ("1010", D(0))}


def test_a_bank_credit_matching_a_processor_payout_posts_nothing_more() -> None:
    ev = BankDeposited(deposit_date=date(2026, 11, 4), amount=D("97.00"), reference="PO-1")
    d = FLOW.decide(env(ev, "b3"), Facts(counterpart=record("p1", PROCESSOR, "97.00", "PO-1")))
    assert d.outcome is APPLIED and d.entries == ()
    assert d.writes == (MatchDeposits("b3", "p1", ""),)
    assert d.resolve == (Resolve("b3", "recorded"),)


def test_an_unmatched_835_payment_is_only_recorded() -> None:
    ev = RemittancePaid(
        payer_id="P1", trace_number="TRN-8", payment_method="ACH", amount=D("10.00")
    )
    d = FLOW.decide(env(ev, "r2"), Facts())
    assert d.outcome is APPLIED and d.entries == () and d.writes == ()
    assert isinstance(d.claim, RecordDeposit) and d.claim.record.on_date == AT.date()
    assert d.resolve == (Resolve("r2", "recorded"),)


def test_the_counterpart_is_the_oldest_open_record_of_the_other_side_with_that_amount() -> None:
    mine = deposit_of(
        env(BankDeposited(deposit_date=date(2026, 11, 4), amount=D("5.00"), reference="R"), "me")
    )
    assert mine is not None
    candidates = [
        record("me", BANK, "5.00"),
        record("b0", BANK, "5.00"),
        record("e0", EFT, "6.00"),
        record("e1", EFT, "5.00"),
        record("p1", PROCESSOR, "5.00"),
    ]
    assert counterpart(candidates, mine) == candidates[3]
    assert counterpart(candidates[:3], mine) is None
