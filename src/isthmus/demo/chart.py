"""The demonstration chart: the mapping tables `isthmus demo` posts with, and nothing else.

A site's chart (facility -> ERP company, department -> cost center, charge code -> revenue
account and service line) is its own: a hub started without one holds every charge behind
a mapping work item (flows/mapping_holds.py) until the site maps it, so a forgotten table
never posts to demonstration accounts. This chart is used only by `isthmus demo`, by a
config that asks for it (`[mappings] include = "demo"`), and by tests that say so.

It is written as a `[mappings]` table of a config file would be, and read by the same
parser (`config.mappings_from_table`). It maps procedure codes only (CPT, HCPCS, HL7 v2.5.1
FT1-7 transaction code): never a diagnosis code. "GHHSFacility" and "RAD-1" are the
facility and department of the public HL7 v2 samples in shared/corpora, so that a test
replaying them with this chart posts their charges.
"""

from __future__ import annotations

from typing import Any, Final

from isthmus.config import Mappings, mappings_from_table

NAME: Final = "demo"

_CODES: Final = {
    "71045": ("4100", "Imaging"),
    "71046": ("4100", "Imaging"),
    "74177": ("4100", "Imaging"),
    "70450": ("4100", "Imaging"),
    "80053": ("4200", "Laboratory"),
    "85025": ("4200", "Laboratory"),
    "81001": ("4200", "Laboratory"),
    "84443": ("4200", "Laboratory"),
    "99281": ("4300", "Emergency"),
    "99283": ("4300", "Emergency"),
    "99285": ("4300", "Emergency"),
    "99011": ("4300", "Emergency"),
    "J1100": ("4400", "Pharmacy"),
    "J2405": ("4400", "Pharmacy"),
    "J0696": ("4400", "Pharmacy"),
    "27447": ("4500", "Surgery"),
    "47562": ("4500", "Surgery"),
    "93000": ("4600", "Cardiology"),
    "93306": ("4600", "Cardiology"),
}

TABLE: Final[dict[str, Any]] = {
    "facility_company": {"NORTH": "C100", "SOUTH": "C200", "GHHSFacility": "C100"},
    "department_cost_center": {
        "RAD": "CC-4100",
        "LAB": "CC-4200",
        "ED": "CC-4300",
        "PHARM": "CC-4400",
        "SURG": "CC-4500",
        "CARD": "CC-4600",
        "RAD-1": "CC-4100",
    },
    "charge_codes": {
        code: {"revenue_account": account, "service_line": line}
        for code, (account, line) in _CODES.items()
    },
}


def demo_mappings() -> Mappings:
    """The demonstration chart as typed mappings (what `include = "demo"` loads)."""
    return mappings_from_table({"include": NAME})
