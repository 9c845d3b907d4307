"""HL7 v2 message -> canonical finance events (pure).

Which messages mean money, and where each fact is read from (HL7 v2.5.1):
- ADT^A01 admit, ADT^A04 register (ch. 3.3.1, 3.3.4): PatientRegistered + EncounterStarted
- ADT^A05 pre-admit (3.3.5): PatientRegistered; ADT^A08 update (3.3.8): PatientUpdated
- ADT^A03 discharge (3.3.3): EncounterDischarged (PV1-45 discharge date/time)
- ADT^A40 merge patient identifier list (3.3.40): AccountsMerged (PID-3 survivor, MRG-1 merged)
- BAR^P01 add patient accounts (6.4.1): PatientRegistered + BillingAccountOpened (PID-18)
- DFT^P03 post detail financial transaction (6.4.3): one Charge per FT1 segment (6.5.1)

The patient identity is the PID-3 repetition whose identifier type (CX-5) is "MR", else the
first: MRN = CX-1, assigning authority = CX-4.1; an empty authority falls back to the
sending facility (MSH-4.1). Facility: PV1-3.4 (PL-4, HD), else MSH-4.1.
Anything else is refused with an HL7ParseError carrying its table 0357 code and location,
which the inbox turns into an AE/AR acknowledgement.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from isthmus.formats.hl7v2.errors import (
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    TABLE_VALUE_NOT_FOUND,
    UNSUPPORTED_EVENT_CODE,
    UNSUPPORTED_MESSAGE_TYPE,
    ErrorLocation,
    HL7ParseError,
)
from isthmus.formats.hl7v2.message import Message
from isthmus.formats.hl7v2.segment import Segment
from isthmus.model import (
    AccountsMerged,
    BankDeposited,
    BillingAccountOpened,
    Charge,
    ClaimRemitted,
    ClaimSubmitted,
    EncounterDischarged,
    EncounterStarted,
    Event,
    Money,
    MoneyError,
    PatientPaymentSettled,
    PatientRef,
    PatientRegistered,
    PatientUpdated,
    ProcessorDeposited,
    ProviderAdjusted,
    RemittancePaid,
)

SUPPORTED: dict[str, frozenset[str]] = {
    "ADT": frozenset({"A01", "A03", "A04", "A05", "A08", "A40"}),
    "BAR": frozenset({"P01"}),
    "DFT": frozenset({"P03"}),
}


def _missing(seg: str, field: int, what: str, component: int = 0) -> HL7ParseError:
    return HL7ParseError(
        REQUIRED_FIELD_MISSING, f"{what} is required", ErrorLocation(seg, 1, field, component)
    )


def parse_ts(text: str) -> datetime | None:
    """HL7 TS/DTM: YYYY[MM[DD[HH[MM[SS[.S{1,4}]]]]]][+/-ZZZZ]; None when empty or invalid."""
    text = text.strip()
    if not text:
        return None
    tz = UTC
    for sign in ("+", "-"):
        pos = text.find(sign, 4)
        if pos > 0:
            off = text[pos + 1 :]
            text = text[:pos]
            if len(off) == 4 and off.isdigit():
                delta = timedelta(hours=int(off[:2]), minutes=int(off[2:]))
                tz = timezone(delta if sign == "+" else -delta)
            break
    main = text.split(".", 1)[0]
    if len(main) < 4 or not main.isdigit():
        return None
    parts = [int(main[i : i + 2]) for i in range(4, min(len(main), 14), 2)]
    month, day, hour, minute, second = (parts + [1, 1, 0, 0, 0][len(parts) :])[:5]
    try:
        return datetime(int(main[:4]), month, day, hour, minute, second, tzinfo=tz)
    except ValueError:
        return None


def parse_date(text: str) -> date | None:
    """The date part of an HL7 DT/DTM (YYYYMMDD...); None when missing or invalid."""
    text = text.strip()
    if len(text) < 8 or not text[:8].isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def patient_of(msg: Message, seg: Segment | None = None, field: int = 3) -> PatientRef:
    pid = seg or msg.segment("PID")
    name = pid.name if pid is not None else "PID"
    if pid is None:
        raise HL7ParseError(REQUIRED_FIELD_MISSING, "PID segment is required", ErrorLocation("PID"))
    reps = pid.repetitions(field)
    chosen = 1
    for i in range(1, len(reps) + 1):
        if pid.value(field, 5, repetition=i) == "MR":
            chosen = i
            break
    mrn = pid.value(field, 1, repetition=chosen).strip()
    if not mrn:
        raise _missing(name, field, "patient identifier (CX-1)", 1)
    authority = pid.value(field, 4, repetition=chosen).strip() or msg.get("MSH-4.1").strip()
    return PatientRef(mrn=mrn, authority=authority or "UNKNOWN")


def facility_of(msg: Message) -> str:
    pv1 = msg.segment("PV1")
    return (pv1.value(3, 4).strip() if pv1 is not None else "") or msg.sending_facility.strip()


def _registration(msg: Message, cls: type[PatientRegistered]) -> PatientRegistered:
    pid = msg.segment("PID")
    assert pid is not None  # patient_of checked
    return cls(
        patient=patient_of(msg),
        family_name=pid.value(5, 1),
        given_name=pid.value(5, 2),
        birth_date=pid.value(7, 1)[:8],
        sex=pid.value(8, 1),
        account_number=pid.value(18, 1),
        facility=facility_of(msg),
    )


def _encounter_start(msg: Message) -> EncounterStarted:
    return EncounterStarted(
        patient=patient_of(msg),
        visit_number=msg.get("PV1-19.1") or msg.get("PID-18.1"),
        patient_class=msg.get("PV1-2.1"),
        facility=facility_of(msg),
        started_at=parse_ts(msg.get("PV1-44.1")) or parse_ts(msg.get("EVN-2.1")),
    )


def _amount(ft1: Segment, seq: int, currency: str) -> Money:
    """FT1-11 extended amount (CP: MO price = amount & denomination), else FT1-12 x FT1-10."""
    qty_text = ft1.value(10).strip() or "1"
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
            DATA_TYPE_ERROR, f"not a valid amount: {exc}", ErrorLocation("FT1", seq, field, 1)
        ) from exc
    return money * qty if multiply else money


def _charges(msg: Message, currency: str) -> list[Event]:
    patient = patient_of(msg)
    facility = facility_of(msg)
    pid, pv1 = msg.segment("PID"), msg.segment("PV1")
    account = pid.value(18) if pid is not None else ""
    visit = pv1.value(19) if pv1 is not None else ""
    out: list[Event] = []
    ft1s = msg.segments_named("FT1")
    if not ft1s:
        raise HL7ParseError(
            REQUIRED_FIELD_MISSING, "DFT^P03 needs at least one FT1 segment", ErrorLocation("FT1")
        )
    names = msg.segment_names
    if names.index("FT1") < names.index("PID"):
        raise HL7ParseError(
            SEGMENT_SEQUENCE_ERROR, "FT1 must follow PID in DFT^P03", ErrorLocation("FT1", 1)
        )
    for seq, ft1 in enumerate(ft1s, 1):
        ttype = ft1.value(6).strip().upper()
        if ttype not in ("CG", "CD"):
            raise HL7ParseError(
                TABLE_VALUE_NOT_FOUND,
                f"transaction type {ttype!r} is not supported (HL7 table 0017: CG or CD)",
                ErrorLocation("FT1", seq, 6),
            )
        code = ft1.value(7, 1).strip()
        if not code:
            raise _missing("FT1", 7, "transaction code (FT1-7)", 1)
        posted = ft1.value(4, 1) or ft1.value(5, 1)
        when = parse_date(posted)
        if when is None:
            raise HL7ParseError(
                DATA_TYPE_ERROR,
                "transaction date (FT1-4) is not a valid date",
                ErrorLocation("FT1", seq, 4, 1),
            )
        money = _amount(ft1, seq, currency)
        if money.amount < 0:  # a negative charge is a credit
            money, ttype = money.abs(), "CD"
        qty_text = ft1.value(10).strip() or "1"
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
            )
        )
    return out


def events_of(msg: Message, *, currency: str = "USD") -> list[Event]:
    """The finance events a message carries, or HL7ParseError saying why it can't be taken."""
    mtype, trigger = msg.message_type.strip().upper(), msg.trigger_event.strip().upper()
    if mtype not in SUPPORTED:
        raise HL7ParseError(
            UNSUPPORTED_MESSAGE_TYPE,
            f"message type {mtype!r} is not handled by this channel",
            ErrorLocation("MSH", 1, 9, 1),
        )
    if trigger not in SUPPORTED[mtype]:
        raise HL7ParseError(
            UNSUPPORTED_EVENT_CODE,
            f"{mtype}^{trigger} is not handled by this channel",
            ErrorLocation("MSH", 1, 9, 2),
        )
    if mtype == "DFT":
        return _charges(msg, currency)
    if mtype == "BAR":
        reg = _registration(msg, PatientRegistered)
        number = reg.account_number or msg.get("PV1-19.1")
        if not number:
            raise _missing("PID", 18, "patient account number (PID-18)", 1)
        return [
            reg,
            BillingAccountOpened(
                patient=reg.patient,
                account_number=number,
                facility=reg.facility,
                visit_number=msg.get("PV1-19.1"),
            ),
        ]
    if trigger in ("A01", "A04"):
        return [_registration(msg, PatientRegistered), _encounter_start(msg)]
    if trigger == "A05":
        return [_registration(msg, PatientRegistered)]
    if trigger == "A08":
        return [_registration(msg, PatientUpdated)]
    if trigger == "A03":
        return [
            EncounterDischarged(
                patient=patient_of(msg),
                visit_number=msg.get("PV1-19.1"),
                facility=facility_of(msg),
                discharged_at=parse_ts(msg.get("PV1-45.1")),
            )
        ]
    mrg = msg.segment("MRG")
    if mrg is None:
        raise HL7ParseError(
            REQUIRED_FIELD_MISSING, "ADT^A40 needs an MRG segment", ErrorLocation("MRG")
        )
    return [AccountsMerged(survivor=patient_of(msg), merged=patient_of(msg, mrg, 1))]


def event_key(event: Event) -> str:
    """The partition key: the patient, so each account's events stay in order.

    A merge is keyed on the merged (retired) patient: it must follow every earlier event of
    that account, because it moves that account's A/R, and every later event of that
    account resolves to the survivor anyway. Keyed on the survivor, the reclass amount would
    depend on how far the other partition had got.
    """
    if isinstance(event, AccountsMerged):
        return event.merged.key
    if isinstance(event, ClaimRemitted | ProviderAdjusted | ClaimSubmitted | RemittancePaid |
                  PatientPaymentSettled | ProcessorDeposited | BankDeposited):
        raise TypeError(f"{type(event).__name__} is keyed by formats.x12.events, not HL7")
    if not isinstance(event, PatientRegistered | EncounterStarted | EncounterDischarged |
                      BillingAccountOpened | Charge):
        raise TypeError(f"{type(event).__name__} is not keyed by a patient")
    return event.patient.key
