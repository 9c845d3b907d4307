"""Large X12 files block by block: transaction sets and 835s with bounded memory.

:func:`~isthmus.formats.x12.reader.read` takes a whole interchange in memory, and a payer's
835 can run to hundreds of megabytes. :class:`X12Stream` takes the data as an iterable of
blocks (a file read 1 MiB at a time: :func:`blocks`) and holds only the block at hand, the
segment cut across its end and the transaction set being read:

* the delimiters and the ISA come from the first kilobyte, found exactly as ``read`` finds
  them (the same checks, the same :class:`X12Error`);
* segments are cut as ``read`` cuts them (X12.5/X12.6: CR/LF after terminators and
  fixed-width wrapping removed, or CR/LF as the terminator; a last segment without its
  terminator is kept and flagged);
* :meth:`X12Stream.transactions` yields each set (ST..SE) with its GS, and
  :meth:`X12Stream.remittances` each 835 as a canonical Remittance (the single pass of
  ``remit835.remittances``, as :func:`parse_835` reads);
* the envelope checks (ISA/IEA, GS/GE, ST/SE: ``envelope.EnvelopeCheck``) run across the
  whole interchange as the segments go by: once the stream is exhausted,
  :attr:`X12Stream.envelope` is what ``check_envelope(read(whole data))`` returns.

A stream is read once: use one of its iterators, to the end. Text is UTF-8, decoded
incrementally; from the first block that is not UTF-8 on, Latin-1 (``read`` decides for the
whole text at once; X12's basic and extended character sets are ASCII either way).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from functools import partial
from itertools import chain
from typing import BinaryIO, Final

import msgspec

from isthmus.formats.x12.envelope import Envelope, EnvelopeCheck
from isthmus.formats.x12.reader import Delimiters, read
from isthmus.formats.x12.remit835 import remittances
from isthmus.formats.x12.remittance import Remittance

BLOCK_SIZE: Final = 1 << 20
_PIECE: Final = 1 << 16  # characters split at once: a block's segments are never all held
_HEAD: Final = 1024  # text enough to find the ISA however it is laid out (read looks at 512)
_CLOSING: Final = frozenset({"ST", "SE", "GS", "GE", "IEA", "ISA"})
_LEADING: Final = "\ufeff \t\r\n\x00"


def blocks(f: BinaryIO, size: int = BLOCK_SIZE) -> Iterator[bytes]:
    """A binary file as blocks of ``size`` bytes."""
    return iter(partial(f.read, size), b"")


class TransactionSet(msgspec.Struct, frozen=True, gc=False):
    """One transaction set as received: its segments from ST to SE (terminators removed;
    up to where it was cut off when SE is missing), the GS of its group ("" when it sits
    outside any) and the index of its ST in the interchange (the ISA is 0)."""

    start: int
    id: str  # ST01
    control: str  # ST02
    segments: tuple[str, ...]
    group: str = ""

    def interchange(self, isa: str, delimiters: Delimiters) -> str:
        """The set alone in an interchange of its own: the ISA, its GS, the set, then a GE
        and an IEA that count one set and one group."""
        es, term = delimiters.element, delimiters.segment
        isa13 = isa.split(es)[13] if isa.count(es) >= 13 else ""
        gs06 = (self.group.split(es) + [""] * 7)[6]
        head = [isa, self.group] if self.group else [isa]
        tail = [f"GE{es}1{es}{gs06}"] if self.group else []
        return term.join([*head, *self.segments, *tail, f"IEA{es}1{es}{isa13}"]) + term


class X12Stream:
    """One interchange read block by block (see the module docstring).

    Raises :class:`X12Error` on construction when the ISA is unusable, as ``read`` does.
    ``isa`` holds the ISA elements (``isa[1]`` is ISA01), ``isa_text`` the segment.
    """

    def __init__(self, data: Iterable[bytes | str]) -> None:
        self._data = iter(data)
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._latin1 = False
        self._done = False
        head = ""
        while len(head) < _HEAD:
            text = self._next()
            if text is None:
                break
            head += text
        if head[:3] != "ISA":
            head = head.lstrip(_LEADING)
        ic = read(head[:_HEAD])  # the delimiters and the ISA checks, as for the whole text
        self.delimiters: Delimiters = ic.delimiters
        self.isa: list[str] = ic.isa
        self.isa_text: str = ic.raw[0]
        self._head: str | None = head
        self.count = 0  # segments cut so far
        self.last = ""  # the last of them
        self.unterminated = False
        self.envelope: Envelope | None = None  # once exhausted

    @property
    def encoding(self) -> str:
        """How the text was decoded (so far): "utf-8", or "latin-1" once it was not."""
        return "latin-1" if self._latin1 else "utf-8"

    def _next(self) -> str | None:
        """The next block as text; None at the end."""
        if self._done:
            return None
        block = next(self._data, None)
        if block is None:
            self._done = True
            if self._latin1:
                return None
            try:
                return self._decoder.decode(b"", final=True) or None
            except UnicodeDecodeError:
                return self._decoder.getstate()[0].decode("latin-1")
        if isinstance(block, str):
            return block
        if self._latin1:
            return block.decode("latin-1")
        try:
            return self._decoder.decode(block)
        except UnicodeDecodeError:
            self._latin1 = True
            return (self._decoder.getstate()[0] + block).decode("latin-1")

    def _segment_lists(self) -> Iterator[list[str]]:
        """The segments, as one list per block."""
        text = self._head
        if text is None:
            raise RuntimeError("an X12Stream is read once")
        self._head = None
        term = self.delimiters.segment
        crlf = term in "\r\n"
        sep = "\n" if crlf else term
        carry = ""
        while text is not None:
            if crlf:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            elif "\n" in text or "\r" in text:
                text = text.replace("\r", "").replace("\n", "")
            for k in range(0, len(text), _PIECE):  # a block's segments, a piece at a time
                piece = carry + text[k : k + _PIECE]
                segs = piece.split(sep)
                carry = segs.pop()
                if "" in segs:
                    segs = [s for s in segs if s]
                if segs:
                    self.count += len(segs)
                    self.last = segs[-1]
                    yield segs
            text = self._next()
        self.unterminated = bool(carry) if crlf else bool(carry.strip())
        if self.unterminated:
            self.count += 1
            self.last = carry
            yield [carry]

    def _finish(self, chk: EnvelopeCheck) -> Envelope:
        es = self.delimiters.element
        self.envelope = chk.finish(self.count, self.last.split(es, 1)[0], self.unterminated)
        return self.envelope

    def remittances(self) -> Iterator[Remittance]:
        """Every 835 of the interchange, one at a time; then :attr:`envelope` is set."""
        d = self.delimiters
        chk = EnvelopeCheck(self.isa)
        yield from remittances(
            chain.from_iterable(self._segment_lists()), d.element, d.component, chk
        )
        self._finish(chk)

    def transactions(self) -> Iterator[TransactionSet]:
        """Every transaction set, one at a time; then :attr:`envelope` is set."""
        es = self.delimiters.element
        chk = EnvelopeCheck(self.isa)
        control = frozenset({"ISA", "IEA", *(c + es for c in ("GS", "GE", "ST", "SE"))})
        i = -1
        open_set: list[str] | None = None
        group = ""
        for seg in chain.from_iterable(self._segment_lists()):
            i += 1
            if not i:
                continue  # the ISA, checked already
            if seg[:3] not in control and seg not in _CLOSING:
                if open_set is not None:
                    open_set.append(seg)
                elif chk.tx is None:
                    chk.other(i, seg.split(es, 1)[0])
                continue
            e = seg.split(es)
            sid = e[0]
            if open_set is not None and sid in _CLOSING:
                if sid == "SE":
                    open_set.append(seg)
                yield _set(open_set, chk, group)
                open_set = None
            chk.control(i, e)
            tx = chk.tx
            if sid == "GS" and chk.group is not None:
                group = seg
            elif sid == "ST" and tx is not None and tx.start == i:
                open_set = [seg]
                if chk.group is not None and chk.group.start < 0:
                    group = ""  # a set outside any group
            elif open_set is not None:
                open_set.append(seg)  # a garbled ISA/IEA inside the set
        if open_set is not None:
            yield _set(open_set, chk, group)
        self._finish(chk)

    def check(self) -> Envelope:
        """Read to the end for the envelope checks alone."""
        for _ in self.transactions():
            pass
        assert self.envelope is not None
        return self.envelope


def _set(segments: list[str], chk: EnvelopeCheck, group: str) -> TransactionSet:
    tx = chk.groups[-1].transactions[-1]
    return TransactionSet(tx.start, tx.id, tx.control, tuple(segments), group)


__all__ = ["BLOCK_SIZE", "TransactionSet", "X12Stream", "blocks"]
