"""Strict FHIR R4 JSON: what the fast decoders let through and a FHIR server must refuse.

The msgspec decoders (`decode`) read dates as plain strings and, like most JSON readers,
keep the last of two members with the same name. Two rules of FHIR R4 4.0.1 are therefore
checked here, on the raw JSON, before anything is decoded or stored (issue 16, strict
inputs), for every /fhir write (create, update, transaction, batch) and every FHIR file:

- **Dates.** A date, dateTime or instant matches the regular expression of its type (FHIR
  R4 2.24.0.0 primitive types, https://hl7.org/fhir/R4/datatypes.html#primitive) and is a
  real calendar day ("Dates SHALL be valid dates"): ``1942-08-17X``, ``1942-02-30`` and a
  time without a time zone are refused. Which elements are dates comes from their names
  (the tables of `date_elements`): `DATE_ELEMENTS` lists every element name that has a
  date type wherever FHIR R4(B) uses it (``birthDate``, ``created``,
  ``occurrenceDateTime``, ``valueInstant``...); ``start``/``end`` are checked inside a
  Period (an element of type Period: ``period``, ``billablePeriod``, ``servicedPeriod``...)
  and in Appointment and Slot, ``event`` inside a Timing, ``when`` inside a Signature;
  ``lastUpdated`` inside ``meta`` is an instant.
  tests/formats/fhir/test_fhir_strict.py derives the same lists from the R4B models of
  fhir.resources, so none is missing or wrong.
- **One member per name.** RFC 8259 section 4 leaves an object with a name twice to the
  reader, and readers disagree (first wins, last wins): ``{"birthDate": "1942-08-17",
  "birthDate": "1990-01-01"}`` would be one thing to the hub and another to the next
  system. Refused, naming the element.

Also refused: JSON that is not JSON (``NaN``, ``Infinity``, bad UTF-8), and nesting deeper
than ``max_depth`` arrays and objects (the API passes `[limits] max_json_depth`).

Every issue names the element (``Patient.birthDate``,
``Bundle.entry[2].resource.period.start``) and the rule, never the value: a date of birth
or a name sent in the wrong element is patient data, and an OperationOutcome goes back to
the sender and into the inbox error column. Pure: no I/O.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, Final

from isthmus.formats.fhir.date_elements import (
    CONTEXT_OF,
    DATE_ELEMENTS,
    IN_CONTEXT,
    RULES,
    valid_date,
)
from isthmus.formats.fhir.outcome import FhirError

_ELEMENT_NAME: Final = re.compile(r"_?[A-Za-z][A-Za-z0-9_]{0,63}")
_RESOURCE_TYPE: Final = re.compile(r"[A-Z][A-Za-z]{1,63}")
DEFAULT_MAX_DEPTH: Final = 64


class _Repeated(dict[str, Any]):
    """A JSON object that had a member name twice (the names, in order of repetition)."""

    repeated: list[str]


class _NotJson(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) == len(pairs):
        return out
    seen: set[str] = set()
    marked = _Repeated(pairs)
    marked.repeated = []
    for k, _ in pairs:
        if k in seen:
            marked.repeated.append(k)
        seen.add(k)
    return marked


def _constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON value (RFC 8259 section 6)")


@functools.lru_cache(maxsize=4096)
def _named(key: str) -> bool:
    return _ELEMENT_NAME.fullmatch(key) is not None


def _where(path: str, key: str) -> str:
    return f"{path}.{key}" if _named(key) else path


class _Walk:
    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.errors: list[FhirError] = []

    def value(self, node: Any, path: str, context: str, depth: int) -> None:
        if isinstance(node, dict):
            self.obj(node, path, context, depth + 1)
        elif isinstance(node, list):
            if depth + 1 > self.max_depth:
                self.too_deep(path)
                return
            for i, item in enumerate(node):
                self.value(item, f"{path}[{i}]", context, depth + 1)

    def too_deep(self, path: str) -> None:
        if not any(e.code == "too-costly" for e in self.errors):
            self.errors.append(
                FhirError(
                    "too-costly",
                    f"the JSON nests deeper than {self.max_depth} arrays and "
                    "objects ([limits] max_json_depth)",
                    [path],
                )
            )

    def obj(self, node: dict[str, Any], path: str, context: str, depth: int) -> None:
        if depth > self.max_depth:
            self.too_deep(path)
            return
        rtype = node.get("resourceType")
        if isinstance(rtype, str) and _RESOURCE_TYPE.fullmatch(rtype):
            context = rtype
        if isinstance(node, _Repeated):
            for key in dict.fromkeys(node.repeated):
                named = _named(key)
                self.errors.append(
                    FhirError(
                        "structure",
                        ("the element" if named else "a member that is not a FHIR element name")
                        + " appears more than once in one JSON "
                        "object; send it once (RFC 8259 section 4: readers disagree on which "
                        "one counts)",
                        [_where(path, key)],
                    )
                )
        local = IN_CONTEXT.get(context)
        for key, item in node.items():
            pattern = (local.get(key) if local else None) or DATE_ELEMENTS.get(key)
            if pattern is not None:
                self.dates(item, _where(path, key), pattern)
            if isinstance(item, (dict, list)):
                self.value(item, _where(path, key), CONTEXT_OF.get(key, ""), depth)

    def dates(self, item: Any, path: str, pattern: re.Pattern[str]) -> None:
        if isinstance(item, str):
            if not valid_date(item, pattern):
                self.errors.append(FhirError("value", RULES[pattern], [path]))
        elif isinstance(item, list):
            for i, each in enumerate(item):
                if isinstance(each, str) and not valid_date(each, pattern):
                    self.errors.append(FhirError("value", RULES[pattern], [f"{path}[{i}]"]))


def strict_errors(
    raw: bytes | str, root: str = "", *, max_depth: int = DEFAULT_MAX_DEPTH
) -> list[FhirError]:
    """The issues that make `raw` unacceptable FHIR JSON (module docstring); [] when none.

    `root` names the document in the expressions when it has no ``resourceType`` of its
    own (the URL's type, say); the resource's own ``resourceType`` wins.
    """
    try:
        doc = json.loads(
            raw, object_pairs_hook=_pairs, parse_constant=_constant, parse_float=str, parse_int=str
        )
    except RecursionError:
        return [
            FhirError(
                "too-costly",
                f"the JSON nests deeper than {max_depth} arrays "
                "and objects ([limits] max_json_depth)",
                [root] if root else [],
            )
        ]
    except _NotJson as exc:
        return [FhirError("structure", f"the body is not JSON: {exc}")]
    except UnicodeDecodeError:
        return [FhirError("structure", "the body is not UTF-8 JSON")]
    except ValueError as exc:  # JSONDecodeError: its message gives a position, no content
        return [FhirError("structure", f"the body is not JSON: {exc}")]
    walk = _Walk(max_depth)
    if isinstance(doc, dict):
        rtype = doc.get("resourceType")
        name = rtype if isinstance(rtype, str) and _RESOURCE_TYPE.fullmatch(rtype) else root
        walk.obj(doc, name or "$", name, 1)
    else:
        walk.value(doc, root or "$", "", 0)
    return walk.errors


__all__ = ["DEFAULT_MAX_DEPTH", "strict_errors"]
