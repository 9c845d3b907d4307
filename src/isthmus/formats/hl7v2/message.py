"""A message: the segment lines of one HL7 v2 message, read lazily.

HL7 v2.5.1 chapter 2, 2.5 (message construction) and 2.14.9 (MSH). Parsing does the
minimum up front: decode, normalise segment terminators, check that the text starts with
MSH, read the delimiters from MSH-1/MSH-2, and check that every line looks like a segment
(a three character segment ID followed by the field separator). Segments are split into
fields at first read, and everything below a field only for the value asked for (see
``segment.py``), which is what makes this parser an order of magnitude faster than one that
builds the whole tree.

Batch and file envelopes (FHS/BHS/BTS/FTS, 2.10.3) and several messages in one text are
refused here with a clear error; ``batch.py`` reads those.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from isthmus.formats.hl7v2.encoding import EncodingChars, read_encoding
from isthmus.formats.hl7v2.errors import SEGMENT_SEQUENCE_ERROR, ErrorLocation, HL7ParseError
from isthmus.formats.hl7v2.escape import unescape
from isthmus.formats.hl7v2.path import parse_path
from isthmus.formats.hl7v2.segment import Segment
from isthmus.formats.hl7v2.text import decode, segment_lines

_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_VALID_IDS: set[str] = set()  # memo of IDs that passed the check (at most 26*36*36)
_ENVELOPE = frozenset({"FHS", "BHS", "BTS", "FTS", "MSH"})


class Message:
    """One parsed message. Build it with :func:`parse_message`."""

    __slots__ = ("_header", "_index", "_lines", "_named", "_segs", "encoding")

    def __init__(
        self, lines: list[str], encoding: EncodingChars, index: dict[str, list[int]] | None = None
    ) -> None:
        self._lines = lines
        self.encoding = encoding
        self._segs: list[Segment | None] = [None] * len(lines)
        self._index = index  # segment ID -> line numbers (made while the lines are checked)
        self._header: dict[tuple[int, int], str] = {}  # MSH values read, each read once
        self._named: dict[str, tuple[Segment, ...]] = {}

    def _at(self, i: int) -> Segment:
        seg = self._segs[i]
        if seg is None:
            seg = self._segs[i] = Segment(self._lines[i], self.encoding)
        return seg

    def _build_index(self) -> dict[str, list[int]]:
        index: dict[str, list[int]] = {}
        for i, line in enumerate(self._lines):
            name = line[:3]
            found = index.get(name)
            if found is None:
                index[name] = [i]
            else:
                found.append(i)
        self._index = index
        return index

    @property
    def raw(self) -> str:
        """The normalised text: every segment terminated by a carriage return."""
        return "\r".join(self._lines) + "\r"

    @property
    def segments(self) -> Sequence[Segment]:
        segs, lines, enc = self._segs, self._lines, self.encoding
        for i, seg in enumerate(segs):  # the ones not made yet, made now
            if seg is None:
                segs[i] = Segment(lines[i], enc)
        return tuple(segs)  # type: ignore[arg-type]  # none is None now

    @property
    def segment_names(self) -> list[str]:
        return [line[:3] for line in self._lines]

    def __len__(self) -> int:
        return len(self._lines)

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)

    def __repr__(self) -> str:
        return f"<Message {self.message_type}^{self.trigger_event} {self.control_id!r}>"

    def segment(self, name: str, occurrence: int = 1) -> Segment | None:
        """The ``occurrence``-th (1-based) segment with this ID, or None."""
        if name == "MSH" and occurrence == 1:
            return self._at(0)
        found = (self._index or self._build_index()).get(name)
        if found is None or not 0 < occurrence <= len(found):
            return None
        return self._at(found[occurrence - 1])

    def segments_named(self, name: str) -> tuple[Segment, ...]:
        named = self._named.get(name)
        if named is None:  # built once a name: FT1 and PID are read by several checks
            found = (self._index or self._build_index()).get(name, ())
            named = self._named[name] = tuple([self._at(i) for i in found])
        return named

    def get(self, path: str, default: str = "") -> str:
        """The unescaped value at ``path`` (e.g. "PID-3(2).1"), or ``default`` if empty.

        A path without component/subcomponent means the first one (see ``path.py``).
        Raises ValueError for a path that is not in the notation (a programming error).
        """
        p = parse_path(path)
        seg = self.segment(p.segment, p.occurrence)
        if seg is None:
            return default
        return seg.value(p.field, p.component, p.subcomponent, p.repetition) or default

    def _msh(self, field: int, component: int = 1) -> str:
        # the header is read a dozen times a message (identity, type, ownership, ACK)
        key = (field, component)
        found = self._header.get(key)
        if found is None:
            found = self._header[key] = self._at(0).value(field, component)
        return found

    @property
    def sending_application(self) -> str:
        """MSH-3.1 (HD namespace ID); the whole raw field is ``segment('MSH').field(3)``."""
        return self._msh(3)

    @property
    def sending_facility(self) -> str:
        return self._msh(4)

    @property
    def receiving_application(self) -> str:
        return self._msh(5)

    @property
    def receiving_facility(self) -> str:
        return self._msh(6)

    @property
    def timestamp(self) -> str:
        """MSH-7.1, the DTM text as sent (not interpreted: time zones vary by sender)."""
        return self._msh(7)

    @property
    def message_type(self) -> str:
        return self._msh(9, 1)

    @property
    def trigger_event(self) -> str:
        return self._msh(9, 2)

    @property
    def structure(self) -> str:
        return self._msh(9, 3)

    @property
    def control_id(self) -> str:
        """MSH-10, the whole field unescaped (an ST: a stray component separator in it is
        part of the ID, so two IDs never collide by truncation)."""
        raw = self._at(0).field(10)
        return unescape(raw, self.encoding) if self.encoding.escape in raw else raw

    @property
    def processing_id(self) -> str:
        return self._msh(11)

    @property
    def version(self) -> str:
        return self._msh(12)


def _bad_line(lines: list[str], i: int, fs: str) -> HL7ParseError:
    line = lines[i]
    name = line[:3]
    if name in _ENVELOPE:
        what = "another message" if name == "MSH" else f"a batch/file envelope ({name})"
        return HL7ParseError(
            SEGMENT_SEQUENCE_ERROR,
            f"segment {i + 1} starts {what}; use split_messages() or parse_batch()",
            ErrorLocation(name, 1),
        )
    return HL7ParseError(
        SEGMENT_SEQUENCE_ERROR,
        f"segment {i + 1} does not start with a segment ID and {fs!r}",
        ErrorLocation(name if line[3:4] in ("", fs) and _SEGMENT_ID.fullmatch(name) else "", 1),
    )


def message_from_lines(lines: list[str]) -> Message:
    """Build a Message from normalised non-blank lines (see ``text.segment_lines``)."""
    if not lines or lines[0][:3] != "MSH":
        first = lines[0][:3] if lines else ""
        raise HL7ParseError(
            SEGMENT_SEQUENCE_ERROR,
            "a message must start with MSH" if first else "empty message",
            ErrorLocation("MSH", 1),
        )
    enc = read_encoding(lines[0])
    fs = enc.field
    valid = _VALID_IDS
    index: dict[str, list[int]] = {"MSH": [0]}
    for i in range(1, len(lines)):
        line = lines[i]
        name = line[:3]
        if name in _ENVELOPE or (len(line) > 3 and line[3] != fs):
            raise _bad_line(lines, i, fs)
        if name not in valid:
            if _SEGMENT_ID.fullmatch(name) is None:
                raise _bad_line(lines, i, fs)
            valid.add(name)
        found = index.get(name)
        if found is None:
            index[name] = [i]
        else:
            found.append(i)
    return Message(lines, enc, index)


def parse_message(data: bytes | str) -> Message:
    """Parse one HL7 v2 message. Raises HL7ParseError, and nothing else, on bad input."""
    return message_from_lines(segment_lines(decode(data)))
