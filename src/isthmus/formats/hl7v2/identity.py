"""Who sent a message and which message it is: the inbox identity of an HL7 v2 message.

HL7 v2.5.1 chapter 2, 2.14.9: MSH-10 (message control id) is unique only for the system
that assigns it, named by MSH-3 (sending application) and MSH-4 (sending facility), both HD
whose first component (HD-1, namespace id) is what senders fill in. So the inbox identity
of a message is `<MSH-3.1>^<MSH-4.1>:<MSH-10>` (channel aside): the public samples that
reuse `MSG00001` across applications are distinct messages, and the same control id from
the same sender is the same message.

The sender parts are kept readable: only `%`, `^`, `:`, `/`, `#`, `?` and control
characters are percent-encoded in them, so the first `:` always ends the sender and
`control_id_of` gives MSH-10 back, whatever MSH-10 holds. A valid identity always has a
`^` before its first `:`; ids that do not (`frame:<hash>`, `sha256:<hash>`) can never be
claimed by a valid message.

A charge (DFT FT1) posts once per sending system, transaction id and transaction type: its
business key is `hl7|<MSH-3.1>|<MSH-4.1>|<FT1-2>|<FT1-6>` when FT1-2 is present (6.5.1.2,
transaction ID; FT1-6 from HL7 table 0017, so a credit that reuses its charge's id is its own
fact), else none, and the event id is its identity.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from isthmus.formats.hl7v2.message import Message

_UNSAFE: Final = re.compile(r"[%^:/#?\x00-\x1f\x7f]")
FRAMING_PREFIX: Final = "frame:"  # a broken MLLP block: never a valid message's identity


def _part(text: str) -> str:
    text = text.strip()
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}", text)


def message_identity(sending_application: str, sending_facility: str, control_id: str) -> str:
    """`<MSH-3.1>^<MSH-4.1>:<MSH-10>`, the sender parts percent-encoded where needed."""
    return f"{_part(sending_application)}^{_part(sending_facility)}:{control_id.strip()}"


def identity_of(msg: Message) -> str:
    """The inbox identity of a parsed message: `<MSH-3.1>^<MSH-4.1>:<MSH-10>`."""
    return message_identity(msg.sending_application, msg.sending_facility, msg.control_id)


def control_id_of(identity: str) -> str:
    """MSH-10 of an identity (the text itself when it is not one, e.g. a bare MSH-10)."""
    sender, sep, control = identity.partition(":")
    return control if sep and "^" in sender else identity


def is_identity(text: str) -> bool:
    """True when `text` is shaped like `message_identity` (a sender, then `:`)."""
    sender, sep, _ = text.partition(":")
    return bool(sep) and "^" in sender


def charge_keys(msg: Message) -> list[str]:
    """The business key of each FT1 charge, in order ("" where FT1-2 is empty)."""
    sender = f"hl7|{msg.sending_application.strip()}|{msg.sending_facility.strip()}|"
    return [
        f"{sender}{txn}|{_code(ft1.value(6))}" if (txn := ft1.value(2).strip()) else ""
        for ft1 in msg.segments_named("FT1")
    ]


TABLE_0017: Final = frozenset({"AJ", "CD", "CG", "CO", "PY"})  # HL7 table 0017, transaction type


def _code(text: str) -> str:
    """A table 0017 code as it is; anything else (a site code, or a name typed in the wrong
    field) only as a digest, so a key never carries what may be patient data."""
    text = text.strip()
    return text if text in TABLE_0017 else "#" + hashlib.sha256(text.encode()).hexdigest()[:16]


__all__ = [
    "FRAMING_PREFIX",
    "charge_keys",
    "control_id_of",
    "identity_of",
    "is_identity",
    "message_identity",
]
