"""Escape sequences: how delimiter characters travel inside HL7 v2 data values.

HL7 v2.5.1 chapter 2, 2.7 (use of escape sequences in text fields):

- ``\\F\\`` field, ``\\S\\`` component, ``\\T\\`` subcomponent, ``\\R\\`` repetition and
  ``\\E\\`` escape separators (2.7.1); ``\\P\\`` truncation character (v2.7, 2.7.1; only
  when MSH-2 declares one, otherwise ``\\P\\`` is left as written).
- ``\\Xhh...\\`` hexadecimal data (2.7.3): decoded as UTF-8 when valid, else Latin-1.
- Formatting commands (``\\H\\``, ``\\N\\``, ``\\.br\\``, ``\\.sp\\``, ...), character set
  switches (``\\C..\\``, ``\\M..\\``), locally defined ``\\Z..\\`` escapes and anything
  unknown are **left in the value as written**: they are presentation for FT/TX text, and
  keeping them verbatim loses nothing for the consumer that renders them.

Unescaping never raises: an escape sequence is data, and bad data stays data (an
unterminated or invalid sequence is returned as written).
"""

from __future__ import annotations

from functools import lru_cache

from isthmus.formats.hl7v2.encoding import EncodingChars

_HEX = frozenset("0123456789abcdefABCDEF")


def _hex(seq: str) -> str | None:
    digits = seq[1:]
    if not digits or len(digits) % 2 or not _HEX.issuperset(digits):
        return None
    data = bytes.fromhex(digits)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


@lru_cache(maxsize=64)
def _unescape_map(enc: EncodingChars) -> dict[str, str]:
    mapping = {
        "F": enc.field,
        "S": enc.component,
        "T": enc.subcomponent,
        "R": enc.repetition,
        "E": enc.escape,
    }
    if enc.truncation:
        mapping["P"] = enc.truncation
    return mapping


def unescape(value: str, enc: EncodingChars) -> str:
    """Replace the escape sequences of one primitive value (a leaf: already split)."""
    esc = enc.escape
    if esc not in value:
        return value
    mapping = _unescape_map(enc)
    parts = value.split(esc)
    out = [parts[0]]
    last = len(parts) - 1
    i = 1
    while i <= last:
        seq = parts[i]
        if i == last:  # an escape character with no closing one: data, keep it
            out.append(esc + seq)
            break
        rep = mapping.get(seq)
        if rep is None:
            rep = _hex(seq) if seq[:1] == "X" else None
            if rep is None:
                rep = esc + seq + esc
        out.append(rep)
        out.append(parts[i + 1])
        i += 2
    return "".join(out)


@lru_cache(maxsize=64)
def escape_table(enc: EncodingChars) -> dict[int, str]:
    """The `str.translate` table of `escape` for `enc` (one lookup, then many values)."""
    e = enc.escape
    table = {
        ord(enc.escape): f"{e}E{e}",
        ord(enc.field): f"{e}F{e}",
        ord(enc.component): f"{e}S{e}",
        ord(enc.subcomponent): f"{e}T{e}",
        ord(enc.repetition): f"{e}R{e}",
        ord("\r"): f"{e}X0D{e}",
        ord("\n"): f"{e}X0A{e}",
    }
    if enc.truncation:
        table[ord(enc.truncation)] = f"{e}P{e}"
    return table


def escape(value: str, enc: EncodingChars) -> str:
    """Escape a primitive value so it can be written into a message using ``enc``.

    Delimiters become ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\`` (and ``\\P\\`` when a truncation
    character is declared); CR and LF become ``\\X0D\\``/``\\X0A\\`` so the value cannot
    split a segment. ``unescape(escape(v, enc), enc) == v`` for every string ``v``.
    """
    return value.translate(escape_table(enc))
