"""The envelope of an interchange the hub writes: ISA, GS, GE and IEA around its sets.

X12.5/X12.6 (005010): one interchange (ISA/IEA, fixed-width ISA with the sender and
receiver ids padded to 15, ISA11 the repetition separator, ISA16 the component separator)
holding one functional group (GS/GE, GS08 the implementation guide) around transaction sets
already complete (each ST..SE); GE01 counts the sets. Segments are written without trailing
empty elements (X12.6: no trailing element separators). Used by the 270 (`eligibility`),
the 277CA (`claim_status`) and the 837 batches (`claim_batch`); control numbers come from
the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from isthmus.formats.x12.reader import Delimiters, serialize


def _trim(seg: list[str]) -> list[str]:
    """Without trailing empty elements (X12.6: no trailing element separators)."""
    n = len(seg)
    while n > 1 and not seg[n - 1]:
        n -= 1
    return seg[:n]


def envelope(
    body: Sequence[list[str]],
    *,
    functional_id: str,
    guide: str,
    sender: str,
    receiver: str,
    interchange_control: int,
    group_control: int,
    at: datetime,
    usage: str = "P",
    delimiters: Delimiters | None = None,
) -> str:
    """ISA/GS/GE/IEA around already complete transaction sets (each ST..SE)."""
    d = delimiters or Delimiters()
    isa = [
        "ISA",
        "00",
        " " * 10,
        "00",
        " " * 10,
        "ZZ",
        sender.ljust(15)[:15],
        "ZZ",
        receiver.ljust(15)[:15],
        at.strftime("%y%m%d"),
        at.strftime("%H%M"),
        d.repetition or "U",
        "00501",
        f"{interchange_control:09d}",
        "0",
        usage,
        d.component,
    ]
    sets = sum(1 for s in body if s[0] == "ST")
    gs = [
        "GS",
        functional_id,
        sender,
        receiver,
        at.strftime("%Y%m%d"),
        at.strftime("%H%M"),
        str(group_control),
        "X",
        guide,
    ]
    tail = [["GE", str(sets), str(group_control)], ["IEA", "1", f"{interchange_control:09d}"]]
    segs = [isa, *[_trim(s) for s in [gs, *body, *tail]]]
    return serialize(segs, d, newline=True)
