"""HL7 v2 message -> canonical finance events (pure).

Which messages mean money, and where each fact is read from (HL7 v2.5.1; the table of what
the hub takes, ignores or refuses is `formats.hl7v2.triggers`):
- ADT^A01 admit, ADT^A04 register (ch. 3.3.1, 3.3.4): PatientRegistered + EncounterStarted
  (with the first location, PV1-3)
- ADT^A05 pre-admit (3.3.5), A28 add person (3.3.28): PatientRegistered; A08 update
  (3.3.8), A31 update person (3.3.31): PatientUpdated
- ADT^A03 discharge (3.3.3): EncounterDischarged (PV1-45 discharge date/time)
- ADT^A40 merge patient identifier list (3.3.40): AccountsMerged (PID-3 survivor, MRG-1 merged)
- the other ADT visit and identifier events: `formats.hl7v2.adt`
- BAR^P01 add patient accounts (6.4.1), P05 update account (6.4.5): PatientRegistered /
  PatientUpdated + BillingAccountOpened (PID-18); P02 / P06 close it; P12 updates the
  diagnoses and procedures (`formats.hl7v2.billing`)
- DFT^P03 post detail financial transaction (6.4.3), DFT^P11 (6.4.11, v2.5+ groups): one
  Charge per FT1 segment (6.5.1), whatever its FT1-6 transaction type (table 0017: CG, CD,
  PY, AJ or a site's own); the flow maps the type to a posting ([mappings.transaction_types])
- IN1, DG1 and PR1 of ADT, BAR and DFT messages: CoverageRecorded, ClinicalCodesRecorded

The patient, facility and visit are read by `formats.hl7v2.reading`. A message of a type
no flow takes raises HL7ParseError (201): `flows.hl7_inbound.classify` asks `triggers.decide` first.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from isthmus.formats.hl7v2.adt import adt_events, location_of
from isthmus.formats.hl7v2.billing import account_facts, closed_accounts
from isthmus.formats.hl7v2.errors import (
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    UNSUPPORTED_EVENT_CODE,
    UNSUPPORTED_MESSAGE_TYPE,
    ErrorLocation,
    HL7ParseError,
)
from isthmus.formats.hl7v2.message import Message
from isthmus.formats.hl7v2.reading import (
    facility_of,
    missing,
    parse_date,
    parse_ts,
    patient_of,
    visit_of,
)
from isthmus.formats.hl7v2.segment import Segment
from isthmus.formats.hl7v2.triggers import HANDLED
from isthmus.model import (
    AccountsMerged,
    BillingAccountOpened,
    Charge,
    EncounterDischarged,
    EncounterStarted,
    Event,
    Money,
    MoneyError,
    PatientRegistered,
    PatientUpdated,
)
from isthmus.model.events import (
    BillingAccountClosed,
    ClinicalCodesRecorded,
    CoverageRecorded,
    EncounterTransferred,
    IdentifiersMoved,
    PatientClassChanged,
    PatientDeleted,
    VisitEventRecorded,
)


def _registration(msg: Message, cls: type[PatientRegistered]) -> PatientRegistered:
    patient = patient_of(msg)  # HL7ParseError (101, AE) when PID or PID-3 is missing
    pid = msg.segment("PID")
    assert pid is not None  # patient_of checked
    return cls(
        patient=patient,
        family_name=pid.value(5, 1),
        given_name=pid.value(5, 2),
        birth_date=pid.value(7, 1)[:8],
        sex=pid.value(8, 1),
        account_number=pid.value(18, 1),
        facility=facility_of(msg),
    )


def _encounter_start(msg: Message, trigger: str) -> EncounterStarted:
    location, department = location_of(msg.segment("PV1"))  # its first location (PV1-3)
    return EncounterStarted(
        patient=patient_of(msg),
        visit_number=msg.get("PV1-19.1") or msg.get("PID-18.1"),
        patient_class=msg.get("PV1-2.1"),
        facility=facility_of(msg),
        started_at=parse_ts(msg.get("PV1-44.1")) or parse_ts(msg.get("EVN-2.1")),
        location=location,
        department=department,
        trigger=trigger,
    )


def _amount(ft1: Segment, seq: int, currency: str, qty_text: str) -> Money:
    """FT1-11 extended amount (CP: MO price = amount & denomination), else FT1-12 x FT1-10
    (`qty_text`, "1" when empty)."""
    field, text = 11, ft1.value(11, 1, 1).strip()
    cur = ft1.value(11, 1, 2).strip()
    multiply = False
    if not text:
        field, text, cur = 12, ft1.value(12, 1, 1).strip(), ft1.value(12, 1, 2).strip()
        multiply = True
    if not text:
        raise HL7ParseError(
            REQUIRED_FIELD_MISSING,
            "FT1-11 extended amount or FT1-12 unit amount is required",
            ErrorLocation("FT1", seq, 11, 1),
        )
    try:
        money = Money.parse(text, cur or currency)
        qty = Decimal(qty_text)
    except (MoneyError, InvalidOperation) as exc:
        raise HL7ParseError(
            DATA_TYPE_ERROR,
            f"FT1-{field} is not a valid amount (a decimal number)",
            ErrorLocation("FT1", seq, field, 1),
        ) from exc
    return money * qty if multiply else money


def _charges(msg: Message, currency: str, name: str) -> list[Event]:
    patient = patient_of(msg)
    facility = facility_of(msg)
    pid, pv1 = msg.segment("PID"), msg.segment("PV1")
    account = pid.value(18) if pid is not None else ""
    visit = pv1.value(19) if pv1 is not None else ""
    out: list[Event] = []
    ft1s = msg.segments_named("FT1")
    if not ft1s:
        raise HL7ParseError(
            REQUIRED_FIELD_MISSING, f"{name} needs at least one FT1 segment", ErrorLocation("FT1")
        )
    names = msg.segment_names
    if names.index("FT1") < names.index("PID"):
        raise HL7ParseError(
            SEGMENT_SEQUENCE_ERROR, f"FT1 must follow PID in {name}", ErrorLocation("FT1", 1)
        )
    for seq, ft1 in enumerate(ft1s, 1):
        ttype = ft1.value(6).strip().upper()
        if not ttype:
            raise HL7ParseError(
                REQUIRED_FIELD_MISSING,
                "transaction type (FT1-6, HL7 table 0017) is required",
                ErrorLocation("FT1", seq, 6),
            )
        code = ft1.value(7, 1).strip()
        if not code:
            raise missing("FT1", 7, "transaction code (FT1-7)", 1)
        posted = ft1.value(4, 1) or ft1.value(5, 1)
        when = parse_date(posted)
        if when is None:
            raise HL7ParseError(
                DATA_TYPE_ERROR,
                "transaction date (FT1-4) is not a valid date",
                ErrorLocation("FT1", seq, 4, 1),
            )
        qty_text = ft1.value(10).strip() or "1"
        money = _amount(ft1, seq, currency, qty_text)
        negative = money.amount < 0
        if negative:
            money = money.abs()
            if ttype == "CG":  # a negative charge is a credit
                ttype, negative = "CD", False
        try:
            qty = abs(int(Decimal(qty_text)))
        except (InvalidOperation, ValueError) as exc:
            raise HL7ParseError(
                DATA_TYPE_ERROR, "quantity (FT1-10) is not a number", ErrorLocation("FT1", seq, 10)
            ) from exc
        out.append(
            Charge(
                patient=patient,
                transaction_id=ft1.value(2).strip() or f"{seq}",
                transaction_type=ttype,
                quantity=qty,
                amount=money,
                charge_code=code,
                department=ft1.value(13, 1).strip(),
                facility=facility,
                performing_provider=ft1.value(20, 1).strip(),
                service_date=when,
                account_number=account,
                visit_number=visit,
                negative=negative,
            )
        )
    return out + account_facts(msg, patient, account, visit)


def _billing(msg: Message, trigger: str) -> list[Event]:
    if trigger in ("P02", "P06"):
        return closed_accounts(msg, purged=trigger == "P02")
    reg = _registration(msg, PatientUpdated if trigger == "P05" else PatientRegistered)
    number = reg.account_number or msg.get("PV1-19.1")
    if trigger == "P12":
        return account_facts(msg, reg.patient, number, visit_of(msg)) or [reg]
    if not number:
        raise missing("PID", 18, "patient account number (PID-18)", 1)
    return [
        reg,
        BillingAccountOpened(
            patient=reg.patient,
            account_number=number,
            facility=reg.facility,
            visit_number=msg.get("PV1-19.1"),
        ),
        *account_facts(msg, reg.patient, number, visit_of(msg)),
    ]


def _admission(msg: Message, trigger: str) -> list[Event]:
    if trigger == "A40":
        mrg = msg.segment("MRG")
        if mrg is None:
            raise HL7ParseError(
                REQUIRED_FIELD_MISSING, "ADT^A40 needs an MRG segment", ErrorLocation("MRG")
            )
        return [AccountsMerged(survivor=patient_of(msg), merged=patient_of(msg, mrg, 1))]
    if trigger == "A03":
        return [
            EncounterDischarged(
                patient=patient_of(msg),
                visit_number=visit_of(msg),
                facility=facility_of(msg),
                discharged_at=parse_ts(msg.get("PV1-45.1")),
            )
        ]
    moved = adt_events(msg, trigger)
    if moved is not None:
        return moved
    reg = _registration(msg, PatientUpdated if trigger in ("A08", "A31") else PatientRegistered)
    out: list[Event] = [reg]
    if trigger in ("A01", "A04"):
        out.append(_encounter_start(msg, trigger))
    number = reg.account_number or msg.get("PV1-19.1")
    return out + account_facts(msg, reg.patient, number, visit_of(msg))


def events_of(msg: Message, *, currency: str = "USD") -> list[Event]:
    """The finance events a message carries, or HL7ParseError saying why it can't be taken."""
    mtype, trigger = msg.message_type.strip().upper(), msg.trigger_event.strip().upper()
    if mtype not in HANDLED:
        raise HL7ParseError(
            UNSUPPORTED_MESSAGE_TYPE,
            f"message type {mtype!r} is not handled by this channel",
            ErrorLocation("MSH", 1, 9, 1),
        )
    if trigger not in HANDLED[mtype]:
        raise HL7ParseError(
            UNSUPPORTED_EVENT_CODE,
            f"{mtype}^{trigger} is not handled by this channel",
            ErrorLocation("MSH", 1, 9, 2),
        )
    if mtype == "DFT":
        return _charges(msg, currency, f"{mtype}^{trigger}")
    if mtype == "BAR":
        return _billing(msg, trigger)
    return _admission(msg, trigger)


def event_key(event: Event) -> str:
    """The partition key: the patient, so each account's events stay in order.

    A merge is keyed on the merged (retired) patient: it must follow every earlier event of
    that account, because it moves that account's A/R, and every later event of that
    account resolves to the survivor anyway. Keyed on the survivor, the reclass amount would
    depend on how far the other partition had got. An identifier move is keyed the same way
    on its prior patient (MRG-1) when it names one.
    """
    if isinstance(event, AccountsMerged):
        return event.merged.key
    if isinstance(event, IdentifiersMoved):
        return (event.prior_patient or event.patient).key
    if isinstance(event, PATIENT_KEYED):
        return event.patient.key
    raise TypeError(f"{type(event).__name__} is not keyed by a patient (HL7 v2)")


PATIENT_KEYED = (
    PatientRegistered,
    EncounterStarted,
    EncounterDischarged,
    BillingAccountOpened,
    Charge,
    EncounterTransferred,
    PatientClassChanged,
    VisitEventRecorded,
    PatientDeleted,
    ClinicalCodesRecorded,
    CoverageRecorded,
    BillingAccountClosed,
)

__all__ = [
    "PATIENT_KEYED",
    "event_key",
    "events_of",
    "facility_of",
    "parse_date",
    "parse_ts",
    "patient_of",
]
