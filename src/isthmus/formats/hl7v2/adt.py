"""ADT visit and identifier events -> canonical events (pure), HL7 v2.5.1 chapter 3.

- A01 admit, A04 register: the visit's first location (`location_of`, read by
  `formats.hl7v2.events` into EncounterStarted).
- A02 transfer (3.3.2), A12 cancel transfer (3.3.12): EncounterTransferred, the new
  location PV1-3 (PL-1 point of care; department = PL-1, else PV1-10 hospital service).
- A17 swap patients (3.3.17): two PID/PV1 pairs, one EncounterTransferred each.
- A06 / A07 change patient class (3.3.6, 3.3.7): PatientClassChanged (PV1-2, table 0004).
- A11 cancel admit, A13 cancel discharge, A14 pending admit, A15 pending transfer, A16
  pending discharge, A25 cancel pending discharge, A26 cancel pending transfer, A27 cancel
  pending admit, A38 cancel pre-admit: VisitEventRecorded.
- A29 delete person information (3.3.29): PatientDeleted.
- A41 merge account, A42 merge visit, A44 move account, A45 move visit, A47 change patient
  identifier list, A49 change patient account number, A50 change visit number, A51 change
  alternate visit id: IdentifiersMoved, read from MRG (MRG-1 prior patient identifier list,
  MRG-3 prior account number, MRG-5 prior visit number); MRG-less messages are still taken.
"""

from __future__ import annotations

from isthmus.formats.hl7v2.message import Message
from isthmus.formats.hl7v2.reading import (
    event_time,
    facility_of,
    patient_of,
    visit_of,
)
from isthmus.formats.hl7v2.segment import Segment
from isthmus.model import Event, PatientRef
from isthmus.model.events import (
    EncounterTransferred,
    IdentifiersMoved,
    PatientClassChanged,
    PatientDeleted,
    VisitEventRecorded,
)

TRANSFERS = frozenset({"A02", "A12"})
CLASS_CHANGES = frozenset({"A06", "A07"})
VISIT_RECORDS = frozenset({"A11", "A13", "A14", "A15", "A16", "A25", "A26", "A27", "A38"})
IDENTIFIER_MOVES = frozenset({"A41", "A42", "A44", "A45", "A47", "A49", "A50", "A51"})


def location_of(pv1: Segment | None) -> tuple[str, str]:
    """(location, department) of a PV1: PV1-3 PL-1 point of care; the department is that
    location, else PV1-10 hospital service (the key of [mappings.department_cost_center])."""
    location = pv1.value(3, 1).strip() if pv1 is not None else ""
    service = pv1.value(10, 1).strip() if pv1 is not None else ""
    return location, location or service


def _transfer(
    msg: Message, trigger: str, pid: Segment | None = None, pv1: Segment | None = None
) -> EncounterTransferred:
    pv1 = pv1 or msg.segment("PV1")
    location, department = location_of(pv1)
    return EncounterTransferred(
        patient=patient_of(msg, pid),
        visit_number=visit_of(msg, pv1, pid),
        location=location,
        department=department,
        facility=facility_of(msg),
        at=event_time(msg),
        trigger=trigger,
        cancelled=trigger == "A12",
    )


def _swap(msg: Message) -> list[Event]:
    """A17: PID, PV1 of the first patient, then PID, PV1 of the second."""
    pids, pv1s = msg.segments_named("PID"), msg.segments_named("PV1")
    return [_transfer(msg, "A17", pid, pv1) for pid, pv1 in zip(pids, pv1s, strict=False)]


def _moved(msg: Message, trigger: str) -> IdentifiersMoved:
    mrg = msg.segment("MRG")
    prior: PatientRef | None = None
    if mrg is not None and mrg.value(1, 1).strip():
        prior = patient_of(msg, mrg, 1)
    return IdentifiersMoved(
        trigger=trigger,
        patient=patient_of(msg),
        prior_patient=prior,
        prior_account=mrg.value(3, 1).strip() if mrg is not None else "",
        prior_visit=mrg.value(5, 1).strip() if mrg is not None else "",
        account_number=msg.get("PID-18.1").strip(),
        visit_number=msg.get("PV1-19.1").strip(),
    )


def adt_events(msg: Message, trigger: str) -> list[Event] | None:
    """The events of the ADT triggers this module reads; None for the others."""
    if trigger in TRANSFERS:
        return [_transfer(msg, trigger)]
    if trigger == "A17":
        return _swap(msg)
    if trigger in CLASS_CHANGES:
        return [
            PatientClassChanged(
                patient=patient_of(msg),
                visit_number=visit_of(msg),
                patient_class=msg.get("PV1-2.1").strip(),
                facility=facility_of(msg),
                at=event_time(msg),
                trigger=trigger,
            )
        ]
    if trigger in VISIT_RECORDS:
        return [
            VisitEventRecorded(
                patient=patient_of(msg),
                visit_number=visit_of(msg),
                trigger=trigger,
                facility=facility_of(msg),
                at=event_time(msg),
            )
        ]
    if trigger == "A29":
        return [PatientDeleted(patient=patient_of(msg))]
    if trigger in IDENTIFIER_MOVES:
        return [_moved(msg, trigger)]
    return None
