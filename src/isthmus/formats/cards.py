"""The one card-number detector: payment card numbers (PANs) found in any text that enters
the hub, and masked. Pure.

A PAN (ISO/IEC 7812-1) is 13 to 19 digits whose last is a Luhn (mod 10) check digit.
Senders write them with separators (``4111 1111 1111 1111``, ``4111-1111-1111-1111``,
``4111.1111.1111.1111``, doubled blanks after a copy from a PDF), so a candidate is a run of
digit groups joined by blanks, dots or dashes; every stretch of consecutive groups holding
13 to 19 digits is checked, so a card number next to another number (``4111... 20261104``)
is found too. A stretch is a card only when it also opens with a card network's issuer
range and has that network's length (`issued`): zero-padded ids, all-zero placeholders and
ACH trace numbers (which open with a routing number) are not cards.

Every channel that takes identifiers a person may have typed uses this module: the
settlement and bank CSV cells (`formats.settlement.table`), the refund, workforce and supply
JSON bodies (`api.json_body`), workforce timecard files, HL7 v2 PID-18 and FT1 fields
(`formats.hl7v2.cards`). A hit is refused (a finding naming the field, never the value)
and masked in whatever is kept (`mask`, `mask_bytes`): all but the last four digits become
``*`` (PCI DSS v4.0 requirement 3.4.1), so a stored or logged copy never holds a PAN, and
a PAN never becomes part of a key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

MIN_DIGITS: Final = 13
MAX_DIGITS: Final = 19
# digit groups joined by separators (blanks, tabs, dots, dashes, at most 3 in a row)
_RUN: Final = re.compile(r"(?<![0-9])[0-9]+(?:[ \t.\-\u2010-\u2015]{1,3}[0-9]+)*")
_GROUP: Final = re.compile(r"[0-9]+")
# what any card number contains: 13 digits with at most 3 separators between two of them
# (a search in C, so that the text of ordinary fields costs next to nothing)
_CANDIDATE: Final = re.compile(r"[0-9](?:[ \t.\-\u2010-\u2015]{0,3}[0-9]){12}")


def luhn(digits: str) -> bool:
    """The Luhn (mod 10) check of ISO/IEC 7812-1 annex B, on ASCII digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# Issuer identification number ranges and lengths of the card networks (first digits,
# inclusive ranges compared on the same number of leading digits): what a card number looks
# like, so that other Luhn-valid identifiers (a 15-digit ACH trace opens with the ODFI's
# routing number, 01-12, 21-32, 61-72 or 80) are not taken for one.
_NETWORKS: Final[tuple[tuple[str, str, frozenset[int]], ...]] = (
    ("4", "4", frozenset({13, 16, 19})),  # Visa
    ("51", "55", frozenset({16})),
    ("2221", "2720", frozenset({16})),  # Mastercard
    ("34", "34", frozenset({15})),
    ("37", "37", frozenset({15})),  # American Express
    ("6011", "6011", frozenset(range(16, 20))),
    ("644", "649", frozenset(range(16, 20))),
    ("65", "65", frozenset(range(16, 20))),  # Discover
    ("3528", "3589", frozenset(range(16, 20))),  # JCB
    ("300", "305", frozenset(range(14, 20))),
    ("36", "36", frozenset(range(14, 20))),
    ("38", "39", frozenset(range(16, 20))),  # Diners Club
    ("62", "62", frozenset(range(16, 20))),  # UnionPay
    ("2200", "2204", frozenset(range(16, 20))),  # Mir
    ("50", "50", frozenset(range(13, 20))),
    ("56", "69", frozenset(range(13, 20))),  # Maestro
)


def issued(digits: str) -> bool:
    """True when `digits` opens with a card network's issuer range and has its length."""
    return any(
        lo <= digits[: len(lo)] <= hi and len(digits) in lengths for lo, hi, lengths in _NETWORKS
    )


def _is_pan(digits: str) -> bool:
    return MIN_DIGITS <= len(digits) <= MAX_DIGITS and issued(digits) and luhn(digits)


def spans(text: str) -> Iterator[tuple[int, int]]:
    """The (start, end) of each card number in `text`, separators included, in order and
    not overlapping."""
    if _CANDIDATE.search(text) is None:
        return
    for run in _RUN.finditer(text):
        groups = [(g.start(), g.end()) for g in _GROUP.finditer(run.group())]
        base, i = run.start(), 0
        while i < len(groups):
            hit = None
            count = 0
            for j in range(i, len(groups)):
                count += groups[j][1] - groups[j][0]
                if count > MAX_DIGITS:
                    break
                if count >= MIN_DIGITS:
                    body = run.group()[groups[i][0] : groups[j][1]]
                    if _is_pan(re.sub(r"[^0-9]", "", body)):
                        hit = j  # the longest stretch from group i that is a PAN
            if hit is None:
                i += 1
                continue
            yield base + groups[i][0], base + groups[hit][1]
            i = hit + 1


# a stretch of digits and separators long enough for a card number (a superset of every
# run `spans` reads), and the digits a card network's issuer range opens with
_LONG: Final = re.compile(r"[0-9][0-9 \t.\-\u2010-\u2015]{12,}")
_NOT_ISSUER_AFTER_2: Final = frozenset("0189")  # 2200-2204 and 2221-2720 only


# every byte a `_LONG` stretch is made of in UTF-8 (the dashes U+2010-U+2015 are E2 80 9x)
# becomes "0", any other "\n": a stretch is then 13 zeros in a row, which a substring
# search finds in C far faster than the regular expression scans the text
_STRETCH: Final = bytes.maketrans(
    bytes(range(256)),
    bytes(
        0x30 if b in b"0123456789 \t.-" or b in (0xE2, 0x80) or 0x90 <= b <= 0x95 else 0x0A
        for b in range(256)
    ),
)
_THIRTEEN: Final = b"0" * MIN_DIGITS


def may_hold_card(text: str) -> bool:
    """A cheap necessary condition for `has_card`: some digit run of `text` holds 13
    digits and has a group opening as an issuer range does (2-6: `_NETWORKS`). Dates and
    timestamps (19xx, 20xx) never pass, so ordinary messages stop here."""
    if _THIRTEEN not in text.encode("utf-8", "surrogatepass").translate(_STRETCH):
        return False  # no stretch of 13 digits and separators at all: the usual answer
    for run in _LONG.findall(text):
        groups = _GROUP.findall(run)
        if sum(map(len, groups)) < MIN_DIGITS:
            continue
        for g in groups:
            if g[0] in "3456" or (g[0] == "2" and g[1:2] not in _NOT_ISSUER_AFTER_2):
                return True
    return False


def has_card(text: str) -> bool:
    """True when `text` holds a card number anywhere."""
    return next(spans(text), None) is not None


def looks_like_card(value: str) -> bool:
    """True when `value` holds a card number (the name the settlement checks used)."""
    return has_card(value)


def _masked(found: str) -> str:
    digits = re.sub(r"[^0-9]", "", found)
    return "*" * (len(digits) - 4) + digits[-4:]


def mask(text: str) -> str:
    """`text` with each card number's digits but the last four replaced by ``*`` (and its
    separators dropped); anything else as it was."""
    out, last = [], 0
    for start, end in spans(text):
        out += [text[last:start], _masked(text[start:end])]
        last = end
    return "".join(out) + text[last:] if out else text


def mask_bytes(data: bytes) -> bytes:
    """`mask` on bytes of any encoding that keeps ASCII digits as ASCII (UTF-8, Latin-1,
    HL7 v2 and X12 text): the bytes are read as Latin-1, one character per byte."""
    text = data.decode("latin-1")
    masked = mask(text)
    return data if masked is text else masked.encode("latin-1")


__all__ = [
    "MAX_DIGITS",
    "MIN_DIGITS",
    "has_card",
    "issued",
    "looks_like_card",
    "luhn",
    "mask",
    "mask_bytes",
    "may_hold_card",
    "spans",
]
