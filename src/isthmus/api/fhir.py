"""FHIR R4 (4.0.1) REST API under /fhir: create, update, read, transaction/batch, metadata.

Every accepted resource goes through the inbox on channel ``fhir``: control id
``<type>/<id>``, digest the SHA-256 of the stored JSON, so an identical resend is a
duplicate (200, no second effect) and a create of a taken id with other content is a
conflict (409). A PUT of new content for a known id is an update, kept under
``<type>/<id>/_history/<digest16>``; only Patient, Encounter and Account updates carry
events (upserts), a changed ChargeItem or Claim is kept without a second posting.
A resource that fails the finance checks is kept as rejected (``<type>/<id>#<digest16>``)
and answered 422. Every error is an OperationOutcome (application/fhir+json).

Transactions follow FHIR R4 3.1.0.11 (formats.fhir.bundle): ids come from the resources'
own ids (else a content hash), ``urn:uuid`` references are rewritten to ``Type/id`` in the
stored JSON, and all entries are stored in one ``accept`` (all or nothing). Resources
outside the finance set (Observation, Condition...) are kept without events. The intake
itself (checks, storing, transactions) is `flows.fhir_intake`, shared with
`isthmus ingest`; this shell turns its answers into HTTP. Account and ExplanationOfBenefit
can be searched by ``identifier`` and ``patient`` (a searchset Bundle, paged by ``_count``
with a ``next`` link holding an opaque ``_cursor``: hl7.org/fhir/R4/search.html#count
and http.html#paging).

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

import bisect
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, Final
from urllib.parse import quote

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from isthmus.api import problems
from isthmus.api.json_body import BodyRefused, read_body
from isthmus.app import Hub
from isthmus.flows import channels
from isthmus.flows.accounts import account_token
from isthmus.flows.fhir_intake import (
    ID,
    SCAN_LIMIT,
    SEARCHABLE,
    Local,
    digest,
    with_id,
)
from isthmus.formats.fhir import (
    FINANCE_TYPES,
    Account,
    Bundle,
    BundleEntry,
    FhirError,
    decode_bundle,
    decode_resource,
    operation_outcome,
)
from isthmus.formats.fhir.events import CHANNEL
from isthmus.formats.fhir.strict import strict_errors
from isthmus.formats.supply.fhir import SUPPLY_TYPES
from isthmus.governance import phi_access
from isthmus.observe import cursor
from isthmus.observe.instant import instant
from isthmus.store.ports import MessageQuery, StoredMessage

log = logging.getLogger(__name__)
MEDIA: Final = "application/fhir+json"
BALANCE_URL: Final = "https://isthmus.dev/fhir/StructureDefinition/account-balance"
CURSOR: Final = "_cursor"  # the opaque page cursor of a searchset's `next` link
_SEARCH_PARAMS: Final = ("identifier", "patient", "_count", "_total", CURSOR)
_TOTALS: Final = ("none", "estimate", "accurate")
WRITABLE: Final = frozenset(FINANCE_TYPES) | SUPPLY_TYPES
_enc = msgspec.json.Encoder(decimal_format="number")
_json_dec = msgspec.json.Decoder(float_hook=Decimal)


def fhir_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    data = body if isinstance(body, bytes) else _enc.encode(body)
    return Response(data, status, headers=headers, media_type=MEDIA)


def outcome(status: int, errors: Sequence[FhirError]) -> Response:
    return fhir_response(operation_outcome(errors), status)


class FhirApi:
    """The FHIR R4 interactions on the hub's FHIR intake (capabilities, create, update, read,
    search, transaction/batch) and the body checks they share; `routes` calls them."""

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
        doc = _with_meta(_json_dec.decode(stored), vid, now)
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
        return fhir_response(_with_meta(doc, vid, m), 200, {"ETag": f'W/"{vid}"'})

    def search(
        self,
        rtype: str,
        params: Sequence[tuple[str, str]],
        roles: Sequence[str] = (phi_access.LOCAL,),
        *,
        base: str = "",
        strict: bool = False,
    ) -> Response:
        """GET /fhir/{type}?identifier=&patient=&_count=&_total=&_cursor= (FHIR R4 3.1.0.8
        search, for Account and ExplanationOfBenefit): a searchset Bundle, Accounts with
        their balance, `total` the number of matches (unless `_total=none`; `_count=0` asks
        for the total alone, as fhirpy's `.count()` does). Parameters the hub does not
        support are ignored and left out of the `self` link (3.1.1.5.4 handling=lenient,
        the default); with `Prefer: handling=strict` they are a 400 OperationOutcome.

        Paging (hl7.org/fhir/R4/search.html#count, http.html#paging): `_count` matches a
        page (default 50; above 500 a page holds 500, as a server may return fewer than
        asked), and when more remain the Bundle has a `next` link, the same search with
        `_cursor` set to an opaque keyset cursor (observe/cursor.py: the inbox id of the
        last resource shown, matches being in inbox order), so a resource created meanwhile
        is neither shown twice nor skipped over. A cursor the hub did not give out for this
        type is a 400."""
        if rtype not in SEARCHABLE:
            return outcome(
                404,
                [
                    FhirError(
                        "not-supported",
                        f"search on {rtype!r} is not "
                        f"supported; only {', '.join(sorted(SEARCHABLE))}",
                        [rtype],
                    )
                ],
            )
        args: dict[str, str] = {}
        for name, value in params:
            if name not in _SEARCH_PARAMS and not strict:
                continue  # lenient: an unknown parameter is ignored (and not in `self`)
            if name not in _SEARCH_PARAMS or name in args:
                why = "is not supported" if name not in _SEARCH_PARAMS else "is repeated"
                return outcome(
                    400,
                    [
                        FhirError(
                            "not-supported",
                            f"search parameter {name!r} {why}; use {', '.join(_SEARCH_PARAMS)}",
                            [name],
                        )
                    ],
                )
            args[name] = value
        count = args.get("_count", str(cursor.DEFAULT_LIMIT)).strip()
        if not (count.isascii() and count.isdigit()):
            return outcome(
                400,
                [
                    FhirError(
                        "value",
                        "_count must be a whole number (0 for "
                        f"the total alone; at most {cursor.MAX_LIMIT} a "
                        "page)",
                        ["_count"],
                    )
                ],
            )
        want = min(int(count), cursor.MAX_LIMIT)
        if "_count" in args:
            args["_count"] = str(want)  # the `self` link says what was applied
        total = args.get("_total", "accurate")
        if total not in _TOTALS:
            return outcome(
                400, [FhirError("value", f"_total must be one of {', '.join(_TOTALS)}", ["_total"])]
            )
        tag = _page_tag(rtype)
        after = None
        if args.get(CURSOR, "").strip():
            try:
                after = cursor.decode_int(tag, args[CURSOR].strip())
            except cursor.BadCursor:
                return outcome(
                    400,
                    [
                        FhirError(
                            "value",
                            f"{CURSOR} is not one this hub gave "
                            f"out for a {rtype} search: follow the "
                            "Bundle's `next` link",
                            [CURSOR],
                        )
                    ],
                )
        scan = want + 1 if total == "none" and after is None else SCAN_LIMIT
        found = self.intake.search(
            rtype, identifier=args.get("identifier"), patient=args.get("patient"), count=scan
        )
        # matches are in inbox order: the page starts after the cursor's inbox id
        start = (
            0
            if after is None
            else bisect.bisect_right(found, after, key=lambda raw: self._inbox_id(rtype, raw))
        )
        shown = found[start : start + want]
        entries = []
        for raw in shown:
            res_id = _resource_id(raw)
            m = self.current(rtype, res_id)
            latest = m.raw if m is not None else raw
            doc = _with_meta(
                self.with_balance(latest) if rtype == "Account" else _json_dec.decode(latest),
                version_id(latest),
                m,
            )
            entries.append(
                {
                    "fullUrl": f"{base}/{rtype}/{res_id}",
                    "resource": phi_access.fhir_view(doc, roles),
                    "search": {"mode": "match"},
                }
            )
        links = [{"relation": "self", "url": _search_url(base, rtype, args)}]
        if shown and len(found) > start + want:
            nxt = cursor.encode(tag, self._inbox_id(rtype, shown[-1]))
            links.append(
                {
                    "relation": "next",
                    "url": _search_url(base, rtype, {**args, "_count": str(want), CURSOR: nxt}),
                }
            )
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "link": links,
            "entry": entries,
        }
        if total != "none":
            bundle["total"] = len(found)
        return fhir_response(bundle)

    def _inbox_id(self, rtype: str, raw: bytes) -> int:
        """The inbox id of a match (its `<type>/<id>` row: one index lookup), its key in
        the search order."""
        m = self.intake.stored(rtype, _resource_id(raw))
        return m.id if m is not None else 0

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

    def bundle(self, body: bytes, peer: str, base: str = "") -> Response:
        refused, wrong = self.strict(body, "Bundle")
        if refused is not None:
            return refused
        try:
            bundle = decode_bundle(body)
        except FhirError as err:
            return outcome(400, [err])
        if bundle.type == "batch":  # entries stand alone: each is checked by `write`
            return self.batch(bundle, peer, base)
        if wrong:
            return outcome(422, wrong)
        result = self.intake.transaction(bundle, peer)
        if result.status != 200:
            return outcome(result.status, result.errors)
        return fhir_response(
            {
                "resourceType": "Bundle",
                "type": "transaction-response",
                "entry": [_absolute(e, base) for e in result.entries],
            }
        )

    def batch(self, bundle: Bundle, peer: str, base: str = "") -> Response:
        out: list[dict[str, Any]] = []
        for e in bundle.entry:
            out.append(_absolute(self._batch_entry(e, peer, base), base))
        return fhir_response({"resourceType": "Bundle", "type": "batch-response", "entry": out})

    def _batch_entry(self, e: BundleEntry, peer: str, base: str = "") -> dict[str, Any]:
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
            return self.intake.get_entry(url)
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
        resp = self.write(e.resource_type, rid or None, e.raw, peer, base=base)
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


def version_id(raw: bytes) -> str:
    """A version's id: the first 16 hex digits of the SHA-256 of its stored JSON, the same
    that names it in the inbox (`<type>/<id>/_history/<vid>`, flows.fhir_intake)."""
    return digest(raw)[:16]


def _page_tag(rtype: str) -> str:
    """The cursor tag of a type's search (observe/cursor.py): one type's cursor is refused
    by another's search."""
    return f"fhir-{rtype}.1"


def _resource_id(raw: bytes) -> str:
    return str(_json_dec.decode(raw).get("id", ""))


def _search_url(base: str, rtype: str, args: dict[str, str]) -> str:
    query = "&".join(f"{k}={quote(v, safe='|/:')}" for k, v in args.items())
    return f"{base}/{rtype}" + (f"?{query}" if query else "")


def _etag_version(header: str) -> str:
    """The version an If-Match names: `W/"3f2a..."`, `"3f2a..."` or bare (RFC 9110 8.8.3)."""
    return header.strip().removeprefix("W/").strip().strip('"')


def _with_meta(doc: Any, vid: str, m: StoredMessage | None) -> Any:
    """The resource with the server's meta.versionId and meta.lastUpdated (FHIR R4 2.22)."""
    if not isinstance(doc, dict):
        return doc
    meta = dict(doc["meta"]) if isinstance(doc.get("meta"), dict) else {}
    meta["versionId"] = vid
    if m is not None:
        meta["lastUpdated"] = instant(m.received_at)
    return {**doc, "meta": meta}


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


def _entry_error(status: int, err: FhirError) -> dict[str, Any]:
    return {
        "response": {"status": f"{status} {_REASONS[status]}", "outcome": operation_outcome([err])}
    }


def _base(req: Request) -> str:
    """The server's FHIR base URL as the client reached it (scheme: api/clients.py)."""
    return f"{str(req.base_url).rstrip('/')}/fhir"


def _strict(req: Request) -> bool:
    """`Prefer: handling=strict` (FHIR R4 3.1.1.5.4; RFC 7240 preference syntax)."""
    prefs = {
        p.strip().lower().replace(" ", "")
        for h in req.headers.getlist("prefer")
        for p in h.split(",")
    }
    return "handling=strict" in prefs


def _peer(req: Request) -> str:
    return f"{req.client.host}:{req.client.port}" if req.client else ""


def _roles(req: Request) -> tuple[str, ...]:
    """The caller's roles, as api/auth.py found them (the loopback caller before `init`
    is `local`: it reads as the local CLI does)."""
    state = req.scope.get("state") or {}
    if state.get("principal") == phi_access.LOCAL:
        return (phi_access.LOCAL,)
    return tuple(state.get("roles") or ())


def _guarded(
    fn: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Anything unexpected is a 500 OperationOutcome, never a traceback."""

    async def run(req: Request) -> Response:
        try:
            return await fn(req)
        except Exception as exc:  # the client gets an outcome, the log the rest
            log.exception("FHIR %s %s failed", req.method, req.url.path)
            return outcome(
                500,
                [
                    FhirError(
                        "exception",
                        f"the request could not be processed "
                        f"({type(exc).__name__}); it was not stored",
                    )
                ],
            )

    return run


async def _body(req: Request, api: FhirApi) -> bytes | Response:
    """The request body within `[limits] max_body_bytes`, else a 413 OperationOutcome."""
    try:
        return await read_body(req, api.limits)
    except BodyRefused as exc:
        return outcome(exc.status, [FhirError("too-long", exc.reason)])


def routes(hub: Hub) -> list[Route]:
    """The /fhir routes (FHIR R4 RESTful API): metadata (CapabilityStatement), transaction or
    batch on the base, and create, search, read and update by type; writes answer 503 while
    the channel "fhir" is paused."""
    api = FhirApi(hub)
    states = channels.StateCache(hub.store)

    def paused() -> Response | None:
        """While the channel "fhir" is paused (issue 18), writes answer 503 with
        Retry-After and an OperationOutcome (code transient): nothing is taken."""
        st = states.paused(CHANNEL)
        if st is None:
            return None
        return fhir_response(
            operation_outcome(
                [
                    FhirError(
                        "transient", "the FHIR channel is paused by an operator; send again later"
                    )
                ]
            ),
            503,
            headers={"Retry-After": "30"},
        )

    async def metadata(_: Request) -> Response:
        return fhir_response(api.capability())

    async def create(req: Request) -> Response:
        if (closed := paused()) is not None:
            return closed
        body = await _body(req, api)
        if isinstance(body, Response):
            return body
        return api.write(req.path_params["type"], None, body, _peer(req), base=_base(req))

    async def update(req: Request) -> Response:
        if (closed := paused()) is not None:
            return closed
        body = await _body(req, api)
        if isinstance(body, Response):
            return body
        return api.write(
            req.path_params["type"],
            req.path_params["id"],
            body,
            _peer(req),
            base=_base(req),
            if_match=req.headers.get("if-match"),
        )

    async def read(req: Request) -> Response:
        return api.read(req.path_params["type"], req.path_params["id"], _roles(req))

    async def search(req: Request) -> Response:
        return api.search(
            req.path_params["type"],
            list(req.query_params.multi_items()),
            _roles(req),
            base=_base(req),
            strict=_strict(req),
        )

    async def transaction(req: Request) -> Response:
        if (closed := paused()) is not None:
            return closed
        body = await _body(req, api)
        if isinstance(body, Response):
            return body
        return api.bundle(body, _peer(req), _base(req))

    return [
        Route("/fhir/metadata", _guarded(metadata), methods=["GET"]),
        Route("/fhir", _guarded(transaction), methods=["POST"]),
        Route("/fhir/{type}", _guarded(create), methods=["POST"]),
        Route("/fhir/{type}", _guarded(search), methods=["GET"]),
        Route("/fhir/{type}/{id}", _guarded(read), methods=["GET"]),
        Route("/fhir/{type}/{id}", _guarded(update), methods=["PUT"]),
    ]


async def http_error(req: Request, exc: Exception) -> Response:
    """The router's 404/405: an OperationOutcome under /fhir, problem+json elsewhere
    (api/problems.py)."""
    assert isinstance(exc, HTTPException)
    return problems.answer(
        req.url.path,
        exc.status_code,
        f"{req.method} {req.url.path[:200]}: {exc.detail}",
        headers=exc.headers,
    )


__all__ = ["MEDIA", "FhirApi", "http_error", "routes"]
