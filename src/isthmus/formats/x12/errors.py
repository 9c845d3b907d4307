"""The one error the X12 reader raises, and the TA1 interchange note codes it carries.

ASC X12 interchange control structures (X12.5, 005010): the ISA header is fixed length and
names the delimiters; when it cannot be read nothing after it can be either, so the reader
raises :class:`X12Error` and the inbox answers with a TA1 (see ``ack999.py``) built from it.
Everything found past a readable ISA (counts, control numbers, balancing) is reported as
data, as :class:`isthmus.formats.x12.finding.Finding`, never raised.

``code`` is a TA105 interchange note code (data element I18), so the error maps one to one
onto the TA1 segment sent back.
"""

from __future__ import annotations

from typing import Final

from isthmus.errors import ParseError

# TA105 (I18) interchange note codes, X12.5 005010.
NO_ERROR: Final = "000"
CONTROL_NUMBER_MISMATCH: Final = "001"
STANDARD_NOT_SUPPORTED: Final = "002"
VERSION_NOT_SUPPORTED: Final = "003"
INVALID_SEGMENT_TERMINATOR: Final = "004"
INVALID_SENDER_QUALIFIER: Final = "005"
INVALID_SENDER_ID: Final = "006"
INVALID_RECEIVER_QUALIFIER: Final = "007"
INVALID_RECEIVER_ID: Final = "008"
INVALID_AUTHORIZATION_QUALIFIER: Final = "010"
INVALID_AUTHORIZATION_VALUE: Final = "011"
INVALID_SECURITY_QUALIFIER: Final = "012"
INVALID_SECURITY_VALUE: Final = "013"
INVALID_DATE: Final = "014"
INVALID_TIME: Final = "015"
INVALID_STANDARDS_ID: Final = "016"
INVALID_VERSION_ID: Final = "017"
INVALID_CONTROL_NUMBER: Final = "018"
INVALID_ACK_REQUESTED: Final = "019"
INVALID_TEST_INDICATOR: Final = "020"
INVALID_GROUP_COUNT: Final = "021"
INVALID_CONTROL_STRUCTURE: Final = "022"
PREMATURE_END: Final = "023"
INVALID_CONTENT: Final = "024"
DUPLICATE_CONTROL_NUMBER: Final = "025"
INVALID_ELEMENT_SEPARATOR: Final = "026"
INVALID_COMPONENT_SEPARATOR: Final = "027"

TA105_NOTES: Final[dict[str, str]] = {
    "000": "No error",
    "001": "The Interchange Control Number in the Header and Trailer Do Not Match",
    "002": "This Standard as Noted in the Control Standards Identifier is Not Supported",
    "003": "This Version of the Controls is Not Supported",
    "004": "The Segment Terminator is Invalid",
    "005": "Invalid Interchange ID Qualifier for Sender",
    "006": "Invalid Interchange Sender ID",
    "007": "Invalid Interchange ID Qualifier for Receiver",
    "008": "Invalid Interchange Receiver ID",
    "010": "Invalid Authorization Information Qualifier Value",
    "011": "Invalid Authorization Information Value",
    "012": "Invalid Security Information Qualifier Value",
    "013": "Invalid Security Information Value",
    "014": "Invalid Interchange Date Value",
    "015": "Invalid Interchange Time Value",
    "016": "Invalid Interchange Standards Identifier Value",
    "017": "Invalid Interchange Version ID Value",
    "018": "Invalid Interchange Control Number Value",
    "019": "Invalid Acknowledgment Requested Value",
    "020": "Invalid Test Indicator Value",
    "021": "Invalid Number of Included Groups Value",
    "022": "Invalid Control Structure",
    "023": "Improper (Premature) End-of-File (Transmission)",
    "024": "Invalid Interchange Content (e.g., Invalid GS Segment)",
    "025": "Duplicate Interchange Control Number",
    "026": "Invalid Data Element Separator",
    "027": "Invalid Component Element Separator",
}


class X12Error(ParseError):
    """The interchange cannot be read; dead-letter it and answer with a rejecting TA1.

    ``code`` is a TA105 note code, ``segment_index`` the 0-based index of the offending
    segment in the interchange (0 is the ISA), ``segment_id`` its ID when known,
    ``element`` the 1-based element position (0 when not about one element) and ``text``
    a human readable explanation.
    """

    code: str
    segment_index: int
    segment_id: str
    element: int
    text: str

    def __init__(
        self, code: str, segment_index: int, segment_id: str, element: int, text: str
    ) -> None:
        super().__init__(code, segment_index, segment_id, element, text)
        self.code = code
        self.segment_index = segment_index
        self.segment_id = segment_id
        self.element = element
        self.text = text

    @property
    def note(self) -> str:
        """The TA105 description of ``code``."""
        return TA105_NOTES.get(self.code, "Unknown interchange note code")

    def __str__(self) -> str:
        where = f" at segment {self.segment_index}"
        if self.segment_id:
            where += f" {self.segment_id}"
            if self.element:
                where += f"{self.element:02d}"
        return f"X12 TA1 {self.code} {self.note}{where}: {self.text}"
