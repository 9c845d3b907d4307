"""ADT moves decided without a store (issue 17): `merge_decide.decide` on the facts
`flows.merges.facts` would read, with the records, patients and entries it writes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from isthmus.flows.account_state import PutBillingAccount
from isthmus.flows.decision import Decision, Resolve, SaveState
from isthmus.flows.lineage import AccountLineage, Cell, VisitLineage
from isthmus.flows.merge_decide import Facts, PutPatient, SaveLineage, decide
from isthmus.flows.outcome import APPLIED, DUPLICATE, Held
from isthmus.flows.visits import VisitState
from isthmus.ledger.periods import FiscalCalendar
from isthmus.model.envelope import Envelope, Source
from isthmus.model.events import IdentifiersMoved, PatientRef
from isthmus.store.ports import Patient

AT = datetime(2026, 3, 3, 9, 30, tzinfo=UTC)
A, B = PatientRef("MRN-A", "urn:oid:1"), PatientRef("MRN-B", "urn:oid:1")
ALICE = Patient(key=A.key, mrn="MRN-A", authority="urn:oid:1", token="PA-aaaa")
BOB = Patient(key=B.key, mrn="MRN-B", authority="urn:oid:1", token="PA-bbbb")
LAB = Cell("V1", A.key, "1200", "C100", "USD", Decimal("300.00"))
CAL = FiscalCalendar()


def env(ev: IdentifiersMoved, event_id: str = "m1") -> Envelope:
    return Envelope(
        event_id=event_id,
        type="IdentifiersMoved",
        occurred_at=AT,
        recorded_at=AT,
        source=Source("adt", "EHR", "c1"),
        correlation_id="c",
        causation_id="c1",
        key="account|A1",
        payload=ev,
    )


A44 = IdentifiersMoved(trigger="A44", patient=B, prior_account="A1", account_number="A1")


def moved_to_bob(**kw: object) -> Facts:
    base: dict[str, object] = {
        "key": "move:k",
        "survivor": BOB,
        "source": "A1",
        "target": "A1",
        "books": {"A1": AccountLineage(cells=[LAB])},
        "trail": {"V1": VisitLineage(accounts=["A1"])},
        "states": {"V1": VisitState(patient_key=A.key, status="active")},
        "facilities": {"A1": "NORTH"},
        "tokens": {A.key: ALICE.token},
    }
    return Facts(**{**base, **kw})  # type: ignore[arg-type]  # a test's keyword mix


def test_an_account_moved_to_another_patient_takes_its_ar_along() -> None:
    d = decide(env(A44), A44, moved_to_bob(), calendar=CAL)
    assert d.outcome is APPLIED and d.open == () and d.resolve == ()
    [entry] = d.entries
    assert entry.entry_key == "move:k/1200/C100/PA-aaaa"
    moves = {(ln.dims.account_token, ln.debit, ln.credit) for ln in entry.lines}
    assert moves == {("PA-bbbb", Decimal("300.00"), 0), ("PA-aaaa", 0, Decimal("300.00"))}
    [book, billing, trail, state, mark] = d.writes
    assert isinstance(book, SaveLineage) and isinstance(book.record, AccountLineage)
    assert book.name == "A1" and book.record.owner == B.key
    assert [c.patient_key for c in book.record.cells] == [B.key]
    assert billing == PutBillingAccount("A1", B.key, "NORTH")
    assert isinstance(trail, SaveLineage) and trail.name == "V1"
    assert trail.record == VisitLineage(owner=B.key, account="A1", accounts=["A1"])
    assert isinstance(state, SaveState) and state.name == "visit:V1"
    assert mark == SaveState("move:k", b"applied m1")


def test_a_merge_across_facilities_is_refused_into_merge_review() -> None:
    a41 = IdentifiersMoved(trigger="A41", patient=A, prior_account="A1", account_number="A2")
    facts = moved_to_bob(
        survivor=ALICE,
        target="A2",
        books={"A1": AccountLineage(cells=[LAB]), "A2": AccountLineage()},
        facilities={"A1": "NORTH", "A2": "SOUTH"},
    )
    d = decide(env(a41), a41, facts, calendar=CAL)
    [item] = d.open
    assert isinstance(d.outcome, Held) and d.entries == ()
    assert (item.kind, item.queue) == ("merge_refused", "merge-review")
    assert "facility 'NORTH', the survivor of 'SOUTH'" in item.detail
    assert d.writes == (SaveState("move:k", b"held m1"),)


def test_a_seen_move_is_a_duplicate_and_a_resubmitted_refusal_goes_through() -> None:
    seen = moved_to_bob(done=b"applied m0")
    assert decide(env(A44), A44, seen, calendar=CAL) == Decision(DUPLICATE)
    again = decide(env(A44), A44, moved_to_bob(done=b"held m1"), calendar=CAL)
    assert again.outcome is APPLIED
    assert again.resolve == (Resolve("m1", "moved after the fix"),)


def test_a_changed_identifier_nobody_had_becomes_an_alias_of_the_survivor() -> None:
    a47 = IdentifiersMoved(trigger="A47", patient=B, prior_patient=A)
    d = decide(env(a47), a47, Facts(key="move:k", survivor=BOB), calendar=CAL)
    assert d.outcome is APPLIED and d.entries == ()
    assert d.writes[0] == PutPatient(
        Patient(key=A.key, mrn="MRN-A", authority="urn:oid:1", token="PA-bbbb", merged_into=B.key)
    )
