"""The one error a malformed HL7 v2 message can raise, and where in the message it is.

The parser never raises anything but :class:`HL7ParseError`: the inbox catches it, keeps the
bytes for inspection and answers the sender with an AE/AR acknowledgement built from it
(see ``ack.py``). Its fields map one to one onto the ERR segment of HL7 v2.5.1 chapter 2
(2.15.5): ``code`` is ERR-3 (HL7 table 0357, message error condition codes) and ``location``
is ERR-2 (data type ERL, error location).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from isthmus.errors import ParseError

# HL7 table 0357 - message error condition codes (v2.5.1).
SEGMENT_SEQUENCE_ERROR: Final = 100
REQUIRED_FIELD_MISSING: Final = 101
DATA_TYPE_ERROR: Final = 102
TABLE_VALUE_NOT_FOUND: Final = 103
UNSUPPORTED_MESSAGE_TYPE: Final = 200
UNSUPPORTED_EVENT_CODE: Final = 201
UNSUPPORTED_PROCESSING_ID: Final = 202
UNSUPPORTED_VERSION_ID: Final = 203
APPLICATION_INTERNAL_ERROR: Final = 207

TABLE_0357: Final[dict[int, str]] = {
    0: "Message accepted",
    100: "Segment sequence error",
    101: "Required field missing",
    102: "Data type error",
    103: "Table value not found",
    200: "Unsupported message type",
    201: "Unsupported event code",
    202: "Unsupported processing id",
    203: "Unsupported version id",
    204: "Unknown key identifier",
    205: "Duplicate key identifier",
    206: "Application record locked",
    207: "Application internal error",
}


@dataclass(frozen=True, slots=True)
class ErrorLocation:
    """ERR-2 (ERL): where the error is. Zero means "not applicable" and is sent empty.

    ERL components, in order: segment ID, segment sequence (1-based occurrence of that
    segment in the message), field position, field repetition, component number,
    sub-component number.
    """

    segment: str
    sequence: int = 1
    field: int = 0
    component: int = 0
    subcomponent: int = 0
    repetition: int = 0

    def components(self) -> list[str]:
        """The six ERL components as text, without escaping (callers escape)."""

        def num(n: int) -> str:
            return str(n) if n > 0 else ""

        return [
            self.segment,
            num(self.sequence),
            num(self.field),
            num(self.repetition),
            num(self.component),
            num(self.subcomponent),
        ]


# table 0357: unsupported message type, event code, processing id, version id
_REJECT_CODES: Final = frozenset({200, 201, 202, 203})


class HL7ParseError(ParseError):
    """The message cannot be read; dead-letter it and answer with a negative ACK.

    ``code`` is an HL7 table 0357 value, ``location`` the ERL of the offending element when
    known, ``text`` a human readable explanation (sent in ERR-8).

    ``text`` names the field and the rule it breaks, never the field's value: it is sent
    back in the ACK, kept in the inbox error column, written to `failed/*.error.txt` and
    shown to every role, and a misplaced value (a name in FT1-13, a card number in PID-18)
    is patient or card data. ``tests/governance/test_no_echo.py`` holds every raiser of
    the HL7 formats to it.
    """

    code: int
    location: ErrorLocation | None
    text: str

    def __init__(self, code: int, text: str, location: ErrorLocation | None = None) -> None:
        super().__init__(code, text, location)
        self.code = code
        self.text = text
        self.location = location
        # the tree's answer for this instance: ERR-3 is the table 0357 code; MSA-1 is AR
        # when the header is unusable or the message is not one taken (HL7 v2.5.1 2.9.2:
        # unsupported message type, event, processing id or version), else AE (the
        # message was understood, its content is in error)
        self.err_code = code
        header = location is None or location.segment == "MSH"
        self.ack_code = "AR" if header or code in _REJECT_CODES else "AE"

    @property
    def code_text(self) -> str:
        """The table 0357 description of ``code`` (ERR-3.2)."""
        return TABLE_0357.get(self.code, "Application internal error")

    def __str__(self) -> str:
        where = ""
        loc = self.location
        if loc is not None:
            where = f" at {loc.segment}"
            if loc.sequence > 1:
                where += f"({loc.sequence})"
            if loc.field:
                where += f"-{loc.field}"
        return f"HL7 {self.code} {self.code_text}{where}: {self.text}"
