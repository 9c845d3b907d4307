"""Late references to an Account (`flows.references`): a charge whose ``Account/<id>`` has
not arrived carries `pending_account`, is held with an ``awaiting_account`` work item, and
comes back with the Account's business number when its BillingAccountOpened is applied;
the intake's mapping (`formats.fhir.events`) resolves ``ChargeItem.account`` to that
number, never to the logical id."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from msgspec.structs import replace

from isthmus.flows import references
from isthmus.flows.intake import envelopes
from isthmus.formats.fhir import decode_resource
from isthmus.formats.fhir.events import account_number, events_of
from isthmus.formats.fhir.identity import (
    account_reference,
    account_waiting_for,
    pending,
    pending_account,
)
from isthmus.model import BillingAccountOpened, Charge, PatientRef, PatientRegistered
from isthmus.model.envelope import Envelope, KeyedEvent, Source
from isthmus.model.events import Event
from isthmus.model.money import Money
from isthmus.store.ports import Store
from tests.flows.helpers import Rig

AT = datetime(2026, 11, 2, tzinfo=UTC)
NOW = AT.timestamp()  # the time the worker passes in
P9 = PatientRef("MRN-9", "urn:oid:1.2.3")
ACC = "Account/acc-7"


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


def _charge(cid: str, patient: PatientRef = P9, account: str = pending_account(ACC)) -> Envelope:
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
        account_number=account,
    )
    return _env(f"ChargeItem/{cid}", ev, patient.key)


def _opened(control_id: str = ACC, number: str = "A1007") -> tuple[Envelope, BillingAccountOpened]:
    ev = BillingAccountOpened(patient=P9, account_number=number, facility="NORTH")
    return _env(control_id, ev, P9.key), ev


def _held(store: Store) -> list[tuple[str, str, str]]:
    return [(w.kind, w.queue, w.event_id) for w in store.work_items("open")]


def test_pending_account_numbers_and_account_control_ids() -> None:
    assert account_waiting_for(pending_account(ACC)) == ACC
    assert account_waiting_for("A1007") is None
    assert account_waiting_for("urn:isthmus:fhir:reference|Patient/p1") is None
    assert account_waiting_for("other|Account/acc-7") is None
    assert account_reference("Account/acc-7/_history/0123abcd") == ACC
    assert account_reference("Account/acc-7#0123abcd") is None
    assert account_reference("Patient/acc-7") is None and account_reference("Account/") is None


def test_a_charge_waits_for_its_account_then_comes_back_with_its_number(rig: Rig) -> None:
    first, second = _charge("c1"), _charge("c2")
    with rig.store.transaction() as tx:
        assert references.admit(tx, first, NOW) is None
        assert references.admit(tx, first, NOW) is None  # a redelivery is held once
        assert references.admit(tx, second, NOW) is None
        # another Account, or one from another channel, releases nothing
        env, ev = _opened("Account/acc-8")
        assert references.release(tx, env, ev, NOW) == []
        env, ev = _opened()
        assert references.release(tx, replace(env, source=Source("mllp", ACC, "x")), ev, NOW) == []
    assert _held(rig.store) == [
        ("awaiting_account", "revenue-integrity", first.event_id),
        ("awaiting_account", "revenue-integrity", second.event_id),
    ]
    [item, _] = rig.store.work_items("open")
    assert ACC in item.detail and "MRN-9" not in item.detail
    with rig.store.transaction() as tx:
        env, ev = _opened("Account/acc-7/_history/0123abcd")
        out = references.release(tx, env, ev, NOW)
    assert [e.event_id for e in out] == [first.event_id, second.event_id]
    assert all(
        isinstance(e.payload, Charge)
        and e.payload.account_number == "A1007"
        and e.payload.patient == P9
        and e.key == P9.key
        for e in out
    )
    assert _held(rig.store) == []
    # the Account is known now: a charge that raced its intake gets the number at once,
    # and the Account sent again releases nothing more
    late = _charge("c3")
    with rig.store.transaction() as tx:
        got = references.admit(tx, late, NOW)
        assert references.release(tx, *_opened(), NOW) == []
    assert got is not None and isinstance(got.payload, Charge)
    assert got.payload.account_number == "A1007" and got.event_id == late.event_id
    # a charge whose account is known (or an HL7 number) is untouched
    known = _charge("c4", account="A1007")
    with rig.store.transaction() as tx:
        assert references.admit(tx, known, NOW) is known


def test_a_charge_waits_for_its_patient_first_then_for_its_account(rig: Rig) -> None:
    env = _charge("c1", patient=pending("Patient/p9"))
    with rig.store.transaction() as tx:
        assert references.admit(tx, env, NOW) is None
    assert [k for k, _, _ in _held(rig.store)] == ["awaiting_patient"]
    reg = _env("Patient/p9", PatientRegistered(patient=P9), P9.key)
    with rig.store.transaction() as tx:
        [back] = references.release(tx, reg, PatientRegistered(patient=P9), NOW)
        assert isinstance(back.payload, Charge) and back.payload.patient == P9
        assert references.admit(tx, back, NOW) is None  # its Account has not arrived
    assert [k for k, _, _ in _held(rig.store)] == ["awaiting_account"]
    with rig.store.transaction() as tx:
        [done] = references.release(tx, *_opened(), NOW)
    assert isinstance(done.payload, Charge)
    assert (done.payload.patient, done.payload.account_number) == (P9, "A1007")
    assert _held(rig.store) == []


_CHARGE = b"""{"resourceType": "ChargeItem", "id": "ci1", "status": "billable",
  "code": {"coding": [{"code": "80053"}]}, "subject": {"reference": "Patient/p1"},
  "occurrenceDateTime": "2025-03-04", "priceOverride": {"value": 5, "currency": "USD"},
  "account": [ACCOUNT]}"""


def _number(account: str, accounts: dict[str, str]) -> str:
    _, res = decode_resource(_CHARGE.replace(b"ACCOUNT", account.encode()))
    [(_, ev)] = events_of(res, lambda ref: P9, accounts=accounts.get)
    assert isinstance(ev, Charge)
    return ev.account_number


def test_the_intake_mapping_resolves_account_references_to_business_numbers() -> None:
    known = {ACC: "A1007"}
    assert _number('{"reference": "Account/acc-7"}', known) == "A1007"
    assert _number('{"reference": "https://ehr.example/fhir/Account/acc-7"}', known) == "A1007"
    assert _number('{"reference": "Account/acc-7/_history/3"}', known) == "A1007"
    assert _number('{"reference": "Account/acc-9"}', known) == ""  # the caller knows none
    # a logical reference (by identifier) is the business number itself
    assert _number('{"identifier": {"value": "A2002"}}', known) == "A2002"
    _, account = decode_resource(
        b'{"resourceType": "Account", "id": "acc-7", '
        b'"identifier": [{"value": "A1007"}, {"value": "X"}]}'
    )
    _, bare = decode_resource(b'{"resourceType": "Account", "id": "acc-8"}')
    assert account_number(account) == "A1007" and account_number(bare) == "acc-8"  # type: ignore[arg-type]
