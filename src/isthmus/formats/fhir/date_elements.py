"""Which FHIR R4 elements hold a date, and what a valid date, dateTime or instant is.

The tables `strict` checks a document against (issue 16): the regular expressions of the
three date types as FHIR R4 4.0.1 publishes them (2.24.0.0 primitive types,
https://hl7.org/fhir/R4/datatypes.html#primitive) plus a real calendar day (`valid_date`);
`DATE_ELEMENTS`, every element name that has a date type wherever FHIR R4(B) uses it; and
the data types that hold dates under names of their own (`start`/`end` of a Period and of
Appointment and Slot, Timing.event, Signature.when, Meta.lastUpdated: `IN_CONTEXT`), with
the elements of those types (`PERIOD_ELEMENTS`...). tests/formats/fhir/test_fhir_strict.py
derives the same lists from the R4B models of fhir.resources, so none is missing or wrong.
Long lists, alphabetical, one name a line: a name is found and added by reading down.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final

# FHIR R4 2.24.0.0: the regular expressions of date, dateTime and instant, as published.
_YEAR: Final = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_MONTH: Final = r"(0[1-9]|1[0-2])"
_DAY: Final = r"(0[1-9]|[1-2][0-9]|3[0-1])"
_TIME: Final = (
    r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
    r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
)
DATE: Final = re.compile(rf"{_YEAR}(-{_MONTH}(-{_DAY})?)?")
DATE_TIME: Final = re.compile(rf"{_YEAR}(-{_MONTH}(-{_DAY}(T{_TIME})?)?)?")
INSTANT: Final = re.compile(rf"{_YEAR}-{_MONTH}-{_DAY}T{_TIME}")

RULES: Final = {
    DATE: "is not a FHIR R4 date (YYYY, YYYY-MM or YYYY-MM-DD, a real day)",
    DATE_TIME: "is not a FHIR R4 dateTime (YYYY, YYYY-MM, YYYY-MM-DD or "
    "YYYY-MM-DDThh:mm:ss with a time zone, a real day)",
    INSTANT: "is not a FHIR R4 instant (YYYY-MM-DDThh:mm:ss with a time zone, a real day)",
}

# Element names whose type is a date wherever FHIR R4(B) defines them. A name typed date in
# one place and dateTime (or instant) in another takes DATE_TIME, which every valid value
# of those types matches; a name that is also a string, code or number somewhere is not
# here (start, end, when, event, value... are checked in their context below).
_DATE_ONLY: Final = (
    "answerDate",
    "approvalDate",
    "birthDate",
    "bornDate",
    "deceasedDate",
    "defaultValueDate",
    "dueDate",
    "fixedDate",
    "lastReviewDate",
    "lockedDate",
    "maxValueDate",
    "minValueDate",
    "nextScheduled",
    "patternDate",
    "servicedDate",
    "startDate",
    "timingDate",
    "valueDate",
)
_INSTANT_ONLY: Final = (
    "defaultValueInstant",
    "effectiveInstant",
    "fixedInstant",
    "ifModifiedSince",
    "maxValueInstant",
    "minValueInstant",
    "patternInstant",
    "valueInstant",
)
_DATE_TIME: Final = (
    "abatementDateTime",
    "answerDateTime",
    "articleDate",
    "authored",
    "authoredOn",
    "collectedDateTime",
    "created",
    "createdDateTime",
    "creation",
    "date",
    "dateAccessed",
    "dateAsserted",
    "dateDateTime",
    "dateTime",
    "dateWritten",
    "deceasedDateTime",
    "defaultValueDateTime",
    "detected",
    "effectiveDateTime",
    "effectiveTime",
    "enteredDate",
    "expirationDate",
    "expiry",
    "fixedDateTime",
    "identifiedDateTime",
    "issued",
    "lastModified",
    "lastOccurrence",
    "lastPerformed",
    "lastRevisionDate",
    "lastUpdated",
    "manufactureDate",
    "maxValueDateTime",
    "minValueDateTime",
    "occurredDateTime",
    "occurrenceDateTime",
    "onset",
    "onsetDateTime",
    "participantEffectiveDateTime",
    "patternDateTime",
    "paymentDate",
    "performedDateTime",
    "presentationDate",
    "publicationDate",
    "received",
    "receivedTime",
    "recorded",
    "recordedDate",
    "recordedOn",
    "releaseDate",
    "restoreDate",
    "sent",
    "started",
    "studyEffectiveDateTime",
    "time",
    "timeDateTime",
    "timestamp",
    "timingDateTime",
    "useBy",
    "validTo",
    "validationDate",
    "valueDateTime",
    "verificationDate",
    "whenHandedOver",
    "whenPrepared",
)
DATE_ELEMENTS: Final[dict[str, re.Pattern[str]]] = {
    **dict.fromkeys(_DATE_ONLY, DATE),
    **dict.fromkeys(_INSTANT_ONLY, INSTANT),
    **dict.fromkeys(_DATE_TIME, DATE_TIME),
}

# Elements of type Period (start and end are dateTimes) and of the types holding a date
# under a name that is not a date elsewhere: Timing.event, Signature.when. `period` and
# `duration` are also a Duration (no start, no end) or a number, never an object with a
# start of another type.
PERIOD_ELEMENTS: Final = frozenset(
    {
        "abatementPeriod",
        "applies",
        "benefitPeriod",
        "billablePeriod",
        "bornPeriod",
        "boundsPeriod",
        "collectedPeriod",
        "createdPeriod",
        "dataPeriod",
        "datePeriod",
        "dateRange",
        "defaultValuePeriod",
        "during",
        "duration",
        "effectiveDate",
        "effectivePeriod",
        "executionPeriod",
        "fixedPeriod",
        "identifiedPeriod",
        "occurredPeriod",
        "occurrencePeriod",
        "onsetPeriod",
        "participantEffectivePeriod",
        "patternPeriod",
        "performedPeriod",
        "period",
        "planningHorizon",
        "preAuthPeriod",
        "preAuthRefPeriod",
        "requestedPeriod",
        "scheduledPeriod",
        "servicePeriod",
        "servicedPeriod",
        "studyEffectivePeriod",
        "timePeriod",
        "timingPeriod",
        "usePeriod",
        "validityPeriod",
        "valuePeriod",
        "whenPeriod",
    }
)
TIMING_ELEMENTS: Final = frozenset(
    {
        "defaultValueTiming",
        "effectiveTiming",
        "fixedTiming",
        "measurementPeriod",
        "occurrenceTiming",
        "participantEffectiveTiming",
        "patternTiming",
        "schedule",
        "scheduledTiming",
        "studyEffectiveTiming",
        "timing",
        "timingTiming",
        "valueTiming",
    }
)
SIGNATURE_ELEMENTS: Final = frozenset(
    {
        "attestationSignature",
        "defaultValueSignature",
        "fixedSignature",
        "patternSignature",
        "proxySignature",
        "signature",
        "sourceSignature",
        "valueSignature",
    }
)
META_ELEMENTS: Final = frozenset({"defaultValueMeta", "meta", "valueMeta"})
IN_CONTEXT: Final[dict[str, dict[str, re.Pattern[str]]]] = {
    "Period": {"start": DATE_TIME, "end": DATE_TIME},
    "Meta": {"lastUpdated": INSTANT},  # a dateTime elsewhere (R4 2.24.0.0 Meta)
    "Timing": {"event": DATE_TIME},
    "Signature": {"when": INSTANT},
    # resources whose own start/end are instants (R4 12.10 Appointment, 12.12 Slot)
    "Appointment": {"start": INSTANT, "end": INSTANT},
    "Slot": {"start": INSTANT, "end": INSTANT},
}


def valid_date(value: str, pattern: re.Pattern[str]) -> bool:
    """`value` matches the R4 expression of its type and names a real calendar day."""
    if not pattern.fullmatch(value):
        return False
    if len(value) < 10:
        return True  # a year or a year and month: nothing more to check
    try:
        date.fromisoformat(value[:10])
    except ValueError:
        return False
    return True


# the data type an element's object is, when it holds dates under names of its own
CONTEXT_OF: Final[dict[str, str]] = {
    **dict.fromkeys(PERIOD_ELEMENTS, "Period"),
    **dict.fromkeys(TIMING_ELEMENTS, "Timing"),
    **dict.fromkeys(SIGNATURE_ELEMENTS, "Signature"),
    **dict.fromkeys(META_ELEMENTS, "Meta"),
}
