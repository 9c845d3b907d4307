"""A FHIR file (`isthmus ingest`, the drop folder) as the transaction it stands for: a
transaction Bundle as it is, a batch or collection Bundle as a transaction of its
entries, one finance or supply resource as a one-entry transaction, so a file is taken
whole or not at all (`flows.fhir_intake.FhirIntake.take_file`).
"""

from __future__ import annotations

from typing import Final

import msgspec

from isthmus.flows.fhir_ids import json_decoder, json_encoder
from isthmus.formats.fhir import FINANCE_TYPES, FhirError
from isthmus.formats.supply.fhir import SUPPLY_TYPES

FILE_BUNDLES: Final = frozenset({"transaction", "batch", "collection"})


def as_transaction(raw: bytes) -> bytes:
    """The transaction a FHIR file stands for: a batch or collection Bundle becomes a
    transaction (entries without a ``request`` are POSTs of their resource, under its own
    id), one finance or supply resource a one-entry transaction. Raises FhirError
    otherwise."""
    try:
        doc = json_decoder.decode(raw)
    except msgspec.MsgspecError as exc:
        raise FhirError("structure", f"the file is not JSON: {exc}") from exc
    rtype = doc.get("resourceType") if isinstance(doc, dict) else None
    if rtype in FINANCE_TYPES or rtype in SUPPLY_TYPES:
        assert isinstance(doc, dict)
        doc = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": doc}]}
    elif rtype != "Bundle":
        raise FhirError(
            "invalid", f"expected a Bundle or a finance resource, got {rtype!r}", ["resourceType"]
        )
    assert isinstance(doc, dict)
    if doc.get("type") not in FILE_BUNDLES:
        raise FhirError(
            "invalid",
            f"a {doc.get('type')!r} Bundle is not taken from a file "
            "(transaction, batch or collection)",
            ["Bundle.type"],
        )
    if doc["type"] == "transaction":
        return raw
    entries = doc.get("entry")
    if not isinstance(entries, list):
        entries = []
    for e in entries:
        res = e.get("resource") if isinstance(e, dict) else None
        if isinstance(e, dict) and isinstance(res, dict) and "request" not in e:
            e["request"] = {"method": "POST", "url": str(res.get("resourceType", ""))}
    return json_encoder.encode({**doc, "type": "transaction", "entry": entries})
