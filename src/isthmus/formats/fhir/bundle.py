"""Transaction and batch processing of a Bundle: order, identities, references.

FHIR R4 4.0.1 RESTful API, 3.1.0.11 batch/transaction, and its processing rules
(https://hl7.org/fhir/R4/http.html#trules):

- entries are processed DELETE first, then POST, then PUT/PATCH, then GET/HEAD, each
  group in document order; a batch keeps document order (its entries are independent);
- a POST creates a new identity; its ``fullUrl`` (usually ``urn:uuid:...``) is a
  temporary id, and every reference to it in the Bundle is replaced by ``Type/newid``;
  a PUT to ``Type/id`` gives its ``fullUrl`` that identity;
- a conditional create (``ifNoneExist``) that matches an existing resource creates
  nothing, and references to its ``fullUrl`` point to the match; conditional references
  (``Patient?identifier=...``) are replaced by the single match of their search;
- identities touched twice in the DELETE/POST/PUT steps make the transaction fail, and
  a ``urn:uuid`` reference to no entry of the Bundle is an error.

Pure: searches are the caller's (:func:`conditional_queries` lists them, their results
come back as ``resolved``), new ids come from ``new_id``. Replacing references is done on
the decoded Structs (:func:`resolve_references`) and on the raw JSON that will be stored
(:func:`resolve_raw`), where every string equal to a mapped ``fullUrl`` is replaced, as
R4 asks for references and uri elements (narrative links are left as they are).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, TypeVar

import msgspec

from isthmus.formats.fhir.datatypes import FhirStruct, Reference
from isthmus.formats.fhir.decode import Bundle, BundleEntry
from isthmus.formats.fhir.outcome import FhirError

S = TypeVar("S", bound=FhirStruct)

_ORDER: Final = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_LOCAL: Final = re.compile(r"urn:(?:uuid|oid):")
_RELATIVE: Final = re.compile(r"([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})")
_JSON_IN: Final = msgspec.json.Decoder(float_hook=Decimal)
_JSON_OUT: Final = msgspec.json.Encoder(decimal_format="number")


@dataclass(frozen=True, slots=True)
class Step:
    """One entry of the plan: what to do, and to which identity ("Type/id")."""

    entry: BundleEntry
    method: str
    target: str | None  # "Type/id"; None for a search (GET Type?q) or a conditional miss
    create: bool = False  # POST (or a PUT/conditional PUT) that creates a new identity
    noop: bool = False  # a conditional create that matched: nothing to write


@dataclass(frozen=True, slots=True)
class TransactionPlan:
    """The entries in processing order, the fullUrl -> "Type/id" map, and the errors."""

    steps: list[Step]
    references: dict[str, str] = field(default_factory=dict)
    errors: list[FhirError] = field(default_factory=list)


def _default_id(entry: BundleEntry) -> str:
    return str(uuid.uuid4())


def conditional_queries(bundle: Bundle) -> list[str]:
    """The searches the caller must run before planning ("Type?query"), de-duplicated.

    ``ifNoneExist`` of conditional creates, conditional PUT/DELETE urls, and conditional
    references found in the decoded finance resources.
    """
    found: dict[str, None] = {}
    for e in bundle.entry:
        req = e.request
        if req is not None and req.if_none_exist and e.resource_type:
            found[f"{e.resource_type}?{req.if_none_exist.lstrip('?')}"] = None
        if req is not None and req.method in ("PUT", "DELETE", "PATCH") and "?" in req.url:
            found[req.url] = None
        if e.resource is not None:
            for _, ref in _walk_refs(e.resource):
                if ref.reference and "?" in ref.reference and not _LOCAL.match(ref.reference):
                    found[ref.reference] = None
    return list(found)


def plan_transaction(
    bundle: Bundle,
    new_id: Callable[[BundleEntry], str] = _default_id,
    resolved: Mapping[str, str | None] | None = None,
) -> TransactionPlan:
    """Order the entries and assign identities per the R4 transaction rules.

    ``resolved`` maps each query of :func:`conditional_queries` to the "Type/id" of its
    single match, or None when nothing matched (several matches are the caller's error).
    The plan's ``errors`` are the reasons the transaction must fail, with FHIRPath
    expressions under ``Bundle.entry[i]``.
    """
    resolved = resolved or {}
    errors: list[FhirError] = []
    if bundle.type not in ("transaction", "batch"):
        errors.append(
            FhirError("invalid", f"a {bundle.type} Bundle is not processed", ["Bundle.type"])
        )
    refs: dict[str, str] = {}
    steps: list[Step] = []
    seen_urls: set[str] = set()
    for e in bundle.entry:
        at = f"Bundle.entry[{e.index}]"
        if e.error is not None:
            errors.append(e.error)
        if e.full_url:
            if e.full_url in seen_urls:
                errors.append(
                    FhirError("duplicate", f"fullUrl {e.full_url} appears twice", [f"{at}.fullUrl"])
                )
            seen_urls.add(e.full_url)
        step = _step(e, at, new_id, resolved, errors)
        if step is None:
            continue
        steps.append(step)
        if e.full_url and step.target and step.method in ("POST", "PUT"):
            refs[e.full_url] = step.target
    if bundle.type == "transaction":
        refs.update({query: target for query, target in resolved.items() if target})
        steps.sort(key=lambda s: _ORDER[s.method])
        _overlaps(steps, errors)
        for e in bundle.entry:
            if e.resource is not None:
                for expr, ref in _unresolved(e, refs, resolved):
                    errors.append(
                        FhirError(
                            "not-found",
                            f"reference {ref} matches no entry and no search result",
                            [expr],
                        )
                    )
    else:
        refs = {}  # batch entries are independent: nothing is rewritten across them
    return TransactionPlan(steps, refs, errors)


def _step(
    e: BundleEntry,
    at: str,
    new_id: Callable[[BundleEntry], str],
    resolved: Mapping[str, str | None],
    errors: list[FhirError],
) -> Step | None:
    req = e.request
    if req is None:
        errors.append(
            FhirError("required", "a transaction entry needs a request", [f"{at}.request"])
        )
        return None
    method, url = req.method, req.url.lstrip("/")
    if method in ("POST", "PUT") and e.raw is None:
        errors.append(FhirError("required", f"{method} needs a resource", [f"{at}.resource"]))
        return None
    rtype = e.resource_type
    if method == "POST":
        if url.split("?")[0] != rtype:
            errors.append(
                FhirError("invalid", f"POST {url} does not create a {rtype}", [f"{at}.request.url"])
            )
            return None
        if req.if_none_exist:
            match = resolved.get(f"{rtype}?{req.if_none_exist.lstrip('?')}")
            if match:
                return Step(e, method, match, noop=True)
        return Step(e, method, f"{rtype}/{new_id(e)}", create=True)
    if method in ("PUT", "PATCH", "DELETE") and "?" in url:
        match = resolved.get(url)
        if match is None and method == "PUT":
            return Step(e, method, f"{rtype}/{new_id(e)}", create=True)
        return Step(e, method, match)
    if method in ("GET", "HEAD"):
        m = _RELATIVE.fullmatch(url)
        return Step(e, method, url if m else None)
    m = _RELATIVE.fullmatch(url)
    if m is None:
        errors.append(FhirError("invalid", f"{method} {url} is not Type/id", [f"{at}.request.url"]))
        return None
    if method == "PUT":
        rid = getattr(e.resource, "id", None)
        if m.group(1) != rtype or (rid is not None and rid != m.group(2)):
            errors.append(
                FhirError(
                    "invalid",
                    f"PUT {url} does not match the resource {rtype}/{rid}",
                    [f"{at}.request.url"],
                )
            )
            return None
    return Step(e, method, url)


def _overlaps(steps: list[Step], errors: list[FhirError]) -> None:
    touched: dict[str, int] = {}
    for s in steps:
        if s.method in ("GET", "HEAD") or s.target is None or s.noop:
            continue
        if s.target in touched:
            errors.append(
                FhirError(
                    "processing",
                    f"{s.target} is changed by entries {touched[s.target]} and {s.entry.index}",
                    [f"Bundle.entry[{s.entry.index}].request"],
                )
            )
        touched[s.target] = s.entry.index


def _walk_refs(value: Any, path: str = "") -> list[tuple[str, Reference]]:
    """Every Reference in a decoded Struct, with its FHIRPath below ``path``."""
    out: list[tuple[str, Reference]] = []
    if isinstance(value, Reference):
        out.append((path, value))
    elif isinstance(value, FhirStruct):
        names = zip(value.__struct_fields__, value.__struct_encode_fields__, strict=True)
        for name, json_name in names:
            out.extend(_walk_refs(getattr(value, name), f"{path}.{json_name}"))
    elif isinstance(value, tuple):
        for i, item in enumerate(value):
            out.extend(_walk_refs(item, f"{path}[{i}]"))
    return out


def _unresolved(
    e: BundleEntry, refs: Mapping[str, str], resolved: Mapping[str, str | None]
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for path, ref in _walk_refs(e.resource, e.expression):
        r = ref.reference
        if r and r not in refs and (_LOCAL.match(r) or ("?" in r and not resolved.get(r))):
            out.append((f"{path}.reference", r))
    return out


def resolve_references(resource: S, mapping: Mapping[str, str | None]) -> S:
    """A copy of a decoded Struct with its references mapped (fullUrl or query -> id)."""
    changes: dict[str, Any] = {}
    for name in resource.__struct_fields__:
        value = getattr(resource, name)
        new = _resolve_value(value, mapping)
        if new is not value:
            changes[name] = new
    return msgspec.structs.replace(resource, **changes) if changes else resource


def _resolve_value(value: Any, mapping: Mapping[str, str | None]) -> Any:
    if isinstance(value, Reference):
        target = mapping.get(value.reference) if value.reference else None
        return msgspec.structs.replace(value, reference=target) if target else value
    if isinstance(value, FhirStruct):
        return resolve_references(value, mapping)
    if isinstance(value, tuple):
        new = tuple(_resolve_value(v, mapping) for v in value)
        return new if any(a is not b for a, b in zip(new, value, strict=True)) else value
    return value


def resolve_raw(raw: bytes, mapping: Mapping[str, str | None]) -> bytes:
    """The raw JSON resource with every string equal to a mapped fullUrl replaced.

    Decimals keep their exact text (read as Decimal, written as JSON numbers).
    """
    doc = _JSON_IN.decode(raw)
    return _JSON_OUT.encode(_replace(doc, mapping))


def _replace(value: Any, mapping: Mapping[str, str | None]) -> Any:
    if isinstance(value, str):
        return mapping.get(value) or value
    if isinstance(value, dict):
        return {k: _replace(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, mapping) for v in value]
    return value
