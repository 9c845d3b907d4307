"""The chart a Synthea-style FHIR site writes: charges from its Claims, its codes mapped.

Synthea sends Claims and ExplanationOfBenefits but no ChargeItems, so a site takes its
charges from the Claim items (`[channels.fhir] charges_from = "claim"`, issue 15 rule 6)
and maps what they name: each provider Organization to a company and a cost center, each
item code (SNOMED CT, CVX) to a revenue account, read here from the bundles themselves as a
site would read them from its own EHR's master files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

CLAIM_CHARGES = '[channels.fhir]\ncharges_from = "claim"\n'


def _resources(paths: Sequence[Path], rtype: str) -> list[dict[str, object]]:
    return [
        e["resource"]
        for p in paths
        for e in json.loads(p.read_bytes())["entry"]
        if e["resource"]["resourceType"] == rtype
    ]


def organizations(paths: Sequence[Path]) -> list[str]:
    return sorted({str(r["id"]) for r in _resources(paths, "Organization")})


def claim_codes(paths: Sequence[Path]) -> list[str]:
    return sorted(
        {
            str(c["code"])
            for r in _resources(paths, "Claim")
            for i in r.get("item", [])  # type: ignore[attr-defined]
            for c in i.get("productOrService", {}).get("coding", [])[:1]
        }
    )


def mapping_tables(paths: Sequence[Path], *, company: str = "C100", charges: bool = True) -> str:
    """TOML tables mapping every Organization to `company` (and, with `charges`, to cost
    center CC-<n>, each claim code to revenue account 4000, charges taken from Claims)."""
    orgs = organizations(paths)
    text = "[mappings.facility_company]\n" + "".join(f'"{o}" = "{company}"\n' for o in orgs)
    if not charges:
        return text
    text += "[mappings.department_cost_center]\n" + "".join(
        f'"{o}" = "CC-{n}"\n' for n, o in enumerate(orgs, start=1)
    )
    text += "[mappings.charge_codes]\n" + "".join(
        f'"{c}" = {{ revenue_account = "4000", service_line = "Ambulatory" }}\n'
        for c in claim_codes(paths)
    )
    return CLAIM_CHARGES + text
