"""The outbound 837: clean claims rebatched under our own control numbers.

Claims that passed ``claim_edits`` are sent in batches: one functional group (GS01 HC) per
implementation guide, one transaction set per group, the HL hierarchy renumbered (a
billing provider or subscriber level shared by consecutive claims is written once; HL04
says whether children follow). ISA13, GS06 and ST02 are new numbers the caller issues from
its persisted counter (X12.5/X12.6: unique per sender for a long enough time that
acknowledgements can name them), and BHT03 the batch reference. The result says which
claim went in which group and set, so a 999 (AK102 + AK202) and a 277CA find them.

Segments are rewritten in the standard delimiters (* ^ : ~) whatever the source used.
Pure: no I/O, no clock (the caller passes ``at``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from isthmus.formats.x12.claim_edits import ScrubbedClaim
from isthmus.formats.x12.envelope_writer import envelope
from isthmus.formats.x12.reader import Delimiters

OUT = Delimiters()


class Placement(msgspec.Struct, frozen=True, kw_only=True):
    """Where one claim went: the numbers its acknowledgements will name."""

    patient_control_number: str
    interchange_control: str  # ISA13, 9 digits
    group_control: str  # GS06
    transaction_control: str  # ST02


class OutboundBatch(msgspec.Struct, frozen=True, kw_only=True):
    """An 837 interchange built: its text, ISA13, and where each claim went."""

    text: str
    interchange_control: str
    placements: tuple[Placement, ...]


def _convert(raw: str, src: Delimiters) -> list[str]:
    parts = raw.split(src.element)
    if src == OUT:
        return parts
    out = []
    for part in parts:
        v = part
        if src.component != OUT.component:
            v = v.replace(src.component, OUT.component)
        if src.repetition and src.repetition != OUT.repetition:
            v = v.replace(src.repetition, OUT.repetition)
        out.append(v)
    return out


def build_837(
    claims: Sequence[ScrubbedClaim],
    *,
    sender: str,
    receiver: str,
    interchange_control: int,
    group_control: int,
    transaction_control: int,
    reference: str,
    at: datetime,
    usage: str = "P",
) -> OutboundBatch:
    """One interchange of the given clean claims. Group and set control numbers count up
    from ``group_control`` and ``transaction_control``, one per guide present."""
    if any(not c.clean for c in claims):
        raise ValueError("only claims that passed their edits are batched")
    guides: dict[str, list[ScrubbedClaim]] = {}
    for c in claims:
        guides.setdefault(c.guide, []).append(c)
    isa13 = f"{interchange_control:09d}"
    placements: list[Placement] = []
    groups: list[tuple[str, list[list[str]]]] = []
    for n, (guide, members) in enumerate(guides.items()):
        gs06 = str(group_control + n)
        st02 = f"{transaction_control + n:04d}"
        segs = _set_segments(members, st02=st02, reference=reference, at=at)
        placements += [
            Placement(
                patient_control_number=c.patient_control_number,
                interchange_control=isa13,
                group_control=gs06,
                transaction_control=st02,
            )
            for c in members
        ]
        segs.append(["SE", str(len(segs) + 1), st02])
        groups.append((guide, segs))
    text = "".join(
        envelope(
            segs,
            functional_id="HC",
            guide=guide,
            sender=sender,
            receiver=receiver,
            interchange_control=interchange_control,
            group_control=group_control + n,
            at=at,
            usage=usage,
        )
        for n, (guide, segs) in enumerate(groups)
    )
    if len(groups) > 1:  # one interchange, several groups: keep one ISA and one IEA
        text = _merge(text, len(groups), isa13)
    return OutboundBatch(text=text, interchange_control=isa13, placements=tuple(placements))


def _set_segments(
    members: list[ScrubbedClaim], *, st02: str, reference: str, at: datetime
) -> list[list[str]]:
    """ST, the first claim's header (BHT03 our reference), the HL levels renumbered (a level
    equal to the one before is written once) and each claim; SE is added by the caller."""
    d = members[0].delimiters
    header = [_convert(s, d) for s in members[0].header]
    for h in header:
        if h[0] == "BHT":
            h.extend([""] * (7 - len(h)))
            h[3], h[4], h[5] = reference, at.strftime("%Y%m%d"), at.strftime("%H%M")
    segs: list[list[str]] = [["ST", "837", st02, members[0].guide], *header]
    hls: list[list[str]] = []
    last: dict[str, tuple[tuple[str, ...], int]] = {}

    def level(block: tuple[str, ...], parent: int, key: str, src: Delimiters) -> int:
        prev = last.get(key)
        if prev is not None and prev[0] == block:
            return prev[1]
        first = _convert(block[0], src)
        number = len(hls) + 1
        hl = [
            "HL",
            str(number),
            str(parent) if parent else "",
            first[3] if len(first) > 3 else "",
            "0",
        ]
        hls.append(hl)
        segs.append(hl)
        segs.extend(_convert(s, src) for s in block[1:])
        last[key] = (block, number)
        for k in [k for k in last if k > key]:
            del last[k]  # a new parent: the levels below start again
        if parent:
            hls[parent - 1][4] = "1"
        return number

    for c in members:
        src = c.delimiters
        b = level(c.billing, 0, "1", src)
        s = level(c.subscriber, b, "2", src)
        if c.patient:
            level(c.patient, s, "3", src)
        else:
            last.pop("3", None)
        segs.extend(_convert(x, src) for x in c.claim)
    return segs


def _merge(text: str, groups: int, isa13: str) -> str:
    lines = text.splitlines(keepends=True)
    keep: list[str] = []
    for line in lines:
        if line.startswith("IEA") or (line.startswith("ISA") and keep):
            continue
        keep.append(line)
    keep.append(f"IEA*{groups}*{isa13}~\n")
    return "".join(keep)
