"""X12 segment reader: delimiters from the ISA, segments split into elements lazily.

ASC X12.5/X12.6 (005010) interchange control: the ISA segment is fixed length (106
characters) and defines the delimiters by example. The element separator is the character
right after "ISA", the repetition separator is ISA11 (from version 00501 on; in 00401
ISA11 is the standards identifier "U" and there is none), the component separator is
ISA16 and the segment terminator is the character that follows ISA16, whatever it is.

Tolerated, as real senders produce them: CR/LF after each terminator, and files wrapped
at a fixed width (lines of 80 characters with line breaks anywhere, even inside the ISA);
both are removed when the terminator is not itself CR or LF. When it is, CR LF pairs and
blank lines are accepted. A last segment without its terminator (a truncated file) is kept
and flagged (``Interchange.unterminated``) for the envelope checks to report.

Laziness, as in ``formats/hl7v2/segment.py``: reading only cuts the text into segment
strings; a :class:`Segment` splits its elements at the first read, and components and
repetitions only for the value asked for. The transaction readers split the raw strings
themselves on the hot path. :func:`read` raises :class:`X12Error` and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from isthmus.formats.x12 import errors
from isthmus.formats.x12.errors import X12Error

ISA_LENGTH = 106
_CRLF = "\r\n"
_ISA_WINDOW = 512  # enough for an ISA whose fields are longer than they should be


@dataclass(frozen=True, slots=True)
class Delimiters:  # one instance per distinct set, cached by read()
    """The four delimiters of an interchange; ``repetition`` is "" when there is none."""

    element: str = "*"
    repetition: str = "^"
    component: str = ":"
    segment: str = "~"


class Segment:
    """One segment. ``raw`` is its text without the terminator; elements split on demand.

    Elements are numbered as the standard does: ``element(1)`` is ISA01, CLP01, ...
    and ``element(0)`` is the segment ID. ISA elements are never split further (ISA11 and
    ISA16 are delimiters themselves).
    """

    __slots__ = ("_delims", "_elements", "index", "raw")

    def __init__(self, raw: str, delimiters: Delimiters, index: int = 0) -> None:
        self.raw = raw
        self.index = index
        self._delims = delimiters
        self._elements: list[str] | None = None

    def _split(self) -> list[str]:
        parts = self.raw.split(self._delims.element)
        self._elements = parts
        return parts

    @property
    def id(self) -> str:
        return (self._elements or self._split())[0]

    def __len__(self) -> int:
        """Number of elements present, the segment ID excluded."""
        return len(self._elements or self._split()) - 1

    def __repr__(self) -> str:
        return f"Segment({self.raw!r})"

    def element(self, n: int) -> str:
        """Element ``n`` as received; "" when absent."""
        e = self._elements or self._split()
        return e[n] if 0 <= n < len(e) else ""

    def elements(self) -> list[str]:
        """All elements, element 1 first."""
        return (self._elements or self._split())[1:]

    def repetitions(self, n: int) -> list[str]:
        """The repetitions of element ``n``; [] when it is empty."""
        v = self.element(n)
        if not v:
            return []
        rs = self._delims.repetition
        if not rs or rs not in v or self.id == "ISA":
            return [v]
        return v.split(rs)

    def components(self, n: int, repetition: int = 1) -> list[str]:
        """The components of one repetition of element ``n``; [] when it is empty."""
        reps = self.repetitions(n)
        if not 0 < repetition <= len(reps):
            return []
        v = reps[repetition - 1]
        if self.id == "ISA":
            return [v]
        return v.split(self._delims.component)

    def value(self, n: int, component: int = 1, repetition: int = 1) -> str:
        """One component of one repetition of element ``n`` (1-based); "" when absent."""
        comps = self.components(n, repetition)
        return comps[component - 1] if 0 < component <= len(comps) else ""


class Interchange:
    """The segments of one transmission, from the ISA on, and its delimiters.

    ``raw`` holds the segment texts (terminators removed); ``isa`` the ISA elements,
    ``isa[1]`` being ISA01. Indexing yields :class:`Segment` objects, built on demand.
    ``unterminated`` is true when the last segment had no terminator (truncated data).
    """

    __slots__ = ("_segments", "delimiters", "isa", "isa_length", "raw", "unterminated")

    def __init__(
        self,
        raw: list[str],
        delimiters: Delimiters,
        isa: list[str],
        *,
        unterminated: bool = False,
        isa_length: int = ISA_LENGTH,
    ) -> None:
        self.raw = raw
        self.delimiters = delimiters
        self.isa = isa
        self.unterminated = unterminated
        self.isa_length = isa_length
        self._segments: dict[int, Segment] = {}

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, i: int) -> Segment:
        if i < 0:
            i += len(self.raw)
        seg = self._segments.get(i)
        if seg is None:
            seg = self._segments[i] = Segment(self.raw[i], self.delimiters, i)
        return seg

    def __iter__(self) -> Iterator[Segment]:
        for i in range(len(self.raw)):
            yield self[i]

    @property
    def control_number(self) -> str:
        """ISA13."""
        return self.isa[13] if len(self.isa) > 13 else ""

    @property
    def version(self) -> str:
        """ISA12, the interchange control version number (00401, 00501)."""
        return self.isa[12] if len(self.isa) > 12 else ""


_DELIMITERS: dict[tuple[str, str, str, str], Delimiters] = {}


def decode(data: bytes | str) -> str:
    """UTF-8 when it is (the extended character set), Latin-1 otherwise: never fails."""
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read(data: bytes | str) -> Interchange:  # noqa: C901 - the segment reader's state machine
    """Cut an interchange into segments. Raises :class:`X12Error` when the ISA is unusable."""
    text = decode(data)
    if text[:3] != "ISA":
        text = text.lstrip("\ufeff \t\r\n\x00")
        if not text:
            raise X12Error(errors.PREMATURE_END, 0, "", 0, "no data")
        if text[:3] != "ISA":
            raise X12Error(
                errors.INVALID_CONTROL_STRUCTURE, 0, text[:3], 0, "data does not begin with ISA"
            )
    if len(text) < 5:
        raise X12Error(errors.PREMATURE_END, 0, "ISA", 0, "ISA segment is cut short")
    es = text[3]
    if es.isalnum() or es in " \r\n":
        raise X12Error(
            errors.INVALID_ELEMENT_SEPARATOR, 0, "ISA", 0, f"element separator {es!r} is invalid"
        )
    window = text[: ISA_LENGTH + 40]
    wrapped = "\n" in window or "\r" in window
    head = text.replace("\r", "").replace("\n", "") if wrapped else text
    parts = head[:_ISA_WINDOW].split(es, 16)
    if len(parts) < 17 or len(parts[16]) < (1 if wrapped else 2):
        raise X12Error(errors.PREMATURE_END, 0, "ISA", 0, "ISA segment is cut short")
    cs = parts[16][0]
    term = parts[16][1:2]
    if wrapped and (not term or term.isalnum() or term == es):
        # nothing between ISA16 and the next segment once line breaks are gone:
        # the line break was the terminator
        term = "\n"
    if cs.isalnum() or cs in (es, " ") or cs in _CRLF:
        raise X12Error(
            errors.INVALID_COMPONENT_SEPARATOR,
            0,
            "ISA",
            16,
            f"component separator {cs!r} is invalid",
        )
    if term.isalnum() or term in (es, cs, " "):
        raise X12Error(
            errors.INVALID_SEGMENT_TERMINATOR,
            0,
            "ISA",
            0,
            f"segment terminator {term!r} is invalid",
        )
    if term in _CRLF:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        segs = text.split("\n")
        if "" in segs:
            segs = [s for s in segs if s]
        unterminated = not text.endswith("\n")
    else:
        if "\n" in text or "\r" in text:
            text = head if wrapped else text.replace("\r", "").replace("\n", "")
        segs = text.split(term)
        tail = segs.pop()
        if "" in segs:
            segs = [s for s in segs if s]
        unterminated = bool(tail.strip())
        if unterminated:
            segs.append(tail)
    isa = segs[0].split(es)
    if len(isa) != 17:
        raise X12Error(
            errors.INVALID_CONTROL_STRUCTURE,
            0,
            "ISA",
            0,
            f"ISA has {len(isa) - 1} elements, not 16",
        )
    rs = isa[11]
    if not (isa[12] >= "00501" and len(rs) == 1 and not rs.isalnum() and rs not in (es, cs, term)):
        rs = ""
    key = (es, rs, cs, term)
    delims = _DELIMITERS.get(key)
    if delims is None:
        delims = _DELIMITERS[key] = Delimiters(es, rs, cs, term)
    return Interchange(segs, delims, isa, unterminated=unterminated, isa_length=len(segs[0]) + 1)


def serialize(segments: list[list[str]], delimiters: Delimiters, newline: bool = False) -> str:
    """Join segments (each a list of elements, ID first) into X12 text."""
    term = delimiters.segment + ("\n" if newline else "")
    es = delimiters.element
    return "".join(es.join(seg) + term for seg in segments)
