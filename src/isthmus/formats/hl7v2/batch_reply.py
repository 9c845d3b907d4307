"""A batch or file sent in one MLLP block: its messages, and the batch of ACKs that answers it.

HL7 v2.5.1 chapter 2, 2.10.3 (batch protocol): a sender may put a whole batch, or a file of
batches, in one block (``[FHS] {[BHS] {MSH ...} [BTS]} [FTS]``). Each message in it is a
message like any other: the inbox takes, ignores or refuses it by itself, with its own
MSH-10 identity. 2.10.3.3 (acknowledging batches): the answer is a batch of ACK messages,
one per message here, each naming its MSH-10 in MSA-2, in the same envelopes as the request:

    [FHS]  FHS-3/4 and 5/6 swapped, FHS-11 the reply's id, FHS-12 the original FHS-11
    {BHS   the same for BHS (BHS-12 reference batch control id = the original BHS-11)
     {ACK}
     BTS}  BTS-1 = the number of ACKs in the batch
    [FTS]  FTS-1 = the number of batches

A message is what `batch.split_messages` (files) makes of it: envelope segments are dropped
and every other line belongs to the message before it, even past a misplaced BHS; the
message counts in the batch where its MSH stands. A line before any MSH is kept as a
message of its own, which the inbox refuses (it does not start with MSH): nothing is dropped
without an answer. Pure: bytes in, bytes out; the text keeps the sender's encoding (UTF-8 or Latin-1
alike, since only the ASCII segment names are read).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

_HEADERS = (b"FHS", b"BHS")
_TRAILERS = (b"BTS", b"FTS")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class BatchBlock:
    """One batch: its BHS line (None when the sender left it out) and its messages."""

    header: bytes | None
    messages: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class FileBlock:
    """A whole block: its FHS line (None without one) and its batches, in order."""

    header: bytes | None
    batches: tuple[BatchBlock, ...]

    @property
    def messages(self) -> list[bytes]:
        return [m for b in self.batches for m in b.messages]


def _lines(data: bytes) -> list[bytes]:
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    text = data.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    return [s for s in text.split(b"\r") if s.strip()]


def is_batch(data: bytes) -> bool:
    """The block starts with FHS or BHS: a batch or a file, not a single message. On the
    ACK path of every message, so it looks at the first bytes only."""
    return data[:64].lstrip(_BOM + b"\r\n\t ")[:3] in _HEADERS


def batch_blocks(data: bytes) -> FileBlock:
    """The batches and messages of a block (module docstring); each message CR-terminated."""
    fhs: bytes | None = None
    batches: list[tuple[bytes | None, list[list[bytes]]]] = []
    for line in _lines(data):
        name = line[:3]
        if name == b"FHS" and fhs is None and not batches:
            fhs = line
        elif name == b"BHS":
            batches.append((line, []))
        elif name in _TRAILERS or name == b"FHS":
            continue
        else:
            if not batches:
                batches.append((None, []))
            current = next((b[1][-1] for b in reversed(batches) if b[1]), None)
            if name == b"MSH" or current is None:
                batches[-1][1].append([line])
            else:  # the message goes on, even past a misplaced BHS (as `split_messages`)
                current.append(line)
    return FileBlock(
        fhs,
        tuple(
            BatchBlock(header, tuple(b"\r".join(m) + b"\r" for m in messages))
            for header, messages in batches
        ),
    )


def _reply_header(line: bytes, control_id: str, now: datetime) -> bytes:
    """FHS or BHS of the reply: sender and receiver swapped, its own id, the original's
    id as reference (FHS-12 / BHS-12), the sender's separators kept."""
    fs = line[3:4] or b"|"
    f = line.split(fs)
    f += [b""] * (12 - len(f))

    def get(n: int) -> bytes:  # field n of FHS/BHS (f[1] is field 2: the encoding chars)
        return f[n - 1] if n >= 2 else b""

    out = [
        line[:3],
        get(2),
        get(5),
        get(6),
        get(3),
        get(4),
        f"{now:%Y%m%d%H%M%S}".encode(),
        b"",
        b"",
        b"",
        control_id.encode(),
        get(11),
    ]
    return fs.join(out)


def batch_reply(
    block: FileBlock, acks: Sequence[Sequence[bytes]], *, control_id: str, now: datetime
) -> bytes:
    """The batch of ACKs answering `block`: `acks[i]` answers `block.batches[i]`, one ACK
    per message in order (module docstring)."""
    if len(acks) != len(block.batches) or any(
        len(a) != len(b.messages) for a, b in zip(acks, block.batches, strict=False)
    ):
        raise ValueError("one ACK per message of each batch")
    out: list[bytes] = []
    if block.header is not None:
        out.append(_reply_header(block.header, control_id, now))
    for i, (batch, answers) in enumerate(zip(block.batches, acks, strict=True), 1):
        header = batch.header or b"BHS|^~\\&"
        out.append(_reply_header(header, f"{control_id}-{i}", now))
        out += [a.rstrip(b"\r") for a in answers]
        out.append(b"BTS|" + str(len(answers)).encode())
    if block.header is not None:
        out.append(b"FTS|" + str(len(block.batches)).encode())
    return b"\r".join(out) + b"\r"


__all__ = ["BatchBlock", "FileBlock", "batch_blocks", "batch_reply", "is_batch"]
