"""Decode FHIR R4 JSON into the finance Structs: one resource, or a Bundle of them.

FHIR R4 4.0.1 JSON format (https://hl7.org/fhir/R4/json.html): a resource is an object
whose ``resourceType`` names its type. Bundle (https://hl7.org/fhir/R4/bundle.html): the
``type`` (transaction, batch, collection, searchset...), and ``entry`` with ``fullUrl``,
``resource`` and, in a transaction or batch, ``request`` (method, url, ifNoneExist...).

This is the hot path: the ``resourceType`` is read from the first bytes when it comes first
(it nearly always does), then one msgspec pass decodes the finance elements and skips the
rest. In a Bundle, every ``entry.resource`` is kept as :class:`msgspec.Raw` bytes (for
storage and for full validation later) and only the finance types are decoded; the others
keep their ``resourceType`` and nothing more.

Whatever the input, the decoders raise :class:`FhirError` and nothing else. An entry of a
Bundle that does not decode carries its own error, so that a batch can answer per entry and
a transaction can refuse the whole Bundle with every issue at once.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar, cast

import msgspec

from isthmus.formats.fhir.datatypes import FhirStruct
from isthmus.formats.fhir.finance_types import FINANCE_TYPES, FinanceResource
from isthmus.formats.fhir.outcome import FhirError, from_validation_error
from isthmus.formats.fhir.resources import Resource

Data = bytes | bytearray | memoryview | str
R = TypeVar("R", bound=Resource)

BundleType = Literal[
    "document",
    "message",
    "transaction",
    "transaction-response",
    "batch",
    "batch-response",
    "history",
    "searchset",
    "collection",
]
Method = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]

_PEEK: Final = re.compile(rb'\A\s*\{\s*"resourceType"\s*:\s*"([A-Za-z]{1,64})"')


class _Head(FhirStruct, frozen=True, kw_only=True):
    resource_type: str | None = None


class BundleRequest(FhirStruct, frozen=True, kw_only=True):
    """Bundle.entry.request: the interaction of a transaction or batch entry (R4 10.1)."""

    method: Method
    url: str
    if_none_match: str | None = None
    if_modified_since: str | None = None
    if_match: str | None = None
    if_none_exist: str | None = None


class _WireEntry(FhirStruct, frozen=True, kw_only=True):
    full_url: str | None = None
    resource: msgspec.Raw = msgspec.Raw()
    request: BundleRequest | None = None


class _WireBundle(FhirStruct, frozen=True, kw_only=True, tag_field="resourceType", tag="Bundle"):
    id: str | None = None
    type: BundleType
    entry: tuple[_WireEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class BundleEntry:
    """One Bundle entry: its raw resource, decoded when it is a finance type."""

    index: int
    full_url: str | None
    resource_type: str | None
    raw: bytes | None
    resource: FinanceResource | None = None
    request: BundleRequest | None = None
    error: FhirError | None = None

    @property
    def expression(self) -> str:
        """FHIRPath of this entry's resource, for OperationOutcome issues."""
        return f"Bundle.entry[{self.index}].resource"


@dataclass(frozen=True, slots=True)
class Bundle:
    """A decoded Bundle: its type and entries, in document order."""

    type: str
    entry: list[BundleEntry] = field(default_factory=list)
    id: str | None = None

    @property
    def errors(self) -> list[FhirError]:
        """The decoding errors of all entries, rooted at ``Bundle.entry[i]``."""
        return [e.error for e in self.entry if e.error is not None]

    def resources(self, resource_type: builtins.type[R]) -> list[R]:
        """The decoded resources of one finance type, e.g. ``bundle.resources(Claim)``."""
        found: list[R] = []
        for e in self.entry:
            if isinstance(e.resource, resource_type):
                found.append(e.resource)
        return found


_DECODERS: Final[dict[str, msgspec.json.Decoder[Any]]] = {
    name: msgspec.json.Decoder(cls) for name, cls in FINANCE_TYPES.items()
}
_HEAD: Final = msgspec.json.Decoder(_Head)
_BUNDLE: Final = msgspec.json.Decoder(_WireBundle)


def _structure(exc: BaseException, root: str | None) -> FhirError:
    """Bytes that are not JSON (or not a JSON object) at all."""
    if isinstance(exc, RecursionError):
        msg = "JSON is nested too deeply"
    elif isinstance(exc, UnicodeError):
        msg = f"content is not valid UTF-8: {exc}"
    else:
        msg = str(exc)
    return FhirError("structure", msg, [root] if root else [])


def resource_type_of(data: Data) -> str:
    """The ``resourceType`` of a JSON resource, read without decoding the rest if it leads."""
    if not isinstance(data, str):
        m = _PEEK.match(data)
        if m:
            return m.group(1).decode("ascii")
    try:
        head = _HEAD.decode(data)
    except msgspec.ValidationError as exc:
        raise FhirError(
            "structure", f"a FHIR resource is a JSON object with a resourceType: {exc}"
        ) from exc
    except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
        raise _structure(exc, None) from exc
    if not head.resource_type:
        raise FhirError("required", "the resource has no resourceType", ["resourceType"])
    return head.resource_type


def _decode_typed(resource_type: str, data: Data) -> FinanceResource:
    try:
        return cast(FinanceResource, _DECODERS[resource_type].decode(data))
    except msgspec.ValidationError as exc:
        raise from_validation_error(resource_type, str(exc)) from exc
    except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
        raise _structure(exc, resource_type) from exc


def decode_resource(data: Data) -> tuple[str, FinanceResource]:
    """Decode one finance resource: ``("Claim", Claim(...))``.

    Raises :class:`FhirError`: "structure" for bytes that are not a JSON object,
    "not-supported" for a resource type outside the finance set, "value" (or "required",
    "code-invalid") with the FHIRPath of the element that has the wrong JSON type.
    """
    resource_type = resource_type_of(data)
    if resource_type not in _DECODERS:
        raise FhirError(
            "not-supported",
            f"resource type {resource_type!r} is not decoded here; supported: "
            + ", ".join(sorted(_DECODERS)),
            [resource_type],
        )
    return resource_type, _decode_typed(resource_type, data)


def decode_as(resource_class: type[R], data: Data) -> R:
    """Decode a resource that must be of one given finance type."""
    name = resource_class.__name__
    found = resource_type_of(data)
    if found != name:
        raise FhirError("invalid", f"expected a {name}, got {found!r}", ["resourceType"])
    return cast(R, _decode_typed(name, data))


def _entry(index: int, wire: _WireEntry) -> BundleEntry:
    raw = bytes(wire.resource) if wire.resource else None
    if raw is None or raw == b"null":
        return BundleEntry(index, wire.full_url, None, None, request=wire.request)
    where = f"Bundle.entry[{index}].resource"
    resource_type: str | None = None
    try:
        resource_type = resource_type_of(raw)
        resource = _decode_typed(resource_type, raw) if resource_type in _DECODERS else None
    except FhirError as err:
        return BundleEntry(
            index, wire.full_url, resource_type, raw, request=wire.request, error=err.within(where)
        )
    return BundleEntry(index, wire.full_url, resource_type, raw, resource, wire.request)


def decode_bundle(data: Data) -> Bundle:
    """Decode a Bundle; entries keep their raw resource, finance ones are decoded too.

    Raises :class:`FhirError` when the Bundle itself is broken (not JSON, not a Bundle, no
    ``type``); a broken entry is reported on that entry (:attr:`Bundle.errors`).
    """
    found = resource_type_of(data)
    if found != "Bundle":
        raise FhirError("invalid", f"expected a Bundle, got {found!r}", ["resourceType"])
    try:
        wire = _BUNDLE.decode(data)
    except msgspec.ValidationError as exc:
        raise from_validation_error("Bundle", str(exc)) from exc
    except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
        raise _structure(exc, "Bundle") from exc
    return Bundle(wire.type, [_entry(i, e) for i, e in enumerate(wire.entry)], wire.id)
