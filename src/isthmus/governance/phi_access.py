"""Who may read patient data (PHI), and what everyone else gets instead. Pure decisions.

The one table of the PHI-bearing resources and fields the hub serves, for every shell (FHIR
API, REST API, console). The permission table (`governance.rbac`) says who may call a
route; this one says which of those callers see the patient in what it answers:

- FHIR Patient and Encounter (`GET /fhir/Patient/{id}`, `/fhir/Encounter/{id}`): readers
  get the resource as stored; the others get it without identifiers, names, telecom,
  addresses, birth date, narrative, contacts, diagnoses or dates of the stay (an allowlist
  of elements, below), marked REDACTED in `meta.security` (FHIR R4 4.0.1 Meta.security,
  code REDACTED of http://terminology.hl7.org/CodeSystem/v3-ObservationValue).
- Every other FHIR resource (Account, ChargeItem, Claim, ExplanationOfBenefit, ...): the
  finance elements stay; reference `display` texts (a patient's name, often), the
  narrative (`text`) and `Account.name` go, for the same roles.
- The raw stored message (HL7 v2, X12, FHIR JSON, CSV as received): readers only; the
  others are refused (console `GET /console/raw/...`, `rbac` permission of that route).
- Work item details and inbox errors are not in the table: they never hold a patient value
  (`formats.hl7v2.errors`: texts name the field and the rule), so every role that may list
  work items reads them.

The readers are the people who fix feeds and those who audit them: `admin`,
`integration-engineer`, `auditor`, the same roles the console has always shown the raw
message to. `read-only` (dashboards, Prometheus), `finance-approver` and `revenue-cycle`
work with account tokens, amounts and codes, never with a patient's identity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from isthmus.governance.rbac import ADMIN, AUDITOR, ENGINEER

READERS: Final = frozenset({ADMIN, ENGINEER, AUDITOR})
# the caller of the API before `isthmus init` (loopback reads only): as trusted as the
# local CLI's read commands, which show raw messages to whoever can read the data directory
LOCAL: Final = "local"
REDACTED: Final = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "REDACTED",
    "display": "redacted",
}


@dataclass(frozen=True)
class Rule:
    """What a role outside `readers` gets: "redacted" (the `keep` elements only, or with
    `drop` removed) or "forbidden" (403)."""

    readers: frozenset[str]
    others: str
    keep: frozenset[str] = frozenset()


_BASE = frozenset({"resourceType", "id", "meta"})
TABLE: Final[Mapping[str, Rule]] = {
    "fhir:Patient": Rule(
        READERS, "redacted", _BASE | {"active", "gender", "deceasedBoolean", "managingOrganization"}
    ),
    "fhir:Encounter": Rule(
        READERS,
        "redacted",
        _BASE
        | {
            "status",
            "class",
            "type",
            "serviceType",
            "priority",
            "subject",
            "account",
            "serviceProvider",
            "partOf",
        },
    ),
    "fhir:*": Rule(READERS, "redacted"),  # the finance types: displays and narrative go
    "message:raw": Rule(READERS, "forbidden"),
}
# elements removed from the other FHIR types for roles outside the readers
_DROP_ANY: Final = frozenset({"text", "contained"})
_DROP_BY_TYPE: Final[Mapping[str, frozenset[str]]] = {"Account": frozenset({"name"})}


def rule(resource: str) -> Rule:
    """The rule of a resource: `fhir:<type>` falls back to `fhir:*`."""
    found = TABLE.get(resource)
    if found is None and resource.startswith("fhir:"):
        found = TABLE["fhir:*"]
    if found is None:
        raise KeyError(f"no PHI rule for {resource!r}")
    return found


def may_read(resource: str, roles: Iterable[str]) -> bool:
    """True when one of `roles` reads `resource` as stored."""
    held = set(roles)
    return LOCAL in held or bool(rule(resource).readers & held)


def _no_displays(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: _no_displays(v)
            for k, v in node.items()
            if not (k == "display" and "reference" in node)
        }
    if isinstance(node, list):
        return [_no_displays(v) for v in node]
    return node


def fhir_view(doc: dict[str, Any], roles: Iterable[str]) -> dict[str, Any]:
    """A FHIR resource as `roles` may see it: as stored for the readers, else redacted
    (see the module docstring), with REDACTED added to `meta.security`."""
    rtype = str(doc.get("resourceType", ""))
    if may_read(f"fhir:{rtype}", roles):
        return doc
    r = rule(f"fhir:{rtype}")
    if r.keep:
        out = {k: v for k, v in doc.items() if k in r.keep}
    else:
        drop = _DROP_ANY | _DROP_BY_TYPE.get(rtype, frozenset())
        out = {k: v for k, v in doc.items() if k not in drop}
    out = dict(_no_displays(out))
    meta = dict(out.get("meta") or {})
    meta["security"] = [*(meta.get("security") or []), REDACTED]
    out["meta"] = meta
    return out


__all__ = ["LOCAL", "READERS", "REDACTED", "TABLE", "Rule", "fhir_view", "may_read", "rule"]
