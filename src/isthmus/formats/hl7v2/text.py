"""Message text: from received bytes to a list of segment lines.

HL7 v2.5.1 chapter 2, 2.5.2: every segment ends with a carriage return. Real senders and
files also use LF or CRLF, add a UTF-8 byte order mark, blank lines, or trailing blanks;
and MLLP framing bytes (VT, FS) may still be attached (they are whitespace to Python). This
module is the single place where that variety becomes one shape: a list of non-blank lines
that the message and batch readers split further.

Character set: HL7 v2.8 recommends UTF-8 (MSH-18 may say otherwise); bytes that are not
valid UTF-8 are read as Latin-1, which never fails, so no input is rejected for its bytes.
"""

from __future__ import annotations

import re
from typing import Final

# a blank or whitespace-only line between two others (`\s` is `str.isspace`, CR included)
_BLANK: Final = re.compile(r"\r\s*\r")


def decode(data: bytes | bytearray | memoryview | str) -> str:
    """Bytes to text (UTF-8, else Latin-1) without a leading byte order mark."""
    if isinstance(data, str):
        text = data
    else:
        raw = bytes(data)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
    if text[:1] == "\ufeff":
        text = text[1:]
    return text


def segment_lines(text: str) -> list[str]:
    """Split on CR, LF or CRLF; drop blank and whitespace-only lines.

    Whitespace around the whole text is stripped (as python-hl7 does); whitespace inside a
    segment, including at its end, is data and is kept.
    """
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    text = text.strip()
    lines = text.split("\r")
    if not text or _BLANK.search(text) is not None:
        return [s for s in lines if s and not s.isspace()]
    return lines
