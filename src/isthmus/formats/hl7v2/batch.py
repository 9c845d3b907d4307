"""Batches and files: several messages in one text, with optional FHS/BHS/BTS/FTS envelopes.

HL7 v2.5.1 chapter 2, 2.10.3 (HL7 batch protocol) and 2.15 (segments FHS, BHS, BTS, FTS)::

    [FHS]            file header
      { [BHS]        batch header
          { MSH ... } messages
        [BTS] }      batch trailer, BTS-1 = number of messages in the batch
    [FTS]            file trailer, FTS-1 = number of batches in the file

Senders get these envelopes wrong in every possible way (a missing BTS, a second BHS before
the BTS, counts that do not add up). None of that stops the messages from being read: the
batch reader keeps every message it can parse and lists what is wrong in ``problems``, as
data, so the inbox can decide (reject the file, or accept it and raise a work item).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from isthmus.formats.hl7v2.encoding import DEFAULT_ENCODING, EncodingChars, read_encoding
from isthmus.formats.hl7v2.errors import (
    DATA_TYPE_ERROR,
    SEGMENT_SEQUENCE_ERROR,
    ErrorLocation,
    HL7ParseError,
)
from isthmus.formats.hl7v2.message import Message, message_from_lines
from isthmus.formats.hl7v2.segment import Segment
from isthmus.formats.hl7v2.text import decode, segment_lines

_ENVELOPE = frozenset({"FHS", "BHS", "BTS", "FTS"})


def split_messages(data: bytes | str) -> list[str]:
    """Split a stream or file into message texts, each starting with MSH.

    Envelope segments (FHS, BHS, BTS, FTS) are dropped. Each message is returned with CR
    segment terminators. A segment before the first MSH raises HL7ParseError (100): it
    belongs to no message, and dropping it silently would lose data.
    """
    messages: list[list[str]] = []
    for line in segment_lines(decode(data)):
        name = line[:3]
        if name == "MSH":
            messages.append([line])
        elif name in _ENVELOPE:
            continue
        elif messages:
            messages[-1].append(line)
        else:
            raise HL7ParseError(
                SEGMENT_SEQUENCE_ERROR,
                f"segment {name!r} comes before the first MSH",
                ErrorLocation(name, 1),
            )
    return ["\r".join(m) + "\r" for m in messages]


@dataclass(slots=True)
class BatchGroup:
    """One BHS ... BTS batch; ``header``/``trailer`` are None when the sender left them out."""

    header: Segment | None = None
    messages: list[Message] = field(default_factory=list)
    trailer: Segment | None = None
    rejected: list[str] = field(default_factory=list)

    @property
    def received(self) -> int:
        """Messages found in the batch, parseable or not (what BTS-1 should count)."""
        return len(self.messages) + len(self.rejected)

    @property
    def declared_count(self) -> int | None:
        """BTS-1 (batch message count) when present and numeric."""
        return _count(self.trailer)


@dataclass(slots=True)
class Batch:
    """A whole file: FHS header, batches, FTS trailer, and what is wrong with it.

    ``problems`` lists envelope errors and messages that could not be parsed (the text of
    those is kept in ``rejected``, in order).
    """

    header: Segment | None = None
    batches: list[BatchGroup] = field(default_factory=list)
    trailer: Segment | None = None
    problems: list[HL7ParseError] = field(default_factory=list)

    @property
    def messages(self) -> list[Message]:
        """Every parsed message, in file order, across batches."""
        return [m for b in self.batches for m in b.messages]

    @property
    def rejected(self) -> list[str]:
        """The text of every message that could not be parsed, in file order."""
        return [r for b in self.batches for r in b.rejected]

    @property
    def declared_count(self) -> int | None:
        """FTS-1 (file batch count) when present and numeric."""
        return _count(self.trailer)

    @property
    def ok(self) -> bool:
        return not self.problems


def _count(trailer: Segment | None) -> int | None:
    if trailer is None:
        return None
    text = trailer.value(1).strip()
    return int(text) if text.isascii() and text.isdigit() else None


class _Reader:
    """State machine over the lines of a file; one instance per parse_batch call."""

    def __init__(self) -> None:
        self.out = Batch()
        self.group: BatchGroup | None = None
        self.in_bhs = False
        self.lines: list[str] | None = None  # lines of the message being collected
        self.enc: EncodingChars = DEFAULT_ENCODING
        self.rejected = 0

    def problem(self, code: int, text: str, segment: str, seq: int = 1, fld: int = 0) -> None:
        self.out.problems.append(HL7ParseError(code, text, ErrorLocation(segment, seq, fld)))

    def flush(self) -> None:
        if self.lines is None:
            return
        lines, self.lines = self.lines, None
        group = self.current()
        try:
            msg = message_from_lines(lines)
        except HL7ParseError as exc:
            self.rejected += 1
            exc.text = f"message {self.rejected} rejected: {exc.text}"
            self.out.problems.append(exc)
            group.rejected.append("\r".join(lines) + "\r")
            return
        group.messages.append(msg)

    def current(self) -> BatchGroup:
        if self.group is None:
            self.group = BatchGroup()
            self.out.batches.append(self.group)
        return self.group

    def header(self, line: str) -> Segment:
        try:
            enc = read_encoding(line)
        except HL7ParseError as exc:
            self.out.problems.append(exc)
            return Segment(line, self.enc)
        self.enc = enc
        return Segment(line, enc)

    def feed(self, line: str, index: int) -> None:
        name = line[:3]
        if name == "MSH":
            self.flush()
            self.lines = [line]
        elif name == "FHS":
            self.flush()
            if self.out.header is not None or index > 0:
                self.problem(SEGMENT_SEQUENCE_ERROR, "FHS is not the first segment", name)
            else:
                self.out.header = self.header(line)
        elif name == "BHS":
            self.flush()
            if self.in_bhs:
                self.problem(SEGMENT_SEQUENCE_ERROR, "BHS before the BTS of the last batch", name)
            self.group = BatchGroup(header=self.header(line))
            self.out.batches.append(self.group)
            self.in_bhs = True
        elif name == "BTS":
            self.flush()
            if not self.in_bhs:
                self.problem(SEGMENT_SEQUENCE_ERROR, "BTS without a BHS", name)
            group = self.current()
            group.trailer = Segment(line, self.enc)
            self.in_bhs = False
            self.group = None
        elif name == "FTS":
            self.flush()
            if self.in_bhs:
                self.problem(SEGMENT_SEQUENCE_ERROR, "FTS before the BTS of the last batch", name)
                self.in_bhs = False
            self.group = None
            self.out.trailer = Segment(line, self.enc)
        elif self.lines is not None:
            self.lines.append(line)
        else:
            self.problem(
                SEGMENT_SEQUENCE_ERROR, f"segment {name!r} outside any message, ignored", name
            )

    def finish(self) -> Batch:
        self.flush()
        out = self.out
        if self.in_bhs:
            self.problem(SEGMENT_SEQUENCE_ERROR, "the last batch has no BTS", "BTS")
        if out.header is not None and out.trailer is None:
            self.problem(SEGMENT_SEQUENCE_ERROR, "the file has an FHS but no FTS", "FTS")
        for seq, group in enumerate((b for b in out.batches if b.trailer is not None), 1):
            self._check_count(group.trailer, group.received, "BTS", seq, "messages")
        if out.trailer is not None:
            self._check_count(out.trailer, len(out.batches), "FTS", 1, "batches")
        return out

    def _check_count(
        self, trailer: Segment | None, actual: int, name: str, seq: int, what: str
    ) -> None:
        if trailer is None or not trailer.field(1):
            return
        declared = _count(trailer)
        if declared is None:
            self.problem(DATA_TYPE_ERROR, f"{name}-1 is not a count", name, seq, 1)
        elif declared != actual:
            self.problem(
                SEGMENT_SEQUENCE_ERROR,
                f"{name}-1 declares {declared} {what}, found {actual}",
                name,
                seq,
                1,
            )


def parse_batch(data: bytes | str) -> Batch:
    """Read a file or batch (or bare messages one after another) without raising on
    envelope errors; see :class:`Batch` for where problems go. Never raises."""
    reader = _Reader()
    for i, line in enumerate(segment_lines(decode(data))):
        reader.feed(line, i)
    return reader.finish()
