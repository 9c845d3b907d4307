"""MLLP framing: bytes from a socket in, complete HL7 v2 payloads (or framing problems) out.

The Minimal Lower Layer Protocol (HL7 v2.x Implementation Guide, Appendix C, "Minimal Lower
Layer Protocol", release 2) wraps each HL7 message in a block::

    <SB> payload <EB><CR>        SB = 0x0B (VT), EB = 0x1C (FS), CR = 0x0D

and forbids SB and EB inside the payload. TCP delivers a byte stream, so a block can be split
across reads anywhere (even between EB and CR) and one read can hold several blocks. This
module rebuilds blocks from such a stream. It does no I/O (the sockets live in ``mllp.py``),
so it is tested with ``feed_data`` alone, in the style of python-hl7's ``hl7/mllp/streams.py``
and its ``tests/test_mllp.py``.

Problems are returned as data, never raised: a :class:`Frame` carries either a good payload
or a :class:`FrameError` with the first ``head_bytes`` of the offending bytes, for inspection
and for building a negative ACK (its MSH-10 is usually inside the head).

Decisions where the standard is strict and real senders are not:

* End of block is the EB byte. The CR after it is expected and consumed, but a missing CR is
  tolerated (python-hl7 requires EB CR). The frame is delivered as soon as EB arrives, so a
  sender that writes ``<SB>msg<EB>`` and waits for the ACK is not left hanging.
* ASCII whitespace between blocks (CR, LF, space, tab) is ignored silently: many senders put
  a newline after ``<EB><CR>``. Any other bytes outside a block are junk: they are skipped
  and reported once per run, when the next SB (or end of stream) shows where the run ends.
* A block longer than ``max_message_bytes`` is not buffered: its first ``head_bytes`` are
  kept, the rest is counted and discarded, and one OVERSIZE frame is reported at its EB.
* An SB inside an unterminated block means the sender gave up on that block: it is reported
  as BROKEN and a new block starts at the SB.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["CR", "EB", "SB", "Frame", "FrameError", "MllpFramer", "frame"]

SB = b"\x0b"  # start block, <VT>
EB = b"\x1c"  # end block, <FS>
CR = b"\x0d"  # carriage return, closes the block after EB
_WHITESPACE = b" \t\r\n"

DEFAULT_MAX_MESSAGE_BYTES = 1_048_576
DEFAULT_HEAD_BYTES = 4096


class FrameError(StrEnum):
    """What went wrong with a block; the value is the first word of the reason string."""

    JUNK = "junk"  # bytes outside any block (not whitespace); no sender awaits an answer
    OVERSIZE = "oversize"  # block longer than max_message_bytes; head kept, rest discarded
    BROKEN = "broken"  # a new SB arrived before the block's EB
    TRUNCATED = "truncated"  # the stream ended inside a block


@dataclass(frozen=True, slots=True)
class Frame:
    """One result of framing: a payload, or a problem with the head of the bad bytes."""

    payload: bytes
    error: FrameError | None = None
    size: int = 0  # bytes the problem covered (may exceed len(payload)); 0 for good frames
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def reason(self) -> str:
        """Human-readable reason, free of payload content, e.g. for logs and handlers."""
        return "" if self.error is None else f"{self.error.value}: {self.detail}"


def frame(payload: bytes) -> bytes:
    """Wrap one payload in an MLLP block; refuse payloads holding SB or EB (Appendix C)."""
    if SB in payload or EB in payload:
        raise ValueError("an MLLP payload must not contain <VT> (0x0B) or <FS> (0x1C)")
    return SB + payload + EB + CR


class MllpFramer:
    """Incremental MLLP block decoder; one per connection, state kept between reads."""

    __slots__ = (
        "_buf",
        "_head_bytes",
        "_in_block",
        "_junk_head",
        "_junk_size",
        "_max",
        "_size",
    )

    def __init__(
        self,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        *,
        head_bytes: int = DEFAULT_HEAD_BYTES,
    ) -> None:
        if max_message_bytes < 1 or head_bytes < 0:
            raise ValueError("max_message_bytes must be >= 1 and head_bytes >= 0")
        self._max = max_message_bytes
        self._head_bytes = min(head_bytes, max_message_bytes)
        self._in_block = False
        self._buf = bytearray()  # payload so far, or only its head once oversize
        self._size = 0  # payload bytes seen in the current block
        self._junk_head = bytearray()
        self._junk_size = 0

    @property
    def buffered(self) -> int:
        """Bytes held between reads (bounded by max_message_bytes + head_bytes)."""
        return len(self._buf) + len(self._junk_head)

    def feed_data(self, data: bytes) -> list[Frame]:
        """Consume one read; return the frames (good or not) it completed, in stream order."""
        out: list[Frame] = []
        pos = 0
        end = len(data)
        while pos < end:
            if not self._in_block:
                start = data.find(SB, pos)
                stop = end if start < 0 else start
                if stop > pos:
                    self._note_junk(data, pos, stop)
                if start < 0:
                    break
                if self._junk_size:
                    out.append(self._take_junk())
                self._in_block = True
                pos = start + 1
                # Fast path: a whole block inside this read, nothing carried over.
                eb = data.find(EB, pos)
                if eb >= 0 and eb - pos <= self._max and data.find(SB, pos, eb) < 0:
                    out.append(Frame(data[pos:eb]))
                    self._in_block = False
                    pos = eb + 1
                continue
            eb = data.find(EB, pos)
            stop = end if eb < 0 else eb
            sb = data.find(SB, pos, stop)
            if sb >= 0:
                self._append(data, pos, sb)
                out.append(self._take_block(FrameError.BROKEN))
                self._in_block = True
                pos = sb + 1
                continue
            self._append(data, pos, stop)
            if eb < 0:
                break
            out.append(self._take_block(None))
            pos = eb + 1
        return out

    def feed_eof(self) -> list[Frame]:
        """The stream ended: report a block left open and junk left unreported, then reset."""
        out: list[Frame] = []
        if self._junk_size:
            out.append(self._take_junk())
        if self._in_block:
            out.append(self._take_block(FrameError.TRUNCATED))
        return out

    # -- internals -------------------------------------------------------------------------

    def _note_junk(self, data: bytes, pos: int, stop: int) -> None:
        if not self._junk_size:
            chunk = data[pos:stop].lstrip(_WHITESPACE)
            if not chunk:
                return
        else:
            chunk = data[pos:stop]
        room = self._head_bytes - len(self._junk_head)
        if room > 0:
            self._junk_head += chunk[:room]
        self._junk_size += len(chunk)

    def _take_junk(self) -> Frame:
        size = self._junk_size
        f = Frame(
            bytes(self._junk_head),
            FrameError.JUNK,
            size,
            f"{size} bytes outside any block before a start block",
        )
        self._junk_head = bytearray()
        self._junk_size = 0
        return f

    def _append(self, data: bytes, pos: int, stop: int) -> None:
        n = stop - pos
        if n <= 0:
            return
        new_size = self._size + n
        if new_size <= self._max:
            self._buf += data[pos:stop]
        elif self._size <= self._max:  # crossing the limit now: keep the head only
            room = self._head_bytes - len(self._buf)
            if room < 0:
                del self._buf[self._head_bytes :]
            elif room > 0:
                self._buf += data[pos : pos + min(room, n)]
        self._size = new_size

    def _take_block(self, problem: FrameError | None) -> Frame:
        size = self._size
        if size > self._max:
            f = Frame(
                bytes(self._buf),
                FrameError.OVERSIZE,
                size,
                f"block of {size} bytes exceeds the {self._max}-byte limit"
                + ("" if problem is None else f" ({problem.value} before its end block)"),
            )
        elif problem is None:
            f = Frame(bytes(self._buf))
        elif problem is FrameError.BROKEN:
            f = Frame(
                bytes(self._buf[: self._head_bytes]),
                problem,
                size,
                f"start block inside an unterminated block of {size} bytes",
            )
        else:
            f = Frame(
                bytes(self._buf[: self._head_bytes]),
                problem,
                size,
                f"stream ended inside a block of {size} bytes",
            )
        self._buf = bytearray()
        self._size = 0
        self._in_block = False
        return f
