"""The 835 PLB and 837 register decisions without a store (issue 17), and their writing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from isthmus.flows.decision import PayeeHold, Resolve, apply
from isthmus.flows.outcome import APPLIED, DUPLICATE, HELD, POSTED
from isthmus.flows.remittance import RecordClaim, decide_claim, decide_provider_adjustment
from isthmus.ledger.periods import FiscalCalendar
from isthmus.ledger.remit import RemitAccounts
from isthmus.model import ClaimSubmitted, ProviderAdjusted
from isthmus.model.envelope import Envelope, Source
from isthmus.model.events import Event
from isthmus.store.memory import MemoryStore

AT = datetime(2026, 4, 2, tzinfo=UTC)
NOW = 1_800_000_000.0
D = Decimal


def env(payload: Event, event_id: str = "r1") -> Envelope:
    return Envelope(
        event_id=event_id,
        type=type(payload).__name__,
        occurred_at=AT,
        recorded_at=AT,
        source=Source("x12", "ISA1", "m1"),
        correlation_id="c",
        causation_id="m1",
        key="remit|T1",
        payload=payload,
    )


PLB = ProviderAdjusted(
    payer_id="P1",
    payee_npi="1234567893",
    payee_tin="",
    provider_id="",
    trace_number="T1",
    payment_date=date(2026, 4, 1),
    reason="L6",
    amount=D("-12.00"),
)


def test_a_plb_whose_payee_has_no_company_waits_behind_the_payee() -> None:
    d = decide_provider_adjustment(
        env(PLB), PLB, "", accounts=RemitAccounts(), calendar=FiscalCalendar()
    )
    assert d.outcome is HELD and d.entries == () and d.open == ()
    assert d.writes == (PayeeHold(env(PLB), "1234567893", D("-12.00"), "USD"),)


def test_a_plb_posts_against_cash_clearing_in_the_payees_company() -> None:
    d = decide_provider_adjustment(
        env(PLB), PLB, "C200", accounts=RemitAccounts(), calendar=FiscalCalendar()
    )
    [entry] = d.entries
    assert d.outcome is POSTED and entry.period == "2026-04"
    assert {ln.account for ln in entry.lines} == {"1010", "4920"}
    assert {ln.dims.company for ln in entry.lines} == {"C200"}
    assert d.resolve == (Resolve("r1", "posted after the fix", "r1"),)


def test_a_plb_in_a_closed_period_is_held_for_finance() -> None:
    d = decide_provider_adjustment(
        env(PLB),
        PLB,
        "C200",
        accounts=RemitAccounts(),
        calendar=FiscalCalendar(closed=frozenset({"2026-04"}), policy="reject"),
    )
    assert [(w.kind, w.queue) for w in d.open] == [("closed_period", "finance-close")]


def test_a_claim_is_registered_once_per_event() -> None:
    ev = ClaimSubmitted(patient_control_number="A100", payer_id="P1", total_charge=D("250.00"))
    d = decide_claim(env(ev, "c1"), ev)
    assert d.outcome is APPLIED and isinstance(d.claim, RecordClaim)
    assert (d.claim.claim.event_id, d.claim.claim.patient_control_number) == ("c1", "A100")
    store = MemoryStore()
    with store.transaction() as tx:
        assert apply(tx, d, NOW) is APPLIED
        assert apply(tx, d, NOW) is DUPLICATE
