"""Which HL7 v2 message types and trigger events the hub takes, ignores or refuses (pure).

A hospital feed carries every trigger event of HL7 v2.5.1 table 0003 (event type), on every
message type of table 0076 (ADT, BAR, DFT, ORU, SIU, MDM, VXU, ORM, ...). Many EHR
interfaces stop or alarm on a negative acknowledgement, so what the hub does not use is
acknowledged AA and kept as `ignored` with its reason (DESIGN.md: "accepted and ignored,
never refused by default"). AR stays for what cannot be taken: an unreadable header, a
sender that does not own the domain, or a type the site explicitly refuses.

A channel may set the disposition per message type or type and trigger
(`[channels.<name>] messages = { "ORU" = "ignore", "ADT^A29" = "refuse", "*" = "ignore" }`);
the most specific key wins: `TYPE^TRIGGER`, then `TYPE`, then `*`. Without an entry the
default is `accept` for what a flow handles (`HANDLED`) and `ignore` for the rest. `accept`
of something no flow handles is still ignored, with that reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Disposition = Literal["accept", "ignore", "refuse"]
DISPOSITIONS: tuple[Disposition, ...] = ("accept", "ignore", "refuse")

# HL7 v2.5.1 chapters 3 (ADT) and 6 (BAR, DFT): the events a flow turns into finance facts
HANDLED: dict[str, frozenset[str]] = {
    "ADT": frozenset(
        {
            "A01",
            "A02",
            "A03",
            "A04",
            "A05",
            "A06",
            "A07",
            "A08",
            "A11",
            "A12",
            "A13",
            "A14",
            "A15",
            "A16",
            "A17",
            "A25",
            "A26",
            "A27",
            "A28",
            "A29",
            "A31",
            "A38",
            "A40",
            "A41",
            "A42",
            "A44",
            "A45",
            "A47",
            "A49",
            "A50",
            "A51",
        }
    ),
    "BAR": frozenset({"P01", "P02", "P05", "P06", "P12"}),
    "DFT": frozenset({"P03", "P11"}),
}

# Taken (AA) and kept, with no finance effect: said so in the stored reason
NO_FINANCE_EFFECT: dict[str, str] = {
    "ADT^A09": "patient departing, tracking",
    "ADT^A10": "patient arriving, tracking",
    "ADT^A32": "cancel patient arriving, tracking",
    "ADT^A33": "cancel patient departing, tracking",
    "ADT^A60": "update allergy information",
    "BAR^P10": "transmit ambulatory payment classification groups",
}

_KEY = re.compile(r"\*|[A-Z0-9]{3}(\^[A-Z0-9]{3})?")


@dataclass(frozen=True, slots=True)
class Decision:
    """What the channel does with one message type: `reason` says why it is not taken."""

    disposition: Disposition
    reason: str = ""


ACCEPT = Decision("accept")


def policy_table(raw: object, where: str) -> dict[str, Disposition]:
    """A channel's `messages` table, checked: keys `TYPE`, `TYPE^TRIGGER` or `*`, values
    accept, ignore or refuse. Raises ValueError naming the offending key."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be a table of message type = accept|ignore|refuse")
    out: dict[str, Disposition] = {}
    for key, value in raw.items():
        norm = str(key).strip().upper()
        if not _KEY.fullmatch(norm):
            raise ValueError(f"{where}.{key!r}: a key is TYPE, TYPE^TRIGGER or * (ADT, ADT^A29)")
        if value not in DISPOSITIONS:
            raise ValueError(f"{where}.{key!r} must be accept, ignore or refuse, not {value!r}")
        out[norm] = value
    return out


def decide(
    mtype: str, trigger: str, table: Mapping[str, str] | None = None, *, channel: str = ""
) -> Decision:
    """The disposition of one message type and trigger on a channel (module docstring)."""
    name = f"{mtype}^{trigger}"
    chosen = None
    if table:
        chosen = table.get(name) or table.get(mtype) or table.get("*")
    where = f"[channels.{channel or '<channel>'}] messages"
    if chosen == "refuse":
        return Decision("refuse", f"{name} is refused by {where}")
    if chosen == "ignore":
        return Decision("ignore", f"{name} ignored by {where}")
    if trigger in HANDLED.get(mtype, ()):
        return ACCEPT
    what = NO_FINANCE_EFFECT.get(name)
    if what is not None:
        return Decision("ignore", f"{name} ({what}) has no finance effect")
    return Decision("ignore", f"{name} is not used by the hub: no finance effect")
