"""FHIR R4 transaction and batch Bundles posted to /fhir (3.1.0.11; api/fhir_routes.py
routes POST /fhir here).

A transaction is all or nothing: the intake (flows.fhir_intake) stores every entry in one
`accept`, ids from the resources' own (else a content hash), `urn:uuid` references
rewritten to `Type/id`. A batch's entries stand alone: each POST or PUT is one write of
api/fhir.py (the same checks, versions and answers), each GET one read; the response
Bundle carries each entry's status, and its `location` absolute.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import msgspec
from starlette.responses import Response

from isthmus.api.fhir import fhir_response, outcome
from isthmus.formats.fhir import (
    Bundle,
    BundleEntry,
    FhirError,
    decode_bundle,
    operation_outcome,
)

if TYPE_CHECKING:
    from isthmus.api.fhir import FhirApi

_json_dec = msgspec.json.Decoder(float_hook=Decimal)

_REASONS: Final = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
}


def answer_bundle(api: FhirApi, body: bytes, peer: str, base: str = "") -> Response:
    """POST /fhir: a transaction (all or nothing) or a batch (each entry alone), answered
    with the transaction-response or batch-response Bundle."""
    refused, wrong = api.strict(body, "Bundle")
    if refused is not None:
        return refused
    try:
        bundle = decode_bundle(body)
    except FhirError as err:
        return outcome(400, [err])
    if bundle.type == "batch":  # entries stand alone: each is checked by `write`
        return _batch(api, bundle, peer, base)
    if wrong:
        return outcome(422, wrong)
    result = api.intake.transaction(bundle, peer)
    if result.status != 200:
        return outcome(result.status, result.errors)
    return fhir_response(
        {
            "resourceType": "Bundle",
            "type": "transaction-response",
            "entry": [_absolute(e, base) for e in result.entries],
        }
    )


def _batch(api: FhirApi, bundle: Bundle, peer: str, base: str = "") -> Response:
    out: list[dict[str, Any]] = []
    for e in bundle.entry:
        out.append(_absolute(_batch_entry(api, e, peer, base), base))
    return fhir_response({"resourceType": "Bundle", "type": "batch-response", "entry": out})


def _batch_entry(api: FhirApi, e: BundleEntry, peer: str, base: str = "") -> dict[str, Any]:
    req = e.request
    if e.error is not None:
        return _entry_error(400, e.error)
    if req is None:
        return _entry_error(
            400,
            FhirError(
                "required",
                "a batch entry needs a request",
                [f"Bundle.entry[{e.index}].request"],
            ),
        )
    url = req.url.lstrip("/")
    if req.method == "GET":
        return api.intake.get_entry(url)
    if req.method not in ("POST", "PUT") or e.raw is None or e.resource_type is None:
        return _entry_error(
            405,
            FhirError(
                "not-supported",
                f"{req.method} {url} is not supported",
                [f"Bundle.entry[{e.index}]"],
            ),
        )
    rid = url.partition("/")[2] if req.method == "PUT" else None
    resp = api.write(e.resource_type, rid or None, e.raw, peer, base=base)
    body = _json_dec.decode(bytes(resp.body))
    status = f"{resp.status_code} {_REASONS.get(resp.status_code, '')}".strip()
    if resp.status_code >= 400:
        return {"response": {"status": status, "outcome": body}}
    return {
        "response": {
            "status": status,
            "location": resp.headers.get("location", ""),
            "etag": resp.headers.get("etag", ""),
        }
    }


def _absolute(entry: dict[str, Any], base: str) -> dict[str, Any]:
    """A transaction or batch response entry with its `response.location` absolute."""
    resp = entry.get("response")
    loc = resp.get("location") if isinstance(resp, dict) else None
    if (
        not base
        or not isinstance(resp, dict)
        or not isinstance(loc, str)
        or not loc
        or "://" in loc
    ):
        return entry
    return {**entry, "response": {**resp, "location": f"{base}/{loc.lstrip('/')}"}}


def _entry_error(status: int, err: FhirError) -> dict[str, Any]:
    return {
        "response": {"status": f"{status} {_REASONS[status]}", "outcome": operation_outcome([err])}
    }


__all__ = ["answer_bundle"]
