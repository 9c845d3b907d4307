"""A problem found in a readable interchange, as data, with where it is.

Findings are what the envelope checks (``envelope.py``) and the transaction readers
(``remit835.py``, ``claim837.py``) return instead of raising. Each carries the code of the
X12 acknowledgement code list of its level, so ``ack999.py`` can turn them into a TA1 or a
999 (005010X231A1) without interpretation:

* ``INTERCHANGE``: TA105 interchange note code (I18), reported in a TA1;
* ``GROUP``: AK905 functional group syntax error code (716), 999 loop 2000 AK9;
* ``TRANSACTION``: IK502 transaction set syntax error code (718), 999 IK5;
* ``SEGMENT``: IK304 segment syntax error code (620), 999 loop 2100 IK3;
* ``ELEMENT``: IK403 element syntax error code (621), 999 loop 2110 IK4;
* ``BALANCE``: an application (not syntax) finding, e.g. an 835 that does not balance
  (005010X221A1 section 1.10.2.1); never sent in a 999, routed to a work queue instead.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Final

import msgspec


class Level(StrEnum):
    """Where a finding is, which decides the acknowledgement code list it carries (module
    docstring)."""

    INTERCHANGE = "interchange"
    GROUP = "group"
    TRANSACTION = "transaction"
    SEGMENT = "segment"
    ELEMENT = "element"
    BALANCE = "balance"


class Finding(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One finding. Positions are 0 (or "") when they do not apply.

    ``segment_index`` is the 0-based index of the segment in the interchange (the ISA is
    0), ``position`` its 1-based position in its transaction set (ST is 1, as IK302
    counts), ``loop`` the implementation guide loop it sits in (IK303), ``element`` and
    ``component`` the 1-based position of the element (IK401), ``element_ref`` the X12 data
    element reference number (IK402) and ``value`` a copy of the bad data (IK404).
    ``difference`` is the amount by which a ``BALANCE`` finding is out.
    """

    level: Level
    code: str
    text: str
    segment_index: int = -1
    segment_id: str = ""
    position: int = 0
    loop: str = ""
    element: int = 0
    component: int = 0
    element_ref: str = ""
    value: str = ""
    difference: Decimal | None = None

    def __str__(self) -> str:
        where = ""
        if self.segment_id:
            where = f" {self.segment_id}"
            if self.element:
                where += f"{self.element:02d}"
                if self.component:
                    where += f"-{self.component}"
        if self.segment_index >= 0:
            where += f" (segment {self.segment_index})"
        return f"{self.level.value} {self.code}{where}: {self.text}"


# IK304 (620) segment syntax error codes.
IK3_UNRECOGNIZED: Final = "1"
IK3_UNEXPECTED: Final = "2"
IK3_REQUIRED_MISSING: Final = "3"
IK3_NOT_IN_SET: Final = "6"
IK3_OUT_OF_SEQUENCE: Final = "7"
IK3_ELEMENT_ERRORS: Final = "8"

# IK403 (621) implementation data element syntax error codes.
IK4_REQUIRED_MISSING: Final = "1"
IK4_CONDITIONAL_MISSING: Final = "2"
IK4_TOO_MANY_ELEMENTS: Final = "3"
IK4_TOO_SHORT: Final = "4"
IK4_TOO_LONG: Final = "5"
IK4_INVALID_CHARACTER: Final = "6"
IK4_INVALID_CODE: Final = "7"
IK4_INVALID_DATE: Final = "8"
IK4_INVALID_TIME: Final = "9"

# IK502 (718) transaction set syntax error codes.
IK5_NOT_SUPPORTED: Final = "1"
IK5_TRAILER_MISSING: Final = "2"
IK5_CONTROL_MISMATCH: Final = "3"
IK5_COUNT_MISMATCH: Final = "4"
IK5_SEGMENTS_IN_ERROR: Final = "5"
IK5_MISSING_ID: Final = "6"
IK5_MISSING_CONTROL: Final = "7"
IK5_CONTROL_NOT_UNIQUE: Final = "23"

# AK905 (716) functional group syntax error codes.
AK9_NOT_SUPPORTED: Final = "1"
AK9_VERSION_NOT_SUPPORTED: Final = "2"
AK9_TRAILER_MISSING: Final = "3"
AK9_CONTROL_MISMATCH: Final = "4"
AK9_COUNT_MISMATCH: Final = "5"
AK9_CONTROL_SYNTAX: Final = "6"
AK9_CONTROL_NOT_UNIQUE: Final = "19"

# Application findings (level BALANCE), not from an X12 code list.
CLAIM_UNBALANCED: Final = "CLAIM_UNBALANCED"
LINE_UNBALANCED: Final = "LINE_UNBALANCED"
PAYMENT_UNBALANCED: Final = "PAYMENT_UNBALANCED"
CHARGE_UNBALANCED: Final = "CHARGE_UNBALANCED"
