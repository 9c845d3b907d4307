"""ASC X12 (HIPAA 005010) interchanges: reader, envelope checks, 835, 837, 999 and TA1.

* ``reader``: segments and delimiters from the ISA (X12.5/X12.6), lazy element splitting;
* ``envelope``: ISA/IEA, GS/GE, ST/SE counts and control numbers, as findings;
* ``remit835``: 005010X221A1 claim payment/advice to canonical remittances, balanced
  per section 1.10.2.1 (structs in ``remittance``);
* ``claim837``: 005010X222A2 / X223A3 (and 004010 X098A1 / X096A1) claims to claim
  register entries;
* ``ack999``: 005010X231A1 999 and TA1 acknowledgements built from findings;
* ``stream``: large files block by block, transaction sets and 835s one at a time with
  memory bounded by a set, the envelope checked across the whole interchange.

Pure functions, no I/O. :func:`read`, :func:`parse_835` and :func:`parse_837` raise
:class:`X12Error` (interchange unreadable, with its TA105 code) and nothing else; every
other problem is a :class:`Finding`.
"""

from isthmus.formats.x12.ack999 import build_999, build_ta1, recover_isa, ta1_note
from isthmus.formats.x12.claim837 import ClaimBatch, ClaimEntry, ClaimLine, parse_837
from isthmus.formats.x12.elements import Procedure
from isthmus.formats.x12.envelope import Envelope, GroupSpan, TransactionSpan, check_envelope
from isthmus.formats.x12.errors import TA105_NOTES, X12Error
from isthmus.formats.x12.finding import Finding, Level
from isthmus.formats.x12.reader import Delimiters, Interchange, Segment, read
from isthmus.formats.x12.remit835 import parse_835, read_remittance
from isthmus.formats.x12.remittance import (
    Adjustment,
    AmountValue,
    Claim,
    DateValue,
    Party,
    Person,
    ProviderAdjustment,
    Reference,
    Remittance,
    RemittanceBatch,
    ServiceLine,
)
from isthmus.formats.x12.stream import TransactionSet, X12Stream

__all__ = [
    "TA105_NOTES",
    "Adjustment",
    "AmountValue",
    "Claim",
    "ClaimBatch",
    "ClaimEntry",
    "ClaimLine",
    "DateValue",
    "Delimiters",
    "Envelope",
    "Finding",
    "GroupSpan",
    "Interchange",
    "Level",
    "Party",
    "Person",
    "Procedure",
    "ProviderAdjustment",
    "Reference",
    "Remittance",
    "RemittanceBatch",
    "Segment",
    "ServiceLine",
    "TransactionSet",
    "TransactionSpan",
    "X12Error",
    "X12Stream",
    "build_999",
    "build_ta1",
    "check_envelope",
    "parse_835",
    "parse_837",
    "read",
    "read_remittance",
    "recover_isa",
    "ta1_note",
]
