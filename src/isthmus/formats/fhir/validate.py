"""Full FHIR validation on demand, with fhir.resources' R4B models (pydantic).

FHIR R4 4.0.1 defines what a valid resource is: cardinalities, data type formats, value
sets with required bindings, choice types, no unknown elements (JSON representation 2.6.2,
https://hl7.org/fhir/R4/json.html). fhir.resources ships R4B (4.3.0) models; R4B changed
no element of the finance resources, so they check R4 content here. Its default models
are R5, which reject R4 data.

This costs 20 to 100 times the fast path (DESIGN.md, performance principles), so it runs
off the hot path: for the ``$validate`` operation, for a resource that failed the fast
checks and goes to a person, or in a nightly sweep. fhir.resources is imported lazily, on
the first call, so that the hub starts fast and the fast path never loads it.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Final

from isthmus.formats.fhir.outcome import FhirError

_TYPE_NAME: Final = re.compile(r"[A-Z][A-Za-z]{1,63}")
_CODES: Final = {
    "missing": "required",
    "json_invalid": "structure",
    "json_type": "structure",
    "extra_forbidden": "structure",
    "model_type": "structure",
    "fhir-validation-wrong-resource-type": "invalid",
    "literal_error": "code-invalid",
    "enum": "code-invalid",
}
_loaded: dict[str, Any] = {}


def _model(resource_type: str) -> Any:
    """The R4B pydantic model class for a resource type, or None if there is none."""
    if resource_type in _loaded:
        return _loaded[resource_type]
    try:
        module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    except ModuleNotFoundError:
        model = None
    else:
        base = importlib.import_module("fhir.resources.R4B.resource").Resource
        model = getattr(module, resource_type, None)
        if not (isinstance(model, type) and issubclass(model, base)):
            model = None  # a data type (Money) or a helper module, not a resource
    _loaded[resource_type] = model
    return model


def _fhirpath(root: str, loc: tuple[Any, ...]) -> str:
    """``('item', 0, 'net', 'value')`` -> ``Claim.item[0].net.value``."""
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "resource_type":
            path += ".resourceType"
        elif isinstance(part, str) and part.replace("_", "").isalnum():
            path += f".{part}"
    return path


def _issue(root: str, err: dict[str, Any]) -> FhirError:
    kind = str(err.get("type", ""))
    code = _CODES.get(kind) or ("value" if kind else "invalid")
    msg = " ".join(str(err.get("msg", "invalid")).split())
    loc = tuple(err.get("loc", ()))
    expression = [] if kind == "json_invalid" else [_fhirpath(root, loc)]
    return FhirError(code, msg, expression)


def validate_full(resource_type: str, data: bytes | str) -> list[FhirError]:
    """Every R4(B) validation error of a JSON resource, with its FHIRPath; [] if valid.

    ``resource_type`` is the declared type (the URL's, or the one read by the decoder); a
    resource of another type is reported as "invalid" at ``resourceType``. The input
    values are left out of the diagnostics: they may be PHI.
    """
    if not _TYPE_NAME.fullmatch(resource_type):
        return [FhirError("not-supported", f"{resource_type!r} is not a resource type name")]
    model = _model(resource_type)
    if model is None:
        return [
            FhirError(
                "not-supported", f"no R4 model for resource type {resource_type!r}", [resource_type]
            )
        ]
    pydantic = importlib.import_module("pydantic")
    try:
        model.model_validate_json(data)
    except pydantic.ValidationError as exc:
        return [_issue(resource_type, err) for err in exc.errors(include_input=False)]
    except (ValueError, TypeError, RecursionError) as exc:  # the models' own validators
        return [FhirError("invalid", f"{type(exc).__name__}: {exc}", [resource_type])]
    return []
