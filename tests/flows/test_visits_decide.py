"""The visit's starts and discharges, codes, transfers, class changes and recorded events
and the account's coverage, closing and reopening decided without a store (issue 17)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from isthmus.flows.account_state import (
    AccountState,
    PutBillingAccount,
    decide_close,
    decide_coverage,
    decide_reopen,
)
from isthmus.flows.decision import Decision, SaveState
from isthmus.flows.outcome import APPLIED, DUPLICATE, Held
from isthmus.flows.visits import (
    PutEncounter,
    Stop,
    VisitState,
    decide_class,
    decide_codes,
    decide_record,
    decide_start_or_end,
    decide_transfer,
)
from isthmus.model.envelope import Envelope, Source
from isthmus.model.events import (
    BillingAccountClosed,
    ClinicalCodesRecorded,
    CodedEntry,
    Coverage,
    CoverageRecorded,
    EncounterDischarged,
    EncounterStarted,
    EncounterTransferred,
    Event,
    PatientClassChanged,
    PatientRef,
    VisitEventRecorded,
)

P = PatientRef("MRN-1", "urn:oid:1.2.3")
I10 = CodedEntry("I10", "I10")
J18 = CodedEntry("J18.9", "I10")
PR = CodedEntry("0BH17EZ", "I10P")


AT = datetime(2026, 3, 3, 9, 30, tzinfo=UTC)
ADMIT = Stop("e0", "2026-03-01T08:00:00+00:00", "ED^01", "ED", "A01")


def saved(d: Decision, name: str, kind: type[msgspec.Struct]) -> msgspec.Struct:
    [write] = [w for w in d.writes if isinstance(w, SaveState)]
    assert write.name == name
    return msgspec.json.decode(write.body, type=kind)


def env(payload: Event, event_id: str = "e1") -> Envelope:
    return Envelope(
        event_id=event_id,
        type=type(payload).__name__,
        occurred_at=AT,
        recorded_at=AT,
        source=Source("adt", "EHR", "m1"),
        correlation_id="c",
        causation_id="m1",
        key="visit|V1",
        payload=payload,
    )


def test_codes_replace_what_the_message_states_and_keep_what_it_leaves_out() -> None:
    before = VisitState(patient_key="k", diagnoses=[I10], procedures=[PR])
    ev = ClinicalCodesRecorded(patient=P, visit_number="V1", diagnoses=(J18,))
    d = decide_codes(ev, before)
    assert d.outcome is APPLIED
    after = saved(d, "visit:V1", VisitState)
    assert isinstance(after, VisitState)
    assert (after.diagnoses, after.procedures, after.patient_key) == ([J18], [PR], "k")
    assert before.diagnoses == [I10]  # the facts are not changed by deciding


def test_codes_without_a_visit_fall_back_to_the_account_or_write_nothing() -> None:
    ev = ClinicalCodesRecorded(patient=P, account_number="A1", diagnoses=(I10,))
    after = saved(decide_codes(ev, VisitState()), "visit:A1", VisitState)
    assert isinstance(after, VisitState) and after.diagnoses == [I10]
    assert decide_codes(ClinicalCodesRecorded(patient=P), None) == Decision(APPLIED)


def test_coverage_is_the_latest_message_s_plans() -> None:
    old = Coverage(plan_id="OLD")
    new = (Coverage(plan_id="P1", payer_id="MCR"), Coverage(plan_id="P2"))
    d = decide_coverage(
        CoverageRecorded(patient=P, account_number="A1", plans=new),
        AccountState(status="ended", plans=[old]),
    )
    after = saved(d, "account:A1", AccountState)
    assert isinstance(after, AccountState)
    assert (after.plans, after.status) == (list(new), "ended")


def test_a_transfer_adds_a_stop_and_keeps_the_encounter_active() -> None:
    before = VisitState(status="active", stops=[ADMIT], pending=["A15"])
    ev = EncounterTransferred(
        patient=P, visit_number="V1", location="ICU^02", department="ICU", facility="NORTH"
    )
    d = decide_transfer(env(ev), ev, "k1", before)
    after = saved(d, "visit:V1", VisitState)
    assert isinstance(after, VisitState) and d.outcome is APPLIED
    assert [(s.department, s.trigger) for s in after.stops] == [("ED", "A01"), ("ICU", "A02")]
    assert after.pending == [] and after.patient_key == "k1"  # the A02 completes the A15
    assert PutEncounter("V1", "k1", "NORTH", "", "active", AT.isoformat()) in d.writes
    assert before.stops == [ADMIT] and before.pending == ["A15"]  # facts stay as read
    assert decide_transfer(env(ev), ev, "k1", after) == Decision(DUPLICATE)


def test_a_cancelled_transfer_undoes_the_last_one() -> None:
    icu = Stop("e1", "2026-03-02T10:00:00+00:00", "ICU^02", "ICU", "A02")
    ev = EncounterTransferred(patient=P, visit_number="V1", trigger="A12", cancelled=True)
    after = saved(
        decide_transfer(env(ev, "e2"), ev, "k1", VisitState(stops=[ADMIT, icu])),
        "visit:V1",
        VisitState,
    )
    assert isinstance(after, VisitState) and after.stops == [ADMIT]


def test_a_pending_admit_is_recorded_and_a_cancelled_visit_with_charges_is_held() -> None:
    a14 = VisitEventRecorded(patient=P, visit_number="V1", trigger="A14")
    pending = saved(decide_record(env(a14), a14, "k1", False, VisitState()), "visit:V1", VisitState)
    assert isinstance(pending, VisitState) and pending.pending == ["A14"]
    a11 = VisitEventRecorded(patient=P, visit_number="V1", trigger="A11", facility="NORTH")
    d = decide_record(env(a11, "e2"), a11, "k1", True, VisitState(status="active"))
    [item] = d.open
    assert isinstance(d.outcome, Held) and d.outcome.queue == "patient-accounting"
    assert (item.kind, item.queue) == ("cancelled_visit_with_charges", "patient-accounting")
    assert PutEncounter("V1", "k1", "NORTH", "", "cancelled", AT.isoformat()) in d.writes
    quiet = decide_record(env(a11, "e3"), a11, "k1", False, VisitState(status="active"))
    assert quiet.outcome is APPLIED and quiet.open == ()


def test_closing_an_account_ends_or_purges_it_and_records_an_unknown_one() -> None:
    p06 = BillingAccountClosed(patient=P, account_number="A1")
    d = decide_close(p06, "k1", False, AccountState(plans=[Coverage(plan_id="P1")]))
    assert d.writes[0] == PutBillingAccount("A1", "k1", "")
    after = saved(d, "account:A1", AccountState)
    assert isinstance(after, AccountState) and after.status == "ended" and after.plans
    p02 = BillingAccountClosed(patient=P, account_number="A1", purged=True)
    d = decide_close(p02, "k1", True, AccountState())
    purged = saved(d, "account:A1", AccountState)
    assert len(d.writes) == 1 and isinstance(purged, AccountState) and purged.status == "purged"


def test_an_admit_opens_the_visit_at_its_first_location_once() -> None:
    a01 = EncounterStarted(
        patient=P, visit_number="V1", location="ED^01", department="ED", trigger="A01"
    )
    before = VisitState(pending=["A14"])
    d = decide_start_or_end(env(a01, "e0"), a01, before)
    after = saved(d, "visit:V1", VisitState)
    assert isinstance(after, VisitState) and d.outcome is APPLIED
    assert (after.status, after.pending) == ("active", [])  # the A01 completes the A14
    assert [(s.event_id, s.department, s.trigger) for s in after.stops] == [("e0", "ED", "A01")]
    assert before.stops == [] and before.pending == ["A14"]  # facts stay as read
    # the same admit resent under a new control id: nothing to write
    assert decide_start_or_end(env(a01, "e9"), a01, after) == Decision(APPLIED)
    assert decide_start_or_end(env(a01), EncounterStarted(patient=P, visit_number=""), before) == (
        Decision(APPLIED)
    )


def test_a_discharge_ends_the_visit_and_its_pending_discharge() -> None:
    a03 = EncounterDischarged(patient=P, visit_number="V1")
    before = VisitState(status="active", stops=[ADMIT], pending=["A16"])
    after = saved(decide_start_or_end(env(a03), a03, before), "visit:V1", VisitState)
    assert isinstance(after, VisitState)
    assert (after.status, after.pending, after.stops) == ("discharged", [], [ADMIT])
    assert decide_start_or_end(env(a03, "e2"), a03, after) == Decision(APPLIED)


def test_a_class_change_is_kept_in_the_visit_and_its_encounter_row() -> None:
    a06 = PatientClassChanged(patient=P, visit_number="V1", patient_class="I", facility="NORTH")
    d = decide_class(env(a06), a06, "k2", VisitState(patient_class="O", status="discharged"))
    after = saved(d, "visit:V1", VisitState)
    assert isinstance(after, VisitState) and d.outcome is APPLIED
    assert (after.patient_class, after.patient_key) == ("I", "k2")
    assert PutEncounter("V1", "k2", "NORTH", "I", "discharged", AT.isoformat()) in d.writes
    fresh = decide_class(env(a06), a06, "k2", VisitState())
    assert PutEncounter("V1", "k2", "NORTH", "I", "active", AT.isoformat()) in fresh.writes
    nowhere = PatientClassChanged(patient=P, visit_number="", patient_class="I")
    assert decide_class(env(nowhere), nowhere, "k2", VisitState()) == Decision(APPLIED)


def test_reopening_opens_an_ended_or_purged_account_and_leaves_an_open_one() -> None:
    plans = [Coverage(plan_id="P1")]
    d = decide_reopen("A1", AccountState(status="purged", plans=plans))
    after = saved(d, "account:A1", AccountState)
    assert isinstance(after, AccountState) and (after.status, after.plans) == ("open", plans)
    assert decide_reopen("A1", AccountState()) == Decision(APPLIED)
    assert decide_reopen("", None) == Decision(APPLIED)
