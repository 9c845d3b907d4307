"""FHIR R4 (4.0.1) REST API under /fhir: create, update, read, transaction/batch, metadata.

Every accepted resource goes through the inbox on channel ``fhir``: control id
``<type>/<id>``, digest the SHA-256 of the stored JSON, so an identical resend is a
duplicate (200, no second effect) and a create of a taken id with other content is a
conflict (409). A PUT of new content for a known id is an update, kept under
``<type>/<id>/_history/<digest16>``; only Patient, Encounter and Account updates carry
events (upserts), a changed ChargeItem or Claim is kept without a second posting.
A resource that fails the finance checks is kept as rejected (``<type>/<id>#<digest16>``)
and answered 422. Every error is an OperationOutcome (application/fhir+json).

Transaction and batch Bundles are api/fhir_bundle.py, searches api/fhir_search.py, and the
routes (body limits, the paused channel, the caller's roles, 500s) api/fhir_routes.py. The
intake itself (checks, storing, transactions) is `flows.fhir_intake`, shared with
`isthmus ingest`; these shells turn its answers into HTTP.

Versions (FHIR R4 3.1.0.4, 3.1.0.5.1): a resource's current version is its newest
accepted inbox row (`<type>/<id>` or `<type>/<id>/_history/<vid>`); its `meta.versionId`
is `vid`, the first 16 hex digits of the SHA-256 of its stored JSON, answered with
`meta.lastUpdated` and an `ETag: W/"<vid>"`; a read answers the current version, and a PUT
with `If-Match` is refused 412 unless it names it. `Location` and a searchset's `fullUrl`
are absolute (`<base>/fhir/...`, the base the client reached). Search parameters the hub
does not support are ignored (handling=lenient) unless `Prefer: handling=strict`.

Reads and searches answer each caller what its roles may see (`governance.phi_access`):
Patient and Encounter without identifiers, names, birth date and the like to the roles
that do not read patient data, the finance types without reference displays and narrative.

SupplyDelivery and SupplyRequest (issue 8) can be created, updated and read like the
finance types: a completed delivery takes stock (`SupplyConsumed`), an active request asks
for a requisition (`SupplyRequested`); see `formats.supply.fhir` for the elements read.

Strict inputs (issue 16): every write body is read within `[limits] max_body_bytes` (413
above it) and checked by `formats.fhir.strict` before anything decodes it: nesting deeper
than `max_json_depth`, a member twice in one object, a date, dateTime or instant that does
not match FHIR R4's expression are refused with an OperationOutcome naming the element,
never its value: 400 for JSON that is not strict (nothing stored), 422 for a wrong date
(a resource kept as rejected, as for the finance checks).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

import msgspec
from starlette.responses import Response

from isthmus.app import Hub
from isthmus.flows.accounts import account_token
from isthmus.flows.fhir_ids import ID, digest, with_id
from isthmus.flows.fhir_resources import SEARCHABLE, Local
from isthmus.formats.fhir import (
    FINANCE_TYPES,
    Account,
    FhirError,
    decode_resource,
    operation_outcome,
)
from isthmus.formats.fhir.events import CHANNEL
from isthmus.formats.fhir.strict import strict_errors
from isthmus.formats.supply.fhir import SUPPLY_TYPES
from isthmus.governance import phi_access
from isthmus.observe.instant import instant
from isthmus.store.ports import MessageQuery, StoredMessage

MEDIA: Final = "application/fhir+json"
BALANCE_URL: Final = "https://isthmus.dev/fhir/StructureDefinition/account-balance"
WRITABLE: Final = frozenset(FINANCE_TYPES) | SUPPLY_TYPES
_enc = msgspec.json.Encoder(decimal_format="number")
_json_dec = msgspec.json.Decoder(float_hook=Decimal)


def fhir_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """An `application/fhir+json` answer (decimals as JSON numbers)."""
    data = body if isinstance(body, bytes) else _enc.encode(body)
    return Response(data, status, headers=headers, media_type=MEDIA)


def outcome(status: int, errors: Sequence[FhirError]) -> Response:
    """An OperationOutcome answer of these errors."""
    return fhir_response(operation_outcome(errors), status)


class FhirApi:
    """The FHIR R4 interactions on the hub's FHIR intake (capabilities, create, update, read)
    and what search and transaction/batch share with them (api/fhir_search.py,
    api/fhir_bundle.py): the body checks, the current version, the Account's balance;
    api/fhir_routes.py calls them."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.intake = hub.fhir_intake()
        self.limits = hub.settings.limits

    def strict(self, body: bytes, root: str) -> tuple[Response | None, list[FhirError]]:
        """The strictness issues of the body (`formats.fhir.strict`): a 400 when it is not
        strict JSON (a member twice, too deep); a wrong date alone is left to the caller
        (422, kept as rejected, like any other element with a wrong value)."""
        errors = strict_errors(body, root, max_depth=self.limits.max_json_depth)
        if any(e.code != "value" for e in errors):
            return outcome(400, errors), errors
        return None, errors

    # --- interactions --------------------------------------------------------------------

    def write(
        self,
        rtype: str,
        rid: str | None,
        body: bytes,
        peer: str,
        *,
        base: str = "",
        if_match: str | None = None,
    ) -> Response:
        """POST (rid None) or PUT of one resource; with `if_match` (a PUT's If-Match) only
        over that version (FHIR R4 3.1.0.5.1 managing resource contention: 412 otherwise).
        The answer carries the stored resource with its `meta.versionId`, its ETag and its
        absolute Location (`base` is the server's /fhir URL)."""
        if rtype not in WRITABLE:
            return outcome(
                404,
                [
                    FhirError(
                        "not-supported",
                        f"resource type {rtype!r} is not supported; see /fhir/metadata",
                        [rtype],
                    )
                ],
            )
        refused, wrong = self.strict(body, rtype)
        if refused is not None:
            return refused
        try:
            body_type, body_id = _identity(rtype, body)
        except FhirError as err:
            return outcome(400, [err])
        if body_type != rtype:
            return outcome(
                400,
                [
                    FhirError(
                        "invalid", f"the body is a {body_type}, not a {rtype}", ["resourceType"]
                    )
                ],
            )
        if rid is not None and body_id is not None and body_id != rid:
            return outcome(
                400,
                [
                    FhirError(
                        "invalid",
                        f"id {body_id!r} does not match the URL id {rid!r}",
                        [f"{rtype}.id"],
                    )
                ],
            )
        new_id = rid or (
            body_id if body_id and ID.fullmatch(body_id) else str(uuid.UUID(digest(body)[:32]))
        )
        if wrong:  # a date that is not one: kept for inspection, never decoded further
            self.intake.reject(rtype, new_id, body, wrong, peer)
            return outcome(422, wrong)
        if if_match is not None and rid is not None:
            refused = self._precondition(rtype, rid, if_match)
            if refused is not None:
                return refused
        # kept as sent, meta too: a sender's meta.versionId is the version in the posting's
        # business key (formats.fhir.identity); answers carry the hub's own (version_id)
        raw = with_id(body, new_id)
        item, status, errors = self.intake.prepare(rtype, new_id, raw, update=False, peer=peer)
        if item is None:
            return outcome(status, errors)
        (done,) = self.intake.put([item], peer, Local())
        if done.conflict and rid is None:
            return outcome(
                409,
                [
                    FhirError(
                        "duplicate",
                        f"{rtype}/{new_id} already exists with other content; use PUT to update it",
                        [f"{rtype}.id"],
                    )
                ],
            )
        now = self.current(rtype, new_id)
        if rid is not None and (
            done.conflict
            or (done.duplicate and now is not None and version_id(now.raw) != version_id(raw))
        ):
            # a new version of a known resource (or a return to its first content): kept
            # under <type>/<id>/_history/<vid> (flows.fhir_intake)
            item.update = True
            self.intake.put([item], peer, Local())
            now = self.current(rtype, new_id)
        code = 201 if not (done.duplicate or done.conflict) else 200
        return self._versioned(rtype, new_id, raw, now, code, base)

    def current(self, rtype: str, rid: str) -> StoredMessage | None:
        """The resource's current version: its newest accepted `<type>/<id>` or
        `<type>/<id>/_history/<vid>` inbox row (one index range, not a scan)."""
        found = self.hub.store.message_page(MessageQuery(history_of=f"{rtype}/{rid}"), limit=8)
        return next((m for m in found if m.channel == CHANNEL and m.status == "accepted"), None)

    def _precondition(self, rtype: str, rid: str, if_match: str) -> Response | None:
        """None when `If-Match` names the current version, else the 412 OperationOutcome."""
        now = self.current(rtype, rid)
        wanted = _etag_version(if_match)
        if now is not None and wanted == version_id(now.raw):
            return None
        why = (
            f"{rtype}/{rid} does not exist"
            if now is None
            else f"version {wanted[:40]!r} is not the current version of {rtype}/{rid}; read "
            "it again and apply the change to the current version"
        )
        return outcome(412, [FhirError("conflict", f"If-Match: {why}", ["If-Match"])])

    def _versioned(
        self, rtype: str, rid: str, raw: bytes, now: StoredMessage | None, status: int, base: str
    ) -> Response:
        stored = now.raw if now is not None else raw
        vid = version_id(stored)
        doc = with_meta(_json_dec.decode(stored), vid, now)
        return fhir_response(
            doc, status, {"Location": f"{base}/{rtype}/{rid}/_history/{vid}", "ETag": f'W/"{vid}"'}
        )

    def read(self, rtype: str, rid: str, roles: Sequence[str] = (phi_access.LOCAL,)) -> Response:
        """One resource, as the caller's roles may see it (`governance.phi_access`)."""
        if rtype not in WRITABLE:
            return outcome(
                404,
                [FhirError("not-supported", f"resource type {rtype!r} is not supported", [rtype])],
            )
        m = self.current(rtype, rid)
        if m is None:
            return outcome(
                404, [FhirError("not-found", f"{rtype}/{rid} is not known", [f"{rtype}.id"])]
            )
        vid = version_id(m.raw)
        doc = self.with_balance(m.raw) if rtype == "Account" else _json_dec.decode(m.raw)
        if rtype == "Account" or not phi_access.may_read(f"fhir:{rtype}", roles):
            doc = phi_access.fhir_view(doc, roles)
        return fhir_response(with_meta(doc, vid, m), 200, {"ETag": f'W/"{vid}"'})

    def with_balance(self, raw: bytes) -> dict[str, Any]:
        """The Account with its current A/R balance (the ledger's, per currency) attached
        as extensions: the balance of its subject patient's account token."""
        doc: dict[str, Any] = _json_dec.decode(raw)
        _, acct = decode_resource(raw)
        assert isinstance(acct, Account)
        balances: dict[str, Decimal] = {}
        ref = next(
            (
                s.reference
                for s in acct.subject
                if s.reference and s.reference.startswith("Patient/")
            ),
            None,
        )
        patient = self.intake.patient_of(ref, Local()) if ref else None
        if patient is not None:
            proc = self.hub.processor
            with self.hub.store.transaction() as tx:
                key, seen = patient.key, set()
                p = tx.get_patient(key)
                while p is not None and p.merged_into and p.merged_into not in seen:
                    seen.add(key)
                    key = p.merged_into
                    p = tx.get_patient(key)
                token = p.token if p is not None else account_token(proc.secret, key)
                for (_, cur), amount in tx.ar_balances(proc.ar_account, token).items():
                    balances[cur] = balances.get(cur, Decimal(0)) + amount
        ext = list(doc.get("extension", []))
        ext = [e for e in ext if not (isinstance(e, dict) and e.get("url") == BALANCE_URL)]
        ext += [
            {"url": BALANCE_URL, "valueMoney": {"value": v, "currency": c}}
            for c, v in sorted(balances.items())
        ] or [
            {
                "url": BALANCE_URL,
                "valueMoney": {"value": Decimal("0.00"), "currency": self._currency()},
            }
        ]
        doc["extension"] = ext
        return doc

    def _currency(self) -> str:
        try:
            return str(self.hub.settings.channel(CHANNEL).currency)
        except Exception:  # noqa: BLE001 - a channel not configured: the default currency
            return "USD"

    # --- metadata -----------------------------------------------------------------------

    def capability(self) -> dict[str, Any]:
        interactions = [{"code": c} for c in ("read", "create", "update")]
        return {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2026-01-01",
            "kind": "instance",
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "software": {"name": "Isthmus"},
            "implementation": {"description": "Isthmus healthcare finance hub"},
            "rest": [
                {
                    "mode": "server",
                    "resource": [
                        {
                            "type": t,
                            "interaction": interactions
                            + ([{"code": "search-type"}] if t in SEARCHABLE else []),
                            "versioning": "versioned-update",
                            "readHistory": False,
                            "updateCreate": True,
                            **(
                                {
                                    "searchParam": [
                                        {"name": "identifier", "type": "token"},
                                        {"name": "patient", "type": "reference"},
                                    ]
                                }
                                if t in SEARCHABLE
                                else {}
                            ),
                        }
                        for t in sorted(WRITABLE)
                    ],
                    "interaction": [{"code": "transaction"}, {"code": "batch"}],
                }
            ],
        }


def version_id(raw: bytes) -> str:
    """A version's id: the first 16 hex digits of the SHA-256 of its stored JSON, the same
    that names it in the inbox (`<type>/<id>/_history/<vid>`, flows.fhir_intake)."""
    return digest(raw)[:16]


def _etag_version(header: str) -> str:
    """The version an If-Match names: `W/"3f2a..."`, `"3f2a..."` or bare (RFC 9110 8.8.3)."""
    return header.strip().removeprefix("W/").strip().strip('"')


def with_meta(doc: Any, vid: str, m: StoredMessage | None) -> Any:
    """The resource with the server's meta.versionId and meta.lastUpdated (FHIR R4 2.22)."""
    if not isinstance(doc, dict):
        return doc
    meta = dict(doc["meta"]) if isinstance(doc.get("meta"), dict) else {}
    meta["versionId"] = vid
    if m is not None:
        meta["lastUpdated"] = instant(m.received_at)
    return {**doc, "meta": meta}


def _identity(rtype: str, body: bytes) -> tuple[str, str | None]:
    """The body's resourceType and id: finance types through their decoder (which checks
    the element types), supply types as a JSON object (`formats.supply.fhir` reads them)."""
    if rtype in FINANCE_TYPES:
        _, resource = decode_resource(body)
        return resource.resource_type, resource.id
    try:
        doc = _json_dec.decode(body)
    except msgspec.MsgspecError as exc:
        raise FhirError("structure", f"the body is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise FhirError("structure", "a FHIR resource is a JSON object")
    rid = doc.get("id")
    if rid is not None and not isinstance(rid, str):
        raise FhirError("value", "id must be a string", [f"{rtype}.id"])
    return str(doc.get("resourceType") or ""), rid


__all__ = [
    "BALANCE_URL",
    "MEDIA",
    "WRITABLE",
    "FhirApi",
    "fhir_response",
    "outcome",
    "version_id",
    "with_meta",
]
