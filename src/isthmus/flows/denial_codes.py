"""Which 835 claim payments are denials, and what their codes say: category and queue.

A claim payment is a denial when CLP02 is 4, or when nothing is paid and a CO/PR adjustment
gives a reason code (CARC, X12 code list 139) that denies rather than reduces
(:data:`DENIAL_CARCS`): `flows.remittance` then posts nothing and opens a `denial` item.
For a claim the hub submitted, `flows.claim_remit` files the denial under a category
(:data:`CATEGORIES`, from its CARC and RARC codes), each with its work queue
``denials-<category>``. Pure: codes in, answers out (issue 17; split from
`flows.remittance` and `flows.claim_remit`, which import these).
"""

from __future__ import annotations

from typing import Final

from isthmus.model import ClaimRemitted

DENIED: Final = "4"
# CARCs that deny a claim (or a line) outright rather than reduce it (X12 code list 139).
DENIAL_CARCS: Final = frozenset(
    {
        "4",
        "5",
        "6",
        "7",
        "8",
        "9",
        "11",
        "13",
        "15",
        "16",
        "18",
        "19",
        "20",
        "21",
        "22",
        "26",
        "27",
        "29",
        "31",
        "32",
        "33",
        "34",
        "35",
        "39",
        "40",
        "49",
        "50",
        "51",
        "54",
        "55",
        "56",
        "58",
        "96",
        "97",
        "107",
        "109",
        "110",
        "111",
        "114",
        "119",
        "129",
        "146",
        "147",
        "149",
        "150",
        "151",
        "160",
        "167",
        "170",
        "171",
        "172",
        "181",
        "182",
        "183",
        "184",
        "185",
        "197",
        "198",
        "200",
        "204",
        "208",
        "213",
        "219",
        "222",
        "226",
        "227",
        "234",
        "236",
        "242",
        "243",
        "A1",
        "B1",
        "B5",
        "B7",
        "B9",
        "B12",
        "B15",
        "B20",
    }
)


def is_denial(ev: ClaimRemitted) -> bool:
    """CLP02 = 4, or nothing paid and a CO/PR adjustment with a denial reason code."""
    if ev.reversal:
        return False
    if ev.claim_status == DENIED:
        return True
    return ev.paid == 0 and any(
        a.group in ("CO", "PR") and a.reason in DENIAL_CARCS and a.amount > 0
        for a in ev.adjustments
    )


def codes_of(ev: ClaimRemitted) -> str:
    """A claim payment's adjustments (835 CAS group-CARC amount) and remark codes (RARC) as text."""
    carc = ", ".join(f"{a.group}-{a.reason} {a.amount}" for a in ev.adjustments) or "none"
    return f"CARC {carc}; RARC {', '.join(ev.remarks) or 'none'}"


# CARC (X12 code list 139) -> denial category; RARC (code list 411) where the CARC is generic
CATEGORIES: Final[dict[str, frozenset[str]]] = {
    "eligibility": frozenset({"26", "27", "31", "32", "33", "177", "200", "B1", "N30"}),
    "authorization": frozenset({"15", "39", "62", "197", "198", "243", "N54"}),
    "coding": frozenset(
        {
            "4",
            "5",
            "6",
            "7",
            "8",
            "9",
            "10",
            "11",
            "12",
            "16",
            "181",
            "182",
            "185",
            "189",
            "199",
            "236",
            "M20",
            "M51",
            "N56",
        }
    ),
    "timely-filing": frozenset({"29"}),
    "medical-necessity": frozenset(
        {"50", "55", "56", "57", "58", "150", "151", "152", "167", "N115"}
    ),
    "duplicate": frozenset({"18", "B13"}),
}
OTHER: Final = "other"


def category_of(codes: list[str]) -> str:
    """The first category any CARC/RARC of a denial falls in (in CARC order), else other."""
    for code in codes:
        for name, members in CATEGORIES.items():
            if code in members:
                return name
    return OTHER


def denial_queue(category: str) -> str:
    """The work queue for denials of a category."""
    return f"denials-{category}"
