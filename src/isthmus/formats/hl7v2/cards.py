"""Card numbers in HL7 v2 account fields: refused, and masked in what is kept. Pure.

The fields a billing system fills with account and transaction identifiers are where a
card number typed by mistake ends up: PID-18 patient account number (CX, HL7 v2.5.1
3.4.2.18) and the identifier and text fields of FT1 financial transaction (6.5.1): FT1-2
transaction id, FT1-3 batch id, FT1-7 code, FT1-13 department, FT1-20 performed by and the
others. The date/time, quantity and amount fields of FT1 (FT1-1 set id, FT1-4, FT1-5,
FT1-10, FT1-11, FT1-12, FT1-15, FT1-22) are typed and never a card number.

Every one of those fields goes through the one detector (`formats.cards`). A hit refuses
the message (HL7 table 0357 code 102, data type error) with an error that names the field,
never its value, and `masked` gives the bytes to keep for inspection with every card
number found masked to its last four digits, so the inbox never stores one. A refused
message has no events, so a card number never becomes a business key (`charge_keys`).
"""

from __future__ import annotations

from typing import Final

from isthmus.formats.cards import has_card, mask, may_hold_card, spans
from isthmus.formats.hl7v2.errors import DATA_TYPE_ERROR, ErrorLocation, HL7ParseError
from isthmus.formats.hl7v2.message import Message

# FT1 fields typed as dates, numbers or amounts (HL7 v2.5.1 6.5.1): not checked
_FT1_TYPED: Final = frozenset({1, 4, 5, 10, 11, 12, 15, 22})
RULE: Final = "holds a card number; send the account or transaction number, never card data"


def _checked(msg: Message) -> list[tuple[str, int, int, str]]:
    """(segment, repeat, field, text) of every non-empty field checked."""
    out: list[tuple[str, int, int, str]] = []
    for seq, pid in enumerate(msg.segments_named("PID"), 1):
        if text := pid.field(18):
            out.append(("PID", seq, 18, text))
    for seq, ft1 in enumerate(msg.segments_named("FT1"), 1):
        out += [
            ("FT1", seq, n, text)
            for n, text in enumerate(ft1.fields(), 1)
            if text and n > 1 and n not in _FT1_TYPED
        ]
    return out


def card_locations(msg: Message) -> list[ErrorLocation]:
    """Where the message's account fields hold a card number, in message order."""
    # the whole FT1 segments and PID-18 first, in one cheap search: most messages stop here
    pids = msg.segments_named("PID")
    if not may_hold_card(
        "\r".join([*(s.raw for s in msg.segments_named("FT1")), *(p.field(18) for p in pids)])
    ):
        return []
    checked = _checked(msg)
    # one search over them all first ('|' joins no digit run): most messages stop here
    if not has_card("|".join(c[3] for c in checked)):
        return []
    return [
        ErrorLocation(seg, seq, n)
        for seg, seq, n, text in checked
        if next(spans(text), None) is not None
    ]


def card_error(msg: Message) -> HL7ParseError | None:
    """The refusal of a message with a card number in an account field, or None."""
    found = card_locations(msg)
    if not found:
        return None
    loc = found[0]
    where = f"{loc.segment}-{loc.field}" + (f" (repeat {loc.sequence})" if loc.sequence > 1 else "")
    more = f"; {len(found) - 1} more field(s) too" if len(found) > 1 else ""
    return HL7ParseError(DATA_TYPE_ERROR, f"{where} {RULE}{more}", loc)


def masked(raw: bytes, msg: Message | None) -> bytes:
    """`raw` with every card number found in the account fields masked, wherever in the
    message it occurs (a number copied into another field too)."""
    if msg is None:
        return raw
    for *_, text in _checked(msg):
        for start, end in spans(text):
            found = text[start:end]
            raw = raw.replace(found.encode("utf-8"), mask(found).encode("utf-8"))
    return raw


__all__ = ["RULE", "card_error", "card_locations", "masked"]
