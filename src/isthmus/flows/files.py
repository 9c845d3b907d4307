"""Files taken once through the inbox (`isthmus ingest`): what each one is and what it says.

The decisions here are pure: bytes in; the inbox record, its events and the acknowledgement
to write out come back as data. The shell (`flows.file_intake`) stores them
(`Store.accept`, idempotent on the channel and control id), writes the acknowledgement file
and relays the events.

* X12 (starts with ISA): one inbox record per interchange, answered by a 999 or TA1, an
  835 that does not balance held: see `flows.interchanges`.
* HL7 v2 (MSH, or a batch with FHS/BHS): split into messages, each classified exactly as
  the MLLP listener does (`hl7_inbound.classify`) on the same channel, so a message resent as a
  file is a duplicate of the one that came over MLLP, never a second posting.
* FHIR JSON, a Bundle or a resource: see `flows.fhir_intake`.
* Settlement and bank deposit CSV (told apart by their header): see
  `flows.settlement_intake`.
* Supply usage CSV (a usage id, item and quantity column): see `flows.supply_intake`.
* Workforce timecards, CSV or JSON (`formats.workforce.timecard.detect`): see
  `flows.labor_intake`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from isthmus.flows.hl7_inbound import classify
from isthmus.formats.hl7v2 import HL7ParseError, split_messages
from isthmus.formats.settlement import detect as csv_kind
from isthmus.formats.supply.usage import looks_like_usage
from isthmus.formats.workforce import detect as is_timecard
from isthmus.governance import ownership
from isthmus.store.ports import Inbound

X12: Final = "x12"
HL7: Final = "hl7"
FHIR: Final = "fhir"
UNKNOWN: Final = "unknown"
TIMECARD: Final = "timecard"
USAGE: Final = "supply-usage"


def detect(data: bytes) -> str:
    """ "x12" (ISA), "hl7" (MSH, FHS or BHS) or "unknown", from the first bytes."""
    head = data[:16].lstrip(b"\xef\xbb\xbf \t\r\n\x00")
    if head.startswith(b"ISA"):
        return X12
    if head[:3] in (b"MSH", b"FHS", b"BHS"):
        return HL7
    if is_timecard(data):  # CSV or JSON timecards of a workforce feed (flows.labor_intake)
        return TIMECARD
    if head.startswith(b"{"):  # JSON: a FHIR Bundle or resource (flows.fhir_intake)
        return FHIR
    if looks_like_usage(data):  # a supply usage CSV (flows.supply_intake)
        return USAGE
    return csv_kind(data) or UNKNOWN


def hl7_intake(
    raw: bytes,
    *,
    channel: str,
    peer: str,
    now: float,
    tenant: str,
    currency: str,
    owners: ownership.Owners | None = None,
    messages: Mapping[str, str] | None = None,
) -> list[Inbound]:
    """Every message of an HL7 v2 file or batch, classified as the MLLP inbox does (same
    identity, gates and envelopes); the shell stores them and settles a reused identity
    with `inbox.settle`, as the MLLP writer does. Raises HL7ParseError when the file has
    data before its first MSH."""
    return [
        classify(
            text.encode("utf-8"),
            channel=channel,
            peer=peer,
            now=now,
            tenant=tenant,
            currency=currency,
            owners=owners,
            messages=messages,
        )[0]
        for text in split_messages(raw)
    ]


__all__ = [
    "FHIR",
    "HL7",
    "TIMECARD",
    "UNKNOWN",
    "USAGE",
    "X12",
    "HL7ParseError",
    "detect",
    "hl7_intake",
]
