"""PHI minimization per destination: which journal-batch fields each ERP destination gets.

DESIGN.md "Governance and security": the ERP never receives PHI, only account tokens and
financial dimensions. Batch lines carry no PHI to begin with (ledger/batch.py); the
allow-list is the second fence, and it lets a site send less: a destination gets only the
fields listed for it, the others leave empty. The fields that can ever leave are
`FIELDS`; `REQUIRED` are the ones without which a batch is no journal (a line needs an
account, an amount, a currency and a date), so they cannot be left out.

    [allowlist]
    file = ["account", "currency", "debit", "credit", "posted_on", "period", "line_no",
            "company", "cost_center"]
    tryton = [...]
    rest = [...]

A field outside `FIELDS` (say "mrn" or "patient_name") is refused when the config is
loaded, so a site cannot widen what leaves the hub by configuration. A destination without
an entry gets every field of `FIELDS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from isthmus.errors import ConfigurationError

DESTINATIONS: Final = ("file", "tryton", "rest")
REQUIRED: Final = frozenset(
    {"line_no", "posted_on", "period", "account", "currency", "debit", "credit"}
)
# may be left out: dimensions, the opaque account token, and the source references
OPTIONAL: Final = frozenset(
    {"company", "cost_center", "service_line", "account_token", "source_entries", "correlation_ids"}
)
FIELDS: Final = REQUIRED | OPTIONAL


class AllowListConfigError(ConfigurationError, ValueError):
    """The [allowlist] table is invalid; the operator must fix the entry named."""


def parse(raw: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """Validate the [allowlist] table: per destination, the batch fields it may receive.
    Refuses an unknown destination, a field outside `FIELDS`, or a list missing a `REQUIRED`
    field."""
    out: dict[str, frozenset[str]] = {}
    for dest, value in raw.items():
        if dest not in DESTINATIONS:
            raise AllowListConfigError(
                f"allowlist.{dest}: unknown destination; destinations are {', '.join(DESTINATIONS)}"
            )
        if not isinstance(value, list) or not all(isinstance(f, str) for f in value):
            raise AllowListConfigError(f"allowlist.{dest} must be a list of field names")
        wider = sorted(set(value) - FIELDS)
        if wider:
            raise AllowListConfigError(
                f"allowlist.{dest}: field {wider[0]!r} may not leave the hub; fields are "
                f"{', '.join(sorted(FIELDS))}"
            )
        missing = sorted(REQUIRED - set(value))
        if missing:
            raise AllowListConfigError(
                f"allowlist.{dest} must include {', '.join(missing)} (a journal line needs them)"
            )
        out[dest] = frozenset(value)
    return out


def allowed(table: Mapping[str, frozenset[str]], destination: str) -> frozenset[str]:
    """The fields `destination` may receive."""
    return table.get(destination, FIELDS)


def withheld(table: Mapping[str, frozenset[str]], destination: str) -> frozenset[str]:
    """The optional fields `destination` must not receive (left empty)."""
    return OPTIONAL - allowed(table, destination)


__all__ = [
    "DESTINATIONS",
    "FIELDS",
    "OPTIONAL",
    "REQUIRED",
    "AllowListConfigError",
    "allowed",
    "parse",
    "withheld",
]
