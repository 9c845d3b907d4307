"""The 835 claim payment decided without a store (issue 17): `remittance.payment_facts`
reads, `decide_claim_payment` decides on what it read, and the tests below give it the
facts as a store would (an account of facility NORTH, company C100, a patient token)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import msgspec

from isthmus.flows.decision import Decision, Resolve
from isthmus.flows.mapping_holds import MappingHold
from isthmus.flows.outcome import HELD, POSTED, Held
from isthmus.flows.remittance import BY_PATIENT, PaymentFacts, decide_claim_payment
from isthmus.ledger.periods import FiscalCalendar
from isthmus.ledger.remit import RemitAccounts
from isthmus.model import ClaimRemitted, RemitAdjustment
from isthmus.model.envelope import Envelope, Source
from isthmus.model.events import PatientRef
from isthmus.store.ports import BillingAccount

AT = datetime(2026, 4, 2, tzinfo=UTC)
D = Decimal
ACCT = BillingAccount("A100", "urn:oid:1|MRN-1", "NORTH")
MAPPED = PaymentFacts(ACCT, "CLP01 billing account", "C100", "PA-0123456789abcdef")
CLP = ClaimRemitted(
    payer_id="P1",
    payer_name="ACME HEALTH",
    payee_npi="1234567893",
    payee_tin="",
    trace_number="EFT77",
    payment_method="ACH",
    payment_date=date(2026, 4, 1),
    patient_control_number="A100",
    claim_status="1",
    charge=D("250.00"),
    paid=D("180.00"),
    payer_claim_control_number="PCN-9",
    adjustments=(RemitAdjustment("CO", "45", D("50.00")), RemitAdjustment("PR", "2", D("20.00"))),
)


def env(ev: ClaimRemitted, event_id: str = "r1") -> Envelope:
    return Envelope(
        event_id=event_id,
        type="ClaimRemitted",
        occurred_at=AT,
        recorded_at=AT,
        source=Source("x12", "ISA1", "m1"),
        correlation_id="c",
        causation_id="m1",
        key="remit|A100",
        payload=ev,
    )


def decide(
    ev: ClaimRemitted, facts: PaymentFacts, calendar: FiscalCalendar | None = None
) -> Decision:
    return decide_claim_payment(
        env(ev), ev, facts, accounts=RemitAccounts(), calendar=calendar or FiscalCalendar()
    )


def test_a_payment_posts_cash_contractual_and_patient_share_on_the_account_token() -> None:
    d = decide(CLP, MAPPED)
    [entry] = d.entries
    assert d.outcome is POSTED and entry.entry_key == "r1" and entry.period == "2026-04"
    debits = {ln.account: ln.debit for ln in entry.lines if ln.debit}
    assert debits == {"1010": D("180.00"), "4900": D("50.00"), "1210": D("20.00")}
    credits = [ln for ln in entry.lines if ln.credit]
    assert sum(ln.credit for ln in credits) == D("250.00")
    assert {ln.dims.company for ln in entry.lines} == {"C100"}
    assert {ln.dims.account_token for ln in credits} == {"PA-0123456789abcdef"}
    assert d.resolve == (Resolve("r1", "posted after the fix", "r1"),)


def test_a_denial_is_held_in_denials_with_its_codes_and_posts_nothing() -> None:
    denied = msgspec.structs.replace(
        CLP, claim_status="4", paid=D("0"), adjustments=(RemitAdjustment("CO", "50", D("250")),)
    )
    d = decide(denied, PaymentFacts())  # a denial needs no facts
    [item] = d.open
    assert d.entries == () and isinstance(d.outcome, Held)
    assert (item.kind, item.queue) == ("denial", "denials")
    assert "CO-50 250" in item.detail and "PCN-9" in item.detail


def test_a_payment_matching_no_account_is_unapplied_cash() -> None:
    d = decide(CLP, PaymentFacts())
    [item] = d.open
    assert (item.kind, item.queue, item.event_id) == ("unapplied_cash", "cash-posting", "r1")
    assert "180.00 USD" in item.detail and d.entries == ()


def test_a_facility_without_company_waits_behind_the_facility_item() -> None:
    d = decide(CLP, PaymentFacts(ACCT, "CLP01 billing account"))
    assert d.outcome is HELD and d.open == () and d.entries == ()
    assert d.writes == (MappingHold(env(CLP), "facility_company", "NORTH", D("180.00"), "USD"),)


def test_a_fhir_payment_waits_behind_the_item_its_claim_s_charges_wait_behind() -> None:
    fhir = msgspec.structs.replace(CLP, patient=PatientRef("MRN-1", "urn:oid:1"))
    waits = PaymentFacts(
        ACCT, BY_PATIENT, "C100", "PA-1", claim_hold=("charge_codes", "99213"), charged=False
    )
    d = decide(fhir, waits)
    assert d.outcome is HELD
    assert d.writes == (MappingHold(env(fhir), "charge_codes", "99213", D("180.00"), "USD"),)


def test_a_fhir_payment_with_no_open_charges_is_unapplied_cash() -> None:
    fhir = msgspec.structs.replace(CLP, patient=PatientRef("MRN-1", "urn:oid:1"))
    d = decide(fhir, PaymentFacts(ACCT, BY_PATIENT, "C100", "PA-1", charged=False))
    [item] = d.open
    assert (item.kind, item.queue) == ("unapplied_cash", "cash-posting")
    assert "no open charges" in item.detail
    assert decide(fhir, PaymentFacts(ACCT, BY_PATIENT, "C100", "PA-1")).outcome is POSTED


def test_a_payment_in_a_closed_period_is_held_for_finance() -> None:
    closed = FiscalCalendar(closed=frozenset({"2026-04"}), policy="reject")
    [item] = decide(CLP, MAPPED, closed).open
    assert (item.kind, item.queue) == ("closed_period", "finance-close")
