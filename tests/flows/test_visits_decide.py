"""The visit's codes and the account's coverage decided without a store (issue 17)."""

from __future__ import annotations

import msgspec

from isthmus.flows.decision import Decision, SaveState
from isthmus.flows.outcome import APPLIED
from isthmus.flows.visits import AccountState, VisitState, decide_codes, decide_coverage
from isthmus.model.events import (
    ClinicalCodesRecorded,
    CodedEntry,
    Coverage,
    CoverageRecorded,
    PatientRef,
)

P = PatientRef("MRN-1", "urn:oid:1.2.3")
I10 = CodedEntry("I10", "I10")
J18 = CodedEntry("J18.9", "I10")
PR = CodedEntry("0BH17EZ", "I10P")


def saved(d: Decision, name: str, kind: type[msgspec.Struct]) -> msgspec.Struct:
    [write] = d.writes
    assert isinstance(write, SaveState) and write.name == name
    return msgspec.json.decode(write.body, type=kind)


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
