"""Encoding characters: the delimiters a message declares for itself in MSH-1 and MSH-2.

HL7 v2.5.1 chapter 2, 2.5.4 (message delimiters) and 2.14.9.1/2.14.9.2 (MSH-1 field
separator, MSH-2 encoding characters: component, repetition, escape, subcomponent, in that
order). HL7 v2.7 added an optional fifth MSH-2 character, the truncation character (usually
``#``). Senders may choose any characters, so nothing downstream may assume ``|^~\\&``.
"""

from __future__ import annotations

from dataclasses import dataclass

from isthmus.formats.hl7v2.errors import (
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    ErrorLocation,
    HL7ParseError,
)

#: Segments whose field 1 is the field separator and field 2 the encoding characters.
HEADER_SEGMENTS = frozenset({"MSH", "BHS", "FHS"})


@dataclass(frozen=True, slots=True)
class EncodingChars:
    """The delimiters of one message. ``truncation`` is "" before v2.7."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""

    @property
    def msh2(self) -> str:
        """MSH-2 as it is written in the header segment."""
        return self.component + self.repetition + self.escape + self.subcomponent + self.truncation


DEFAULT_ENCODING = EncodingChars()


def _bad(code: int, segment: str, field: int, text: str) -> HL7ParseError:
    return HL7ParseError(code, text, ErrorLocation(segment, 1, field))


def read_encoding(header: str) -> EncodingChars:
    """Read the delimiters from a header segment (MSH, BHS or FHS) without splitting it.

    Missing trailing MSH-2 characters take their HL7 defaults, as receivers commonly do.
    Raises HL7ParseError when the delimiters are absent, repeated, or letters/digits/blank.
    """
    name = header[:3]
    if len(header) < 5:
        raise _bad(REQUIRED_FIELD_MISSING, name, 2, f"{name} is too short to hold MSH-1/MSH-2")
    fs = header[3]
    end = header.find(fs, 4)
    msh2 = header[4:] if end < 0 else header[4:end]
    if not msh2:
        raise _bad(REQUIRED_FIELD_MISSING, name, 2, f"{name}-2 encoding characters are empty")
    if len(msh2) > 5:
        raise _bad(
            DATA_TYPE_ERROR, name, 2, f"{name}-2 has {len(msh2)} encoding characters, at most 5"
        )
    if msh2 == "^~\\&" and fs == "|":
        return DEFAULT_ENCODING
    chars = list(msh2) + list("^~\\&"[len(msh2) :])
    enc = EncodingChars(
        field=fs,
        component=chars[0],
        repetition=chars[1],
        escape=chars[2],
        subcomponent=chars[3],
        truncation=chars[4] if len(chars) > 4 else "",
    )
    used = fs + enc.msh2
    for ch in used:
        if ch.isalnum() or ch.isspace() or not ch.isprintable():
            raise _bad(
                DATA_TYPE_ERROR,
                name,
                1 if ch == fs else 2,
                f"{name} delimiter {ch!r} is a letter, digit, blank or control character",
            )
    if len(set(used)) != len(used):
        raise _bad(DATA_TYPE_ERROR, name, 2, f"{name} delimiters {used!r} are not distinct")
    return enc
