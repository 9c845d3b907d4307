"""FHIR errors as data, and the OperationOutcome that carries them back to the sender.

FHIR R4 4.0.1 OperationOutcome (https://hl7.org/fhir/R4/operationoutcome.html): every
problem is one ``issue`` with a ``severity`` (IssueSeverity), a ``code`` from the IssueType
value set (https://hl7.org/fhir/R4/valueset-issue-type.html), human ``diagnostics`` and the
FHIRPath ``expression`` of the element at fault (https://hl7.org/fhir/R4/fhirpath.html).

:class:`FhirError` is both a value (the checks return lists of them) and an exception (the
decoders raise it, and nothing else, whatever the input). msgspec's error paths such as
``$.item[0].net.value`` are translated to FHIRPath, ``Claim.item[0].net.value``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Final, Literal

from isthmus.errors import InvalidInput

Severity = Literal["fatal", "error", "warning", "information"]

#: IssueType codes of FHIR R4 (http://hl7.org/fhir/issue-type), the only codes allowed.
ISSUE_TYPES: Final = frozenset(
    {
        "invalid", "structure", "required", "value", "invariant", "security", "login",
        "unknown", "expired", "forbidden", "suppressed", "processing", "not-supported",
        "duplicate", "multiple-matches", "not-found", "deleted", "too-long", "code-invalid",
        "extension", "too-costly", "business-rule", "conflict", "transient", "lock-error",
        "no-store", "exception", "timeout", "incomplete", "throttled", "informational",
    }
)  # fmt: skip
_SEVERITIES: Final = frozenset({"fatal", "error", "warning", "information"})


class FhirError(InvalidInput):
    """One OperationOutcome issue: what is wrong (``code``), why, and where (FHIRPath).

    Raised by the decoders (the inbox answers 400/422 and keeps the input) and returned as
    data by the checks. ``severity`` "error" or "fatal" means reject; "warning" means accept
    and report.
    """

    code: str
    diagnostics: str
    expression: tuple[str, ...]
    severity: Severity

    def __init__(
        self,
        code: str,
        diagnostics: str,
        expression: Iterable[str] = (),
        severity: Severity = "error",
    ) -> None:
        if code not in ISSUE_TYPES:
            raise ValueError(f"{code!r} is not a FHIR R4 IssueType code")
        if severity not in _SEVERITIES:
            raise ValueError(f"{severity!r} is not a FHIR R4 IssueSeverity code")
        expr = tuple(expression)
        super().__init__(code, diagnostics, expr, severity)
        self.code = code
        self.diagnostics = diagnostics
        self.expression = expr
        self.severity = severity

    def __str__(self) -> str:
        where = f" at {', '.join(self.expression)}" if self.expression else ""
        return f"{self.severity} {self.code}{where}: {self.diagnostics}"

    def __repr__(self) -> str:
        return (
            f"FhirError({self.code!r}, {self.diagnostics!r}, {list(self.expression)!r}, "
            f"{self.severity!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FhirError):
            return NotImplemented
        return self.args == other.args

    def __hash__(self) -> int:
        return hash(self.args)

    @property
    def is_error(self) -> bool:
        """True when the issue must make the receiver reject the resource."""
        return self.severity in ("error", "fatal")

    def within(self, prefix: str) -> FhirError:
        """The same issue with its expressions re-rooted, e.g. under ``Bundle.entry[3]``."""
        expr = [_reroot(prefix, e) for e in self.expression] or [prefix]
        return FhirError(self.code, self.diagnostics, expr, self.severity)

    def issue(self) -> dict[str, Any]:
        """This error as one R4 ``OperationOutcome.issue`` element."""
        out: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            out["expression"] = list(self.expression)
        return out


def _reroot(prefix: str, expression: str) -> str:
    """``Claim.item[0]`` under ``Bundle.entry[2].resource`` keeps its path below the type."""
    head, dot, rest = expression.partition(".")
    if head[:1].isupper() and "[" not in head:
        return f"{prefix}.{rest}" if dot else prefix
    return f"{prefix}.{expression}"


def operation_outcome(errors: Sequence[FhirError]) -> dict[str, Any]:
    """An R4 OperationOutcome resource (as a JSON-ready dict) reporting ``errors``.

    R4 requires at least one issue (``OperationOutcome.issue`` 1..*): with no errors the
    outcome holds a single informational "All OK" issue, as the specification suggests.
    """
    issues = [e.issue() for e in errors] or [
        {"severity": "information", "code": "informational", "diagnostics": "All OK"}
    ]
    return {"resourceType": "OperationOutcome", "issue": issues}


_MSGSPEC_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")


def fhirpath(root: str, msgspec_path: str) -> str:
    """Translate a msgspec error path (``$.item[0].net``, given without ``$``) to FHIRPath."""
    return root + msgspec_path


def from_validation_error(root: str, message: str) -> FhirError:
    """Translate a ``msgspec.ValidationError`` message for a resource of type ``root``.

    ``Expected `decimal | null`, got `str` - at `$.item[0].net.value``` becomes an issue of
    type "value" at ``Claim.item[0].net.value``; a missing required field becomes
    "required" at the path of that field.
    """
    m = _MSGSPEC_AT.match(message)
    msg, path = (m.group("msg"), m.group("path") or "") if m else (message, "")
    missing = _MISSING.match(msg)
    if missing:
        return FhirError("required", msg, [fhirpath(root, f"{path}.{missing.group('field')}")])
    if msg.startswith("Invalid enum value") or msg.startswith("Invalid value"):
        return FhirError("code-invalid", msg, [fhirpath(root, path)])
    return FhirError("value", msg, [fhirpath(root, path)])
