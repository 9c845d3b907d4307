"""One DFT^P03 charge decided without a store (issue 17): `charges.post_charge` reads the
patient account and the mapping lookup, `decide_charge` decides on them, and the tests give
it those facts as a store would (patient token PA-..., facility NORTH mapped to C100)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import msgspec

from isthmus.config import RevenueMapping
from isthmus.flows.charges import Enrichment, Missing, RecordCharge, decide_charge
from isthmus.flows.decision import Resolve
from isthmus.flows.mapping_holds import MappingHold
from isthmus.flows.outcome import POSTED, Held
from isthmus.ledger.periods import FiscalCalendar
from isthmus.model import Charge
from isthmus.model.envelope import Envelope, Source
from isthmus.model.events import PatientRef
from isthmus.model.money import Money
from isthmus.store.ports import Patient

AT = datetime(2026, 4, 2, tzinfo=UTC)
D = Decimal
PATIENT = Patient(key="urn:oid:1|MRN-1", mrn="MRN-1", authority="urn:oid:1", token="PA-1")
MAPPED = Enrichment("C100", "CC-4500", RevenueMapping("4100", "Cardiology"))
CHARGE = Charge(
    patient=PatientRef(mrn="MRN-1", authority="urn:oid:1"),
    transaction_id="T1",
    transaction_type="CG",
    quantity=2,
    amount=Money(D("197.36"), "USD"),
    charge_code="93000",
    department="CARD",
    facility="NORTH",
    service_date=date(2026, 4, 1),
)


def env(event_id: str = "e1") -> Envelope:
    return Envelope(
        event_id=event_id,
        type="Charge",
        occurred_at=AT,
        recorded_at=AT,
        source=Source("mllp", "EPIC^NORTH:m1", "m1"),
        correlation_id="c",
        causation_id="m1",
        key="hl7|EPIC|NORTH|T1|CG",
        payload=CHARGE,
    )


def test_a_charge_posts_ar_against_revenue_with_its_record() -> None:
    d = decide_charge(env(), CHARGE, PATIENT, MAPPED, ar_account="1200", calendar=FiscalCalendar())
    [entry] = d.entries
    assert d.outcome is POSTED and entry.entry_key == "e1" and entry.period == "2026-04"
    assert [(ln.account, ln.debit, ln.credit) for ln in entry.lines] == [
        ("1200", D("197.36"), D("0")),
        ("4100", D("0"), D("197.36")),
    ]
    assert {ln.dims.company for ln in entry.lines} == {"C100"}
    # the patient's account token is on the A/R side only: revenue is the hospital's
    assert {ln.account: ln.dims.account_token for ln in entry.lines} == {"1200": "PA-1", "4100": ""}
    [record] = d.writes
    assert isinstance(record, RecordCharge)
    assert (record.record.account_token, record.record.amount, record.record.entry_key) == (
        "PA-1",
        D("197.36"),
        "e1",
    )
    assert d.resolve == (Resolve("e1", "posted after the fix", "e1"),)


def test_a_credit_reverses_the_sides() -> None:
    credit = msgspec.structs.replace(CHARGE, transaction_type="CD")
    d = decide_charge(env(), credit, PATIENT, MAPPED, ar_account="1200", calendar=FiscalCalendar())
    [entry] = d.entries
    assert sorted((ln.account, ln.debit, ln.credit) for ln in entry.lines) == [
        ("1200", D("0"), D("197.36")),
        ("4100", D("197.36"), D("0")),
    ]


def test_an_unmapped_code_waits_behind_the_one_item_of_its_row_and_posts_nothing() -> None:
    missing = Missing(
        "unmapped_charge_code",
        "charge_codes",
        "93000",
        "charge code '93000' has no revenue account",
    )
    d = decide_charge(env(), CHARGE, PATIENT, missing, ar_account="1200", calendar=FiscalCalendar())
    assert d.outcome == Held("revenue-integrity", "charge code '93000' has no revenue account")
    assert d.writes == (MappingHold(env(), "charge_codes", "93000", D("197.36"), "USD"),)
    assert d.entries == () and d.open == ()


def test_a_closed_period_under_reject_is_held_for_finance_close() -> None:
    closed = FiscalCalendar(closed=frozenset({"2026-04"}), policy="reject")
    d = decide_charge(env(), CHARGE, PATIENT, MAPPED, ar_account="1200", calendar=closed)
    [item] = d.open
    assert (item.kind, item.queue, item.event_id) == ("closed_period", "finance-close", "e1")
    assert d.entries == () and d.writes == ()


def test_a_closed_period_under_next_open_posts_in_the_next_period() -> None:
    moved = FiscalCalendar(closed=frozenset({"2026-04"}), policy="next_open")
    [entry] = decide_charge(
        env(), CHARGE, PATIENT, MAPPED, ar_account="1200", calendar=moved
    ).entries
    assert entry.period == "2026-05"
