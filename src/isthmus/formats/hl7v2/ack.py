"""Original-mode acknowledgements: the answer a sender waits for after each message.

HL7 v2.5.1 chapter 2: 2.9.2 (original acknowledgment rules), 2.14.9 MSH, 2.15.8 MSA
(MSA-1 acknowledgment code, table 0008; MSA-2 the control ID of the message being
acknowledged) and 2.15.5 ERR (ERR-2 error location ERL, ERR-3 HL7 error code CWE from
table 0357, ERR-4 severity table 0516, ERR-8 user message).

The ACK goes back over the same connection, so it is written with the sender's own
delimiters when they are known, every value is escaped, and it never fails to build:
even for bytes that did not parse at all, the sender must get an AR that names its
message (``recover_control_id``) rather than silence.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Literal

from isthmus.formats.hl7v2.encoding import DEFAULT_ENCODING, EncodingChars, read_encoding
from isthmus.formats.hl7v2.errors import (
    APPLICATION_INTERNAL_ERROR,
    SEGMENT_SEQUENCE_ERROR,
    HL7ParseError,
)
from isthmus.formats.hl7v2.escape import escape, escape_table, unescape
from isthmus.formats.hl7v2.identity import message_identity
from isthmus.formats.hl7v2.message import Message, parse_message
from isthmus.formats.hl7v2.text import decode, segment_lines

AckCode = Literal["AA", "AE", "AR"]


class _Header:
    """The MSH fields an ACK needs, raw (escaped with ``enc``)."""

    __slots__ = ("enc", "fields")

    def __init__(self, enc: EncodingChars, fields: list[str]) -> None:
        self.enc = enc
        self.fields = fields  # fields[n] is MSH-n, as in Segment numbering

    def raw(self, n: int) -> str:
        return self.fields[n] if 0 < n < len(self.fields) else ""

    def whole(self, n: int) -> str:
        """Field n unescaped without splitting it (for ST fields such as MSH-10)."""
        return unescape(self.raw(n), self.enc)

    def value(self, n: int, component: int = 1) -> str:
        parts = self.raw(n).split(self.enc.repetition)[0].split(self.enc.component)
        return unescape(parts[component - 1], self.enc) if component <= len(parts) else ""


def _from_message(message: Message) -> _Header:
    msh = message.segment("MSH")
    assert msh is not None  # a Message always starts with MSH
    return _Header(message.encoding, ["MSH", *msh.fields()])


def _recover(data: bytes | str) -> _Header | None:
    """Best effort: the first MSH line of damaged input, split on its field separator."""
    text = decode(data)
    start = text.find("MSH")
    if start < 0 or start + 4 > len(text):
        return None
    lines = segment_lines(text[start:])
    line = lines[0] if lines else ""
    if len(line) < 4:
        return None
    try:
        enc = read_encoding(line)
    except HL7ParseError:
        # Unusable delimiters: split on the declared field separator anyway and re-escape
        # what was found with the default delimiters, so nothing in it can break the ACK.
        parts = line.split(line[3])
        return _Header(
            DEFAULT_ENCODING, ["MSH", "|", *(escape(p, DEFAULT_ENCODING) for p in parts[1:])]
        )
    parts = line.split(enc.field)
    return _Header(enc, ["MSH", enc.field, *parts[1:]])


def recover_control_id(data: bytes | str) -> str:
    """MSH-10 of a message that may not parse, or "" when it cannot be found. Never raises."""
    header = _recover(data)
    return header.whole(10) if header is not None else ""


def recover_identity(data: bytes | str) -> str:
    """The inbox identity (`identity.message_identity`: MSH-3.1, MSH-4.1, MSH-10) of a
    message that may not parse, or "" when no MSH-10 can be found. Never raises."""
    header = _recover(data)
    control = header.whole(10).strip() if header is not None else ""
    if header is None or not control:
        return ""
    return message_identity(header.value(3), header.value(4), control)


def _derive_control_id(original: str, now: datetime) -> str:
    """A deterministic ACK control ID (<= 20 characters, the v2.5 MSH-10 length)."""
    if not original:
        return "ACK" + now.strftime("%y%m%d%H%M%S%f")[:17]
    if len(original) <= 17:
        return "ACK" + original
    return "ACK" + hashlib.sha256(original.encode()).hexdigest()[:17]


def _dtm(now: datetime) -> str:
    text = now.strftime("%Y%m%d%H%M%S")
    offset = now.strftime("%z")  # "" for naive datetimes, "+0000" style otherwise
    return text + offset


_last_second: list[tuple[int, str]] = [(-1, "")]  # MSH-7 of the ACKs of the current second


def _now_dtm() -> str:
    """MSH-7 for an ACK built now: formatted once a second, not once an ACK."""
    second = int(time.time())
    cached = _last_second[0]
    if cached[0] != second:
        cached = _last_second[0] = (second, _dtm(datetime.fromtimestamp(second, UTC)))
    return cached[1]


def build_ack(
    message: Message | None,
    code: AckCode,
    *,
    error: HL7ParseError | None = None,
    text: str = "",
    control_id: str = "",
    now: datetime | None = None,
    sending_application: str | None = "ISTHMUS",
    sending_facility: str | None = "ISTHMUS",
    original: bytes | str | None = None,
) -> bytes:
    """Build the ACK for ``message`` (or, when it is None, for the raw ``original`` bytes).

    MSH-3/4 are ``sending_application``/``sending_facility`` (None: the original MSH-5/6),
    MSH-5/6 the original MSH-3/4, MSH-9 ``ACK^<trigger>^ACK``, MSH-10 ``control_id`` or one
    derived from the original MSH-10, MSH-11/12 copied (P and 2.5 when unknown). MSA-1 is
    ``code``, MSA-2 the original MSH-10, MSA-3 ``text`` (or the error text). Unless ``code``
    is AA an ERR segment follows: ERR-2 the error location, ERR-3 the table 0357 code (207
    when no error is given), ERR-4 ``E``, ERR-8 the message.
    """
    if (
        code == "AA"
        and message is not None
        and now is None
        and error is None
        and not text
        and not control_id
        and sending_application is not None
        and sending_facility is not None
    ):
        fast = _accepted(message, sending_application, sending_facility)
        if fast is not None:
            return fast
    stamp = _dtm(now) if now is not None else _now_dtm()
    if message is not None:
        header: _Header | None = _from_message(message)
    elif original is not None:
        header = _recover(original)
    else:
        header = None
    enc = header.enc if header is not None else DEFAULT_ENCODING
    fs, cs = enc.field, enc.component

    def esc(value: str) -> str:
        return escape(value, enc)

    def raw(n: int) -> str:
        return header.raw(n) if header is not None else ""

    orig_id = header.whole(10) if header is not None else ""
    trigger = header.value(9, 2) if header is not None else ""
    msh = [
        "MSH",
        enc.msh2,
        esc(sending_application) if sending_application is not None else raw(5),
        esc(sending_facility) if sending_facility is not None else raw(6),
        raw(3),
        raw(4),
        stamp,
        "",
        cs.join(["ACK", esc(trigger), "ACK"]),
        esc(control_id or _derive_control_id(orig_id, now or datetime.now(UTC))),
        raw(11) or "P",
        raw(12) or "2.5",
    ]
    message_text = text or (error.text if error is not None else "")
    msa = ["MSA", code, raw(10) if message is not None else esc(orig_id)]
    if code != "AA" and message_text:
        msa.append(esc(message_text))
    segments = [fs.join(msh), fs.join(msa)]
    if code != "AA":
        err_code = error.code if error is not None else APPLICATION_INTERNAL_ERROR
        err_name = error.code_text if error is not None else "Application internal error"
        location = ""
        if error is not None and error.location is not None:
            location = cs.join(esc(c) for c in error.location.components()).rstrip(cs)
        err = [
            "ERR",
            "",
            location,
            cs.join([str(err_code), esc(err_name), "HL70357"]),
            "E",
            "",
            "",
            "",
            esc(message_text),
        ]
        segments.append(fs.join(err).rstrip(fs))
    return ("\r".join(segments) + "\r").encode("utf-8")


def _accepted(message: Message, sending_application: str, sending_facility: str) -> bytes | None:
    """The AA of a parsed message with an MSH-10, as `build_ack` writes it, on the fewest
    steps: every message the hub takes gets one (the ACK path). None without an MSH-10."""
    enc = message.encoding
    table = escape_table(enc)
    msh = message.segment("MSH")
    assert msh is not None  # a Message always starts with MSH
    field, cs = msh.field, enc.component
    original = field(10)
    orig_id = unescape(original, enc)
    if not orig_id:
        return None
    parts = field(9).split(enc.repetition)[0].split(cs)
    trigger = unescape(parts[1], enc) if len(parts) > 1 else ""
    derived = _derive_control_id(orig_id, _EPOCH)
    msh_out = [
        "MSH",
        enc.msh2,
        sending_application.translate(table),
        sending_facility.translate(table),
        field(3),
        field(4),
        _now_dtm(),
        "",
        f"ACK{cs}{trigger.translate(table)}{cs}ACK",
        derived.translate(table),
        field(11) or "P",
        field(12) or "2.5",
    ]
    fs = enc.field
    return f"{fs.join(msh_out)}\r{fs.join(('MSA', 'AA', original))}\r".encode()


_EPOCH = datetime.fromtimestamp(0, UTC)  # not read by _derive_control_id given an MSH-10


def ack_code(ack: bytes | str) -> tuple[str, str]:
    """(MSA-1, MSA-2) of an acknowledgement. Raises HL7ParseError if it has no MSA."""
    msg = parse_message(ack)
    msa = msg.segment("MSA")
    if msa is None:
        raise HL7ParseError(SEGMENT_SEQUENCE_ERROR, "the acknowledgement has no MSA segment")
    return msa.value(1), unescape(msa.field(2), msg.encoding)
