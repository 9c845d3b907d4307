"""What BAR and DFT messages say about the billing account (pure), HL7 v2.5.1 chapter 6.

- IN1 insurance (6.5.6) and PV1-20 financial class: CoverageRecorded, the payer and plan of
  the account (IN1-2 plan id, IN1-3 company id, IN1-4 company name, IN1-15 plan type).
  IN2 (6.5.7) carries the insured's employment and identifiers: PHI, not read.
- DG1 diagnosis (6.5.2: DG1-3 code, DG1-6 type) and PR1 procedures (6.5.4: PR1-3):
  ClinicalCodesRecorded, kept with the visit for claims (BAR P12, and the groups of BAR P01
  / P05 and DFT P11).
- BAR P02 purge patient accounts (6.4.2) and P06 end account (6.4.6): BillingAccountClosed,
  one per PID group; the account is PID-18, else PV1-19.
"""

from __future__ import annotations

from isthmus.formats.hl7v2.message import Message
from isthmus.formats.hl7v2.reading import event_time, missing, patient_of
from isthmus.formats.hl7v2.segment import Segment
from isthmus.model import Event, PatientRef
from isthmus.model.events import (
    BillingAccountClosed,
    ClinicalCodesRecorded,
    CodedEntry,
    Coverage,
    CoverageRecorded,
)


def _coded(seg: Segment, field: int, kind_field: int = 0) -> CodedEntry | None:
    code = seg.value(field, 1).strip()
    if not code:
        return None
    return CodedEntry(
        code=code,
        system=seg.value(field, 3).strip(),
        kind=seg.value(kind_field, 1).strip() if kind_field else "",
    )


def account_facts(msg: Message, patient: PatientRef, account: str, visit: str) -> list[Event]:
    """The coverage and the clinical codes a message carries, when it carries any."""
    out: list[Event] = []
    in1s, dg1s = msg.segments_named("IN1"), msg.segments_named("DG1")
    pr1s = msg.segments_named("PR1")
    if in1s and account:
        financial_class = msg.get("PV1-20.1").strip()
        plans = tuple(
            Coverage(
                plan_id=in1.value(2, 1).strip(),
                payer_id=in1.value(3, 1).strip(),
                payer_name=in1.value(4, 1).strip(),
                plan_type=in1.value(15, 1).strip(),
                financial_class=financial_class,
            )
            for in1 in in1s
        )
        out.append(CoverageRecorded(patient=patient, account_number=account, plans=plans))
    if not (dg1s or pr1s):  # most charge messages carry neither
        return out
    diagnoses = tuple(c for c in (_coded(s, 3, 6) for s in dg1s) if c)
    procedures = tuple(c for c in (_coded(s, 3) for s in pr1s) if c)
    if diagnoses or procedures:
        out.append(
            ClinicalCodesRecorded(
                patient=patient,
                visit_number=visit,
                account_number=account,
                diagnoses=diagnoses,
                procedures=procedures,
            )
        )
    return out


def closed_accounts(msg: Message, purged: bool) -> list[Event]:
    """P02 / P06: each PID group's account (PID-18, else the PV1-19 that follows it)."""
    out: list[Event] = []
    pv1s = msg.segments_named("PV1")
    for i, pid in enumerate(msg.segments_named("PID")):
        number = pid.value(18, 1).strip() or (pv1s[i].value(19, 1).strip() if i < len(pv1s) else "")
        if not number:
            raise missing("PID", 18, "patient account number (PID-18)", 1)
        out.append(
            BillingAccountClosed(
                patient=patient_of(msg, pid),
                account_number=number,
                purged=purged,
                at=event_time(msg),
            )
        )
    if not out:
        raise missing("PID", 3, "a PID segment")
    return out
