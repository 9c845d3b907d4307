"""classify: the pure ACK decision and the event envelopes of one inbound message."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from isthmus.flows.hl7_inbound import classify, decode_error
from isthmus.flows.relay import publications
from isthmus.formats.hl7v2 import ErrorLocation, control_id_of
from isthmus.model import (
    BillingAccountOpened,
    Charge,
    EncounterStarted,
    PatientRegistered,
)
from isthmus.model.envelope import Envelope, decode_envelope
from isthmus.store.ports import Inbound
from tests.flows.helpers import (
    AUTH,
    CHANNEL,
    adt,
    bar,
    corr,
    dft,
    ft1,
    hl7,
    ident,
    merge,
    msh,
    pid,
    pv1,
)

NOW = 1_800_000_000.0
CORPUS = (Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora" / "hl7v2").resolve()


def run(raw: bytes) -> Inbound:
    inbound, _ = classify(
        raw, channel=CHANNEL, peer="10.0.0.9:4000", now=NOW, tenant="acme", currency="USD"
    )
    return inbound


def envelopes(inbound: Inbound) -> list[Envelope]:
    return [decode_envelope(p.body) for p in publications(inbound.events)]


def test_dft_is_accepted_with_one_charge_event_per_ft1() -> None:
    raw = dft("C1", "M1", ft1(1, "T1", amount="120.50"), ft1(2, "T2", code="85025", amount="30.00"))
    inbound = run(raw)
    assert (inbound.status, inbound.ack_code, inbound.error) == ("accepted", "AA", "")
    assert inbound.control_id == ident("C1") == "EHR^NORTH:C1"
    assert inbound.message_type == "DFT^P03"
    assert inbound.raw == raw
    assert inbound.peer == "10.0.0.9:4000"
    envs = envelopes(inbound)
    assert [e.event_id for e in envs] == [f"{corr('C1')}/0", f"{corr('C1')}/1"]
    assert [e.type for e in envs] == ["Charge", "Charge"]
    assert all(e.key == f"{AUTH}|M1" for e in envs)
    assert all(e.correlation_id == corr("C1") and e.tenant == "acme" for e in envs)
    first, second = (e.payload for e in envs)
    assert isinstance(first, Charge) and isinstance(second, Charge)
    assert first.amount.amount == Decimal("120.50") and first.amount.currency == "USD"
    assert (first.transaction_type, first.charge_code, first.department) == ("CG", "80053", "LAB")
    assert second.charge_code == "85025"
    pubs = publications(inbound.events)
    assert [p.msg_id for p in pubs] == [f"{corr('C1')}/0", f"{corr('C1')}/1"]
    assert {p.key for p in pubs} == {f"{AUTH}|M1"}


def test_event_ids_are_deterministic() -> None:
    raw = dft("C7", "M1", ft1(1, "T1"))
    a, b = run(raw), run(raw)
    assert [e.event_id for e in envelopes(a)] == [e.event_id for e in envelopes(b)]
    assert envelopes(a)[0].event_id == f"{corr('C7')}/0"


def test_adt_registration_yields_patient_and_encounter() -> None:
    inbound = run(adt("R1", "M9", family="ROE", given="RICHARD", birth="19700203"))
    assert (inbound.ack_code, inbound.message_type) == ("AA", "ADT^A04")
    envs = envelopes(inbound)
    assert [e.type for e in envs] == ["PatientRegistered", "EncounterStarted"]
    assert [e.event_id for e in envs] == [f"{corr('R1')}/0", f"{corr('R1')}/1"]
    assert {e.key for e in envs} == {f"{AUTH}|M9"}
    reg, enc = envs[0].payload, envs[1].payload
    assert isinstance(reg, PatientRegistered) and isinstance(enc, EncounterStarted)
    assert (reg.family_name, reg.given_name, reg.birth_date) == ("ROE", "RICHARD", "19700203")
    assert enc.visit_number == "VM9"


def test_bar_opens_a_billing_account() -> None:
    inbound = run(bar("B1", "M3"))
    assert inbound.ack_code == "AA"
    envs = envelopes(inbound)
    assert [e.type for e in envs] == ["PatientRegistered", "BillingAccountOpened"]
    opened = envs[1].payload
    assert isinstance(opened, BillingAccountOpened)
    assert opened.account_number == "AM3"
    assert envs[1].key == f"{AUTH}|M3"


def test_merge_is_keyed_by_the_merged_account() -> None:
    """It must follow every earlier event of the account whose A/R it moves."""
    envs = envelopes(run(merge("G1", "MS", "MD")))
    assert [e.type for e in envs] == ["AccountsMerged"]
    assert envs[0].key == f"{AUTH}|MD"


@pytest.mark.parametrize("mtype", ["ORU^R01^ORU_R01", "SIU^S12^SIU_S12", "ADT^A99^ADT_A01"])
def test_a_type_the_hub_does_not_use_is_ignored_aa_with_its_reason(mtype: str) -> None:
    raw = hl7(msh("U1", mtype), pid("M1"), "OBX|1|NM|2345-7^GLUCOSE^LN||98")
    inbound = run(raw)
    assert (inbound.status, inbound.ack_code, inbound.control_id) == ("ignored", "AA", ident("U1"))
    assert inbound.events == b""
    assert inbound.raw == raw
    note = decode_error(inbound.error)
    assert note is not None and note.code == 0
    assert note.text == f"{mtype.rsplit('^', 1)[0]} is not used by the hub: no finance effect"


def policy(raw: bytes, table: dict[str, str]) -> Inbound:
    inbound, _ = classify(
        raw, channel=CHANNEL, peer="p", now=NOW, tenant="acme", currency="USD", messages=table
    )
    return inbound


def test_the_channel_table_refuses_ignores_or_accepts_by_type_and_trigger() -> None:
    a29 = hl7(msh("P1", "ADT^A29^ADT_A21"), "EVN|A29|20261102", pid("M1"))
    refused = policy(a29, {"ADT^A29": "refuse", "ADT": "accept"})
    assert (refused.status, refused.ack_code) == ("rejected", "AR")
    err = decode_error(refused.error)
    assert err is not None and err.code == 201
    assert err.text == "ADT^A29 is refused by [channels.mllp] messages"
    assert policy(a29, {"ADT": "accept"}).status == "accepted"  # the specific key wins
    ignored = policy(adt("P2", "M1"), {"ADT": "ignore"})
    assert (ignored.status, ignored.ack_code, ignored.events) == ("ignored", "AA", b"")
    oru = hl7(msh("P3", "ORU^R01^ORU_R01"), pid("M1"))
    assert policy(oru, {"*": "refuse"}).ack_code == "AR"
    assert policy(oru, {"ORU": "accept"}).status == "ignored"  # no flow takes it


def test_tracking_events_are_taken_without_finance_effect() -> None:
    inbound = run(hl7(msh("N1", "ADT^A09^ADT_A09"), "EVN|A09|20261102", pid("M1")))
    note = decode_error(inbound.error)
    assert (inbound.status, inbound.ack_code) == ("ignored", "AA")
    assert note is not None and "has no finance effect" in note.text


def test_missing_control_id_is_rejected_and_keyed_by_content_hash() -> None:
    raw = hl7(msh("", "DFT^P03^DFT_P03"), pid("M1"), pv1("V1"), ft1(1, "T1"))
    inbound = run(raw)
    assert (inbound.status, inbound.ack_code) == ("rejected", "AR")
    err = decode_error(inbound.error)
    assert err is not None and err.code == 101
    assert err.location is not None and (err.location.segment, err.location.field) == ("MSH", 10)
    assert inbound.control_id.startswith("sha256:")
    assert run(raw).control_id == inbound.control_id  # same bytes, same idempotency key
    other = run(raw + b"ZZZ|1\r")
    assert other.control_id != inbound.control_id


def test_bad_amount_is_an_application_error_at_ft1_11() -> None:
    raw = dft("E1", "M1", ft1(1, "T1", amount="12,50"))
    inbound = run(raw)
    assert (inbound.status, inbound.ack_code, inbound.control_id) == ("rejected", "AE", ident("E1"))
    assert inbound.message_type == "DFT^P03"
    err = decode_error(inbound.error)
    assert err is not None and err.code == 102
    assert err.location == ErrorLocation("FT1", 1, 11, 1)


def test_bad_amount_in_second_ft1_names_that_occurrence() -> None:
    inbound = run(dft("E2", "M1", ft1(1, "T1"), ft1(2, "T2", amount="abc")))
    err = decode_error(inbound.error)
    assert inbound.ack_code == "AE"
    assert err is not None and err.location == ErrorLocation("FT1", 2, 11, 1)


def test_bad_date_is_an_application_error_at_ft1_4() -> None:
    inbound = run(dft("E3", "M1", ft1(1, "T1", when="20261345")))
    assert inbound.ack_code == "AE"
    err = decode_error(inbound.error)
    assert err is not None and err.code == 102
    assert err.location is not None and (err.location.segment, err.location.field) == ("FT1", 4)


def test_ft1_before_pid_is_a_segment_sequence_error() -> None:
    raw = hl7(msh("E4", "DFT^P03^DFT_P03"), "EVN|P03|20261102", ft1(1, "T1"), pid("M1"), pv1("V1"))
    inbound = run(raw)
    assert inbound.ack_code == "AE"
    err = decode_error(inbound.error)
    assert err is not None and err.code == 100
    assert err.location is not None and err.location.segment == "FT1"


def test_missing_mrn_is_an_application_error() -> None:
    raw = hl7(
        msh("E5", "DFT^P03^DFT_P03"), "PID|1||^^^HOSPMRN^MR||DOE^JANE", pv1("V1"), ft1(1, "T1")
    )
    inbound = run(raw)
    assert inbound.ack_code == "AE"
    err = decode_error(inbound.error)
    assert err is not None and err.code == 101


def test_garbage_is_rejected_without_a_message() -> None:
    inbound, msg = classify(
        b"PRINTER JOB PAPER OUT", channel=CHANNEL, peer="p", now=NOW, tenant="t", currency="USD"
    )
    assert msg is None
    assert (inbound.status, inbound.ack_code, inbound.message_type) == ("rejected", "AR", "")
    assert inbound.raw == b"PRINTER JOB PAPER OUT"


def test_negative_amount_becomes_a_positive_credit() -> None:
    inbound = run(dft("N1", "M1", ft1(1, "T1", amount="-45.10")))
    assert inbound.ack_code == "AA"
    (env,) = envelopes(inbound)
    ch = env.payload
    assert isinstance(ch, Charge)
    assert ch.transaction_type == "CD"
    assert ch.amount.amount == Decimal("45.10")


def test_occurred_at_is_msh7_and_recorded_at_is_now() -> None:
    (env, _) = envelopes(run(adt("T1", "M1")))
    assert env.occurred_at.isoformat().startswith("2026-11-02T10:15:00")
    assert env.recorded_at.timestamp() == NOW


def test_events_blob_is_a_json_array_of_envelopes() -> None:
    inbound = run(adt("J1", "M1"))
    assert isinstance(msgspec.json.decode(inbound.events), list)


# -- identity per sender (HL7 v2.5.1 2.14.9: MSH-10 is unique per MSH-3/MSH-4) -------------


def test_the_same_msh10_from_two_senders_is_two_identities() -> None:
    """The public samples reuse MSG00001 across sending applications: not duplicates."""
    a = run(adt("MSG00001", "M1"))
    b = run(hl7(msh("MSG00001", "ADT^A04^ADT_A01", facility="SOUTH"), pid("M1"), pv1("VM1")))
    assert (a.control_id, b.control_id) == ("EHR^NORTH:MSG00001", "EHR^SOUTH:MSG00001")
    assert envelopes(b)[0].correlation_id == "mllp/EHR^SOUTH:MSG00001"


def test_sender_parts_are_percent_encoded_only_where_they_would_be_ambiguous() -> None:
    raw = hl7(
        "MSH|^~\\&|GHH LAB|A\\S\\B:C/D|H|H|20261102||ADT^A04^ADT_A01|X:1|P|2.5",
        pid("M1"),
        pv1("V1"),
    )
    inbound = run(raw)
    assert inbound.control_id == "GHH LAB^A%5EB%3AC%2FD:X:1"
    assert control_id_of(inbound.control_id) == "X:1"


def test_a_message_that_does_not_parse_is_kept_under_its_recovered_identity() -> None:
    raw = b"MSH|^~\\&|EHR|NORTH|H|H|2026||ADT^A04|Q1|P|2.5\rPID|1\rZZ\r"
    inbound = run(raw)
    assert (inbound.status, inbound.control_id) == ("rejected", "EHR^NORTH:Q1")


def test_a_charge_with_ft1_2_has_a_business_key_of_its_sender_and_transaction() -> None:
    envs = envelopes(run(dft("K1", "M1", ft1(1, "TX-9"), ft1(2, ""))))
    assert [e.business_key for e in envs] == ["hl7|EHR|NORTH|TX-9|CG", ""]
    assert envelopes(run(adt("K2", "M1")))[0].business_key == ""


def test_a_name_in_ft1_6_never_reaches_the_business_key() -> None:
    [env] = envelopes(run(dft("K5", "M1", ft1(1, "TX-7", ttype="SMITH^JOHN"))))
    assert env.business_key.startswith("hl7|EHR|NORTH|TX-7|#")
    assert "SMITH" not in env.business_key


def test_a_charge_resent_under_a_new_msh10_keeps_its_business_key() -> None:
    first = envelopes(run(dft("K3", "M1", ft1(1, "TX-1"))))[0]
    again = envelopes(run(dft("K4", "M1", ft1(1, "TX-1"))))[0]
    assert first.event_id != again.event_id
    assert first.business_key == again.business_key == "hl7|EHR|NORTH|TX-1|CG"


def test_the_corpus_dft_charge_is_keyed_by_its_sender_and_ft1_2() -> None:
    raw = (CORPUS / "fhir-converter" / "DFT-P03-01.hl7").read_bytes()
    inbound = run(raw)
    assert (inbound.status, inbound.control_id) == ("accepted", "IMMAPP^GHHSFacility:MSG00001")
    # FT1 1 has FT1-2 12345; FT1 2 has none: its event id is its identity
    charges = [e for e in envelopes(inbound) if e.type == "Charge"]
    assert [e.business_key for e in charges] == ["hl7|IMMAPP|GHHSFacility|12345|CG", ""]
