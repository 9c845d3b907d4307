"""Late references (`flows.references`): a posting that names a FHIR Patient not known yet
is held in flow state, with an ``awaiting_patient`` work item, and comes back linked when
that Patient is registered; an HL7 charge needs none of it (PID-3 gives its token)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from msgspec.structs import replace

from isthmus.flows import references
from isthmus.flows.intake import envelopes
from isthmus.formats.fhir.identity import pending
from isthmus.model import Charge, ClaimRemitted, PatientRef, PatientRegistered
from isthmus.model.envelope import Envelope, KeyedEvent, Source
from isthmus.model.events import Event
from isthmus.model.money import Money
from isthmus.store.ports import Store
from tests.flows.helpers import Rig, adt, charge, key, token

AT = datetime(2026, 11, 2, tzinfo=UTC)
NOW = AT.timestamp()  # the time the worker passes in
P9 = PatientRef("MRN-9", "urn:oid:1.2.3")


def _env(control_id: str, ev: Event, key_: str) -> Envelope:
    [env] = envelopes(
        [KeyedEvent(f"fhir/{control_id}/0", key_, ev)],
        channel="fhir",
        control_id=control_id,
        occurred=AT,
        recorded=AT,
        tenant="default",
    )
    return env


def _charge(cid: str, patient: PatientRef) -> Envelope:
    ev = Charge(
        patient=patient,
        transaction_id=f"ChargeItem/{cid}",
        transaction_type="CG",
        quantity=1,
        amount=Money(Decimal("10.00"), "USD"),
        charge_code="80053",
        department="LAB",
        facility="NORTH",
        service_date=date(2026, 11, 2),
    )
    return _env(f"ChargeItem/{cid}", ev, patient.key)


def _registered(control_id: str = "Patient/p9") -> Envelope:
    return _env(control_id, PatientRegistered(patient=P9), P9.key)


def _held(store: Store) -> list[tuple[str, str, str]]:
    return [(w.kind, w.queue, w.event_id) for w in store.work_items("open")]


def test_a_charge_waits_for_its_patient_then_comes_back_linked(rig: Rig) -> None:
    first, second = _charge("c1", pending("Patient/p9")), _charge("c2", pending("Patient/p9"))
    with rig.store.transaction() as tx:
        assert references.admit(tx, first, NOW) is None
        assert references.admit(tx, first, NOW) is None  # a redelivery is held once
        assert references.admit(tx, second, NOW) is None
        # another Patient, or one from another channel, releases nothing
        reg = PatientRegistered(patient=P9)
        assert references.release(tx, _registered("Patient/p8"), reg, NOW) == []
        mllp = replace(_registered(), source=Source("mllp", "Patient/p9", "mllp/x"))
        assert references.release(tx, mllp, reg, NOW) == []
    assert _held(rig.store) == [
        ("awaiting_patient", "revenue-integrity", first.event_id),
        ("awaiting_patient", "revenue-integrity", second.event_id),
    ]
    with rig.store.transaction() as tx:
        out = references.release(
            tx, _registered("Patient/p9/_history/0123abcd"), PatientRegistered(patient=P9), NOW
        )
    assert [e.event_id for e in out] == [first.event_id, second.event_id]
    assert all(
        isinstance(e.payload, Charge) and e.payload.patient == P9 and e.key == P9.key for e in out
    )
    assert _held(rig.store) == []
    # the Patient is known now: a pending posting that raced its intake is linked at once
    late = _charge("c3", pending("Patient/p9"))
    with rig.store.transaction() as tx:
        linked = references.admit(tx, late, NOW)
        assert references.release(tx, _registered(), PatientRegistered(patient=P9), NOW) == []
    assert linked is not None and isinstance(linked.payload, Charge)
    assert linked.payload.patient == P9 and linked.event_id == late.event_id


def test_known_patients_and_matched_payments_pass(rig: Rig) -> None:
    known = _charge("c1", P9)
    payment = ClaimRemitted(
        payer_id="P",
        payer_name="",
        payee_npi="1",
        payee_tin="",
        trace_number="T1",
        payment_method="ACH",
        patient_control_number="ACC-9",
        claim_status="1",
        charge=Decimal(10),
        paid=Decimal(8),
        patient=pending("Patient/p9"),
    )
    env = _env("ClaimResponse/r1", payment, "remit|ACC-9")
    with rig.store.transaction() as tx:
        assert references.admit(tx, known, NOW) is known
        tx.put_billing_account("ACC-9", P9.key, "NORTH")  # CLP01 finds its account
        assert references.admit(tx, env, NOW) is env
    other = _env(
        "ClaimResponse/r2", replace(payment, patient_control_number="ACC-0"), "remit|ACC-0"
    )
    with rig.store.transaction() as tx:
        assert references.admit(tx, other, NOW) is None
    assert _held(rig.store) == [("awaiting_patient", "cash-posting", other.event_id)]


def test_an_hl7_charge_before_its_registration_posts_to_the_patients_token(rig: Rig) -> None:
    """A DFT names its patient by PID-3 (MRN + authority): its token is the one the A04
    gives the patient later, so it is posted at once, not held."""
    rig.ingest([charge("D1", "MRN-5", amount="40.00")])
    rig.drain()
    assert rig.ar() == {(token("MRN-5"), "USD"): Decimal("40.00")}
    rig.ingest([adt("D2", "MRN-5")])
    rig.drain()
    with rig.store.transaction() as tx:
        p = tx.get_patient(key("MRN-5"))
    assert p is not None and p.token == token("MRN-5") and p.family_name == "DOE"
    assert rig.ar() == {(token("MRN-5"), "USD"): Decimal("40.00")}
    assert rig.store.work_items("open") == [] and rig.store.counts()["patients"] == 1
