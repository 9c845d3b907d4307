"""FHIR resource ids and digests as the intake stores them (`flows.fhir_intake`) and the
FHIR API reads them back (`api.fhir`): a valid R4 id (`ID`: 1 to 64 letters, digits, "-"
or "."), the SHA-256 of the stored bytes, a server id written into a created resource, and
a stable id for a Bundle entry that has none (so a resend gets the same one). The JSON
coders keep decimals exact (float_hook=Decimal), as the finance decoders do.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from decimal import Decimal
from typing import Final

import msgspec

from isthmus.formats.fhir import BundleEntry

ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")
json_encoder: Final = msgspec.json.Encoder(decimal_format="number")
json_decoder: Final = msgspec.json.Decoder(float_hook=Decimal)


class _IdOnly(msgspec.Struct):
    id: str | None = None


_ids = msgspec.json.Decoder(_IdOnly)


def digest(raw: bytes) -> str:
    """The hex SHA-256 of a resource's bytes."""
    return hashlib.sha256(raw).hexdigest()


def with_id(raw: bytes, rid: str) -> bytes:
    """The JSON resource with its ``id`` set (a create without one gets the server's)."""
    doc = json_decoder.decode(raw)
    if isinstance(doc, dict) and doc.get("id") != rid:
        doc = {
            "resourceType": doc.get("resourceType"),
            "id": rid,
            **{k: v for k, v in doc.items() if k not in ("resourceType", "id")},
        }
        return json_encoder.encode(doc)
    return raw


def own_id(raw: bytes) -> str | None:
    """The resource's own ``id`` when it is a valid FHIR R4 id, else None."""
    try:
        rid = _ids.decode(raw).id
    except msgspec.MsgspecError:
        return None
    return rid if rid and ID.fullmatch(rid) else None


def entry_id(e: BundleEntry) -> str:
    """A Bundle entry's id: its resource's own, else a UUID from its bytes (or fullUrl), so a
    resend gets the same one."""
    if e.raw is not None and (rid := own_id(e.raw)):
        return rid
    return str(uuid.UUID(digest(e.raw or (e.full_url or "").encode())[:32]))
