"""The 999, 277/277CA, 271 and FHIR Claim decisions without a store (issue 17): the facts
are given, the decision (claim-life moves in order, work items, outcome) is asserted."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from isthmus.flows import claim_fhir, claim_responses
from isthmus.flows import claim_life as life
from isthmus.flows.claim_eligibility import EligibilityFacts, decide_eligibility
from isthmus.flows.claim_life import ClaimMove
from isthmus.flows.claim_responses import (
    ResponseFacts,
    decide_acknowledged,
    decide_batch_status,
    decide_status,
)
from isthmus.flows.decision import SaveState
from isthmus.flows.outcome import APPLIED
from isthmus.formats.x12 import check_envelope, read
from isthmus.formats.x12.responses import response_events
from isthmus.model import (
    AcknowledgementReceived,
    ClaimBatchStatusReported,
    ClaimStatusEntry,
    ClaimStatusReported,
    ClaimSubmitted,
    EligibilityReported,
)
from isthmus.model.envelope import Envelope, Source
from isthmus.store.ports import ClaimState
from tests.formats.x12.x12_corpus import ISA

T0 = 1_800_000_000.0
CORPUS = Path("/work/shared/corpora/x12/linuxforhealth/277_005010X212")
ACK_999 = (
    ISA + "GS*FA*R*S*20240101*1200*9*X*005010X231A1~ST*999*0001*005010X231A1~"
    "AK1*HC*1*005010X223A3~AK2*837*0001*005010X223A3~IK3*NM1*8*2010AA*8~"
    "IK4*9*67*7*SECRETVALUE~IK5*R*5~AK9*R*1*1*0~SE*8*0001~GE*1*9~IEA*1*000000123~"
)


def events(text: str) -> list[object]:
    ic = read(text)
    kinds = [t.id for g in check_envelope(ic).groups for t in g.transactions]
    return [k.event for k in response_events(ic, kinds, interchange_id="direct")]


def claim(key: str, state: str = life.SUBMITTED, body: bytes = b"") -> ClaimState:
    return ClaimState(
        claim_key=key,
        state=state,
        payer_id="12345",
        total_charge=Decimal("150.00"),
        currency="USD",
        created_at=T0 - 10,
        updated_at=T0 - 5,
        body=body,
    )


def moves(writes: tuple[object, ...]) -> list[tuple[str, str, str]]:
    return [(m.claim.claim_key, m.kind, m.to) for m in writes if isinstance(m, ClaimMove)]


def test_999_rejection_moves_each_claim_and_opens_an_item_without_data() -> None:
    (ack,) = events(ACK_999)
    assert isinstance(ack, AcknowledgementReceived)
    facts = ResponseFacts(True, "claims/applied/e1", (claim("A"), claim("B", life.PAID)))
    got = decide_acknowledged(ack, facts, source="e1", now=T0)
    assert got.claims == {"A": life.REJECTED, "B": life.PAID}  # paid: a fact
    d = got.decision
    assert d.outcome is APPLIED and d.writes[0] == SaveState("claims/applied/e1", b"1")
    assert moves(d.writes) == [("A", "ack_rejected", life.REJECTED), ("B", "ack", life.PAID)]
    (item,) = d.open
    assert (item.kind, item.queue, item.key, item.event_id) == (
        "claim_rejected",
        "claim-rejections",
        "A",
        "claim-rejected/A/e1",
    )
    assert "IK3 NM1 position 8" in item.detail and "SECRETVALUE" not in item.detail


def test_999_redelivered_or_for_no_set_of_ours() -> None:
    (ack,) = events(ACK_999)
    assert isinstance(ack, AcknowledgementReceived)
    again = decide_acknowledged(ack, ResponseFacts(False, "m"), source="e1", now=T0)
    assert (again.claims, again.unknown, again.decision.writes) == ({}, 0, ())
    none = decide_acknowledged(ack, ResponseFacts(True, "m"), source="e1", now=T0)
    assert none.unknown == 1 and none.decision.writes == (SaveState("m", b"1"),)


def test_277_corpus_statuses_pending_and_finalized() -> None:
    got = [e for e in events((CORPUS / "claim-level-status.277").read_text()) if e]
    pending, final = [e for e in got if isinstance(e, ClaimStatusReported)][:2]
    p = decide_status(pending, ResponseFacts(claims=(claim("SM123456"),)), source="s", now=T0)
    assert p.claims == {"SM123456": life.PENDING}
    assert moves(p.decision.writes) == [("SM123456", "status_pending", life.PENDING)]
    (m,) = p.decision.writes
    assert isinstance(m, ClaimMove) and m.changes["payer_claim_id"] == "05347006051"
    f = decide_status(final, ResponseFacts(claims=(claim("J0234567"),)), source="s", now=T0)
    assert f.claims == {"J0234567": life.SUBMITTED} and f.decision.open == ()
    assert moves(f.decision.writes) == [("J0234567", "status", life.SUBMITTED)]


def test_277ca_rejection_opens_item_and_unknown_claim_is_counted() -> None:
    ev = ClaimStatusReported(
        report="277CA",
        payer_id="CH1",
        patient_control_number="A",
        statuses=(ClaimStatusEntry(category="A7", code="562", entity="85"),),
    )
    got = decide_status(ev, ResponseFacts(claims=(claim("A"),)), source="s", now=T0)
    assert got.claims == {"A": life.REJECTED}
    assert [(w.kind, w.detail) for w in got.decision.open] == [
        ("claim_rejected", "277CA A7:562:85")
    ]
    assert decide_status(ev, ResponseFacts(), source="s", now=T0).unknown == 1


def fhir_env(control_id: str) -> Envelope:
    at = datetime.fromtimestamp(T0, UTC)
    return Envelope(
        event_id="fhir-1",
        type="ClaimSubmitted",
        key="A",
        occurred_at=at,
        recorded_at=at,
        source=Source(channel="fhir", control_id=control_id, message_id="m1"),
        correlation_id="c1",
        causation_id="fhir-1",
        payload=ClaimSubmitted(
            patient_control_number="A",
            payer_id="12345",
            total_charge=Decimal("150.00"),
            currency="USD",
            service_date=date(2027, 1, 5),
        ),
    )


def test_claim_response_marks_a_scrubbed_fhir_claim_submitted_first() -> None:
    ev = ClaimStatusReported(
        report="ClaimResponse",
        payer_id="12345",
        patient_control_number="A",
        statuses=(ClaimStatusEntry(category="A2", code="20"),),
    )
    env = fhir_env("ClaimResponse/r1")
    facts = ResponseFacts(True, "m", (claim("A", life.SCRUBBED),))
    got = decide_status(ev, facts, source="fhir-1", now=T0, env=env)
    assert got.claims == {"A": life.ACCEPTED}
    assert moves(got.decision.writes) == [
        ("A", "submitted", life.SUBMITTED),
        ("A", "ack_accepted", life.ACCEPTED),
    ]


def test_batch_rejection_at_the_provider_level() -> None:
    body = '{"delimiters": ["*", ":", "~"], "billing": ["NM1*85*2*NORTH*****XX*1234567893"]}'
    ours = claim("A", body=body.encode())
    other = claim("B", body=body.replace("1234567893", "1912301953").encode())
    ev = ClaimBatchStatusReported(
        report="277CA",
        payer_id="CH1",
        level="19",
        batch="B1",
        provider_npi="1234567893",
        statuses=(ClaimStatusEntry(category="A3", code="21"),),
    )
    got = decide_batch_status(ev, ResponseFacts(claims=(ours, other)), source="s", now=T0)
    assert got.claims == {"A": life.REJECTED}
    (item,) = got.decision.open
    assert (item.kind, item.key, item.event_id) == (
        "claim_batch_rejected",
        "batch B1/1234567893",
        "claim-batch-rejected/B1/1234567893/s",
    )
    assert item.detail.endswith("1 claim(s) rejected: A")
    accepted = ClaimBatchStatusReported(
        report="277CA",
        payer_id="CH1",
        level="21",
        batch="B1",
        statuses=(ClaimStatusEntry(category="A1", code="20"),),
    )
    assert decide_batch_status(accepted, ResponseFacts(), source="s", now=T0).claims == {}


def test_271_inactive_for_a_scheduled_account_opens_a_registration_item() -> None:
    ev = EligibilityReported(payer_id="12345", trace="ACC1-1", status="inactive")
    status, d = decide_eligibility(
        ev, EligibilityFacts(True, "m", "ACC1", True), source="s", now=T0
    )
    assert status == "inactive"
    assert [(w.kind, w.queue, w.key) for w in d.open] == [
        ("eligibility_inactive", "registration", "ACC1")
    ]
    assert [w.name for w in d.writes if isinstance(w, SaveState)] == ["m", "eligibility:ACC1"]
    assert decide_eligibility(ev, EligibilityFacts(True, "m"), source="s", now=T0)[0] == ""


def test_fhir_claim_created_then_scrubbed_or_held_by_its_edits() -> None:
    env = fhir_env("Claim/c1")
    ev = env.payload
    assert isinstance(ev, ClaimSubmitted)
    state, d = claim_fhir.claim_decision(env, ev, None, now=T0)
    assert state == life.SCRUBBED and d.open == ()
    assert isinstance(d.writes[0], claim_fhir.CreateClaim)
    assert moves(d.writes) == [("A", "edits_passed", life.SCRUBBED)]
    state, d = claim_fhir.claim_decision(env, ev, claim("A"), now=T0)  # in flight
    assert state == life.SUBMITTED
    assert [(w.kind, w.queue, w.event_id) for w in d.open] == [
        ("claim_edits", "claim-edits", "claim-edits/fhir-1")
    ]
    assert moves(d.writes) == [("A", "edits_failed", life.SUBMITTED)]


def test_category_of_a_status() -> None:
    assert [claim_responses.category(c) for c in ("A1", "A7", "E0", "P3", "F2", "R1")] == [
        "accepted",
        "rejected",
        "rejected",
        "pending",
        "finalized",
        "info",
    ]
