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
outside the finance set (Observation, Condition...) are kept without events.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from isthmus.flows.accounts import account_token
from isthmus.flows.inbox import publications
from isthmus.formats.fhir import (
    FINANCE_TYPES,
    Account,
    Bundle,
    BundleEntry,
    FhirError,
    FinanceResource,
    Patient,
    check_resource,
    decode_bundle,
    decode_resource,
    operation_outcome,
    plan_transaction,
    resolve_raw,
)
from isthmus.formats.fhir.events import CHANNEL, events_of, patient_ref
from isthmus.model.envelope import Envelope, Source
from isthmus.model.events import PatientRef
from isthmus.store.ports import Inbound

log = logging.getLogger(__name__)
MEDIA: Final = "application/fhir+json"
BALANCE_URL: Final = "https://isthmus.dev/fhir/StructureDefinition/account-balance"
_ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_UPDATE_EVENTS: Final = frozenset({"Patient", "Encounter", "Account"})
# The types that become events: their check errors refuse them. The others (EOB,
# ClaimResponse, Coverage, Invoice, PaymentNotice, PaymentReconciliation) post nothing
# yet, so their check errors (e.g. Synthea's float artifacts, 28.104000000000003 USD)
# are kept as warnings on the stored row and in the answer.
_POSTING: Final = frozenset({"Patient", "Encounter", "Account", "ChargeItem", "Claim"})


def _blocking(rtype: str, errors: Sequence[FhirError]) -> list[FhirError]:
    return [e for e in errors if e.is_error] if rtype in _POSTING else []
_enc = msgspec.json.Encoder(decimal_format="number")
_env_enc = msgspec.json.Encoder(decimal_format="string")


class _IdOnly(msgspec.Struct):
    id: str | None = None


_id_dec = msgspec.json.Decoder(_IdOnly)
_json_dec = msgspec.json.Decoder(float_hook=Decimal)


def fhir_response(body: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    data = body if isinstance(body, bytes) else _enc.encode(body)
    return Response(data, status, headers=headers, media_type=MEDIA)


def outcome(status: int, errors: Sequence[FhirError]) -> Response:
    return fhir_response(operation_outcome(errors), status)


def _digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _with_id(raw: bytes, rid: str) -> bytes:
    """The JSON resource with its ``id`` set (a create without one gets the server's)."""
    doc = _json_dec.decode(raw)
    if isinstance(doc, dict) and doc.get("id") != rid:
        doc = {"resourceType": doc.get("resourceType"), "id": rid,
               **{k: v for k, v in doc.items() if k not in ("resourceType", "id")}}
        return _enc.encode(doc)
    return raw


def _own_id(raw: bytes) -> str | None:
    try:
        rid = _id_dec.decode(raw).id
    except msgspec.MsgspecError:
        return None
    return rid if rid and _ID.fullmatch(rid) else None


@dataclass
class _Item:
    """One resource on its way into the inbox."""

    rtype: str
    rid: str
    raw: bytes
    resource: FinanceResource | None
    update: bool = False
    cid: str = ""
    events: list[tuple[str, Any]] = field(default_factory=list)


class FhirApi:
    def __init__(self, hub: Any) -> None:
        self.hub = hub

    # --- look-ups -----------------------------------------------------------------------

    def stored(self, rtype: str, rid: str) -> Any:
        m = self.hub.store.message_by_control_id(CHANNEL, f"{rtype}/{rid}")
        return m if m is not None and m.status == "accepted" else None

    def patient_of(self, reference: str, local: dict[str, PatientRef]) -> PatientRef | None:
        if reference in local:
            return local[reference]
        rtype, _, rid = reference.partition("/")
        m = self.stored(rtype, rid)
        if m is None:
            return PatientRef(rid, "urn:isthmus:fhir:Patient") if rid else None
        try:
            _, p = decode_resource(m.raw)
        except FhirError:
            return None
        return patient_ref(p) if isinstance(p, Patient) else None

    # --- intake -------------------------------------------------------------------------

    def _inbound(self, item: _Item, now: float, peer: str, local: dict[str, PatientRef]
                 ) -> Inbound:
        digest = _digest(item.raw)
        base = f"{item.rtype}/{item.rid}"
        item.cid = f"{base}/_history/{digest[:16]}" if item.update else base
        evs: list[tuple[str, Any]] = []
        if item.resource is not None and (not item.update or item.rtype in _UPDATE_EVENTS):
            evs = events_of(item.resource, lambda ref: self.patient_of(ref, local))
        item.events = evs
        at = datetime.fromtimestamp(now, UTC)
        corr = f"{CHANNEL}/{item.cid}"
        source = Source(channel=CHANNEL, control_id=item.cid, message_id=corr)
        envs = [Envelope(event_id=f"{corr}/{i}", type=type(ev).__name__, occurred_at=at,
                         recorded_at=at, source=source, correlation_id=corr,
                         causation_id=corr, tenant=self.hub.settings.tenant, key=key,
                         payload=ev) for i, (key, ev) in enumerate(evs)]
        return Inbound(CHANNEL, item.cid, item.raw, now, peer, item.rtype, "accepted", "AA",
                       "", _env_enc.encode(envs) if envs else b"", digest)

    def _reject(self, rtype: str, rid: str, raw: bytes, errors: Sequence[FhirError],
                peer: str) -> None:
        digest = _digest(raw)
        text = "; ".join(str(e) for e in errors)[:2000]
        self.hub.store.accept([Inbound(CHANNEL, f"{rtype}/{rid}#{digest[:16]}", raw,
                                       time.time(), peer, rtype, "rejected", "AE", text,
                                       b"", digest)])

    def store(self, items: list[_Item], peer: str, local: dict[str, PatientRef]
              ) -> list[Any]:
        """Store all items in one commit, then relay their events; the Accepted list."""
        now = time.time()
        inbound = [self._inbound(it, now, peer, local) for it in items]
        done = self.hub.store.accept(inbound)
        fresh = [(a.message_id, i.events) for a, i in zip(done, inbound, strict=True)
                 if not a.duplicate and not a.conflict and i.events]
        if fresh:
            pubs = [p for _, ev in fresh for p in publications(ev)]
            self.hub.bus.publish(pubs)
            self.hub.store.mark_published([mid for mid, _ in fresh])
        return list(done)

    def prepare(self, rtype: str, rid: str, raw: bytes, *, update: bool,
                peer: str) -> tuple[_Item | None, Response | None]:
        """Decode and check one resource; (item, None) or (None, error response)."""
        if rtype in FINANCE_TYPES:
            try:
                _, resource = decode_resource(raw)
            except FhirError as err:
                return None, outcome(400, [err])
            errors = _blocking(rtype, check_resource(resource))
            if errors:
                self._reject(rtype, rid, raw, errors, peer)
                return None, outcome(422, errors)
            return _Item(rtype, rid, raw, resource, update), None
        return _Item(rtype, rid, raw, None, update), None

    # --- interactions --------------------------------------------------------------------

    def write(self, rtype: str, rid: str | None, body: bytes, peer: str) -> Response:
        """POST (rid None) or PUT of one resource."""
        if rtype not in FINANCE_TYPES:
            return outcome(404, [FhirError("not-supported", f"resource type {rtype!r} is not "
                                           "supported; see /fhir/metadata", [rtype])])
        try:
            _, resource = decode_resource(body)
        except FhirError as err:
            return outcome(400, [err])
        if resource.resource_type != rtype:
            return outcome(400, [FhirError("invalid", f"the body is a {resource.resource_type}"
                                           f", not a {rtype}", ["resourceType"])])
        if rid is not None and resource.id is not None and resource.id != rid:
            return outcome(400, [FhirError("invalid", f"id {resource.id!r} does not match "
                                           f"the URL id {rid!r}", [f"{rtype}.id"])])
        new_id = rid or (resource.id if resource.id and _ID.fullmatch(resource.id)
                         else str(uuid.UUID(_digest(body)[:32])))
        raw = _with_id(body, new_id)
        item, refused = self.prepare(rtype, new_id, raw, update=False, peer=peer)
        if item is None:
            assert refused is not None
            return refused
        (done,) = self.store([item], peer, {})
        location = {"Location": f"{rtype}/{new_id}"}
        if done.conflict:
            if rid is None:
                return outcome(409, [FhirError("duplicate", f"{rtype}/{new_id} already exists "
                                               "with other content; use PUT to update it",
                                               [f"{rtype}.id"])])
            item.update = True
            self.store([item], peer, {})
            return fhir_response(raw, 200, location)
        return fhir_response(raw, 200 if done.duplicate else 201, location)

    def read(self, rtype: str, rid: str) -> Response:
        if rtype not in FINANCE_TYPES:
            return outcome(404, [FhirError("not-supported",
                                           f"resource type {rtype!r} is not supported",
                                           [rtype])])
        m = self.stored(rtype, rid)
        if m is None:
            return outcome(404, [FhirError("not-found", f"{rtype}/{rid} is not known",
                                           [f"{rtype}.id"])])
        if rtype != "Account":
            return fhir_response(m.raw)
        return fhir_response(self.with_balance(m.raw))

    def with_balance(self, raw: bytes) -> dict[str, Any]:
        """The Account with its current A/R balance (the ledger's, per currency) attached
        as extensions: the balance of its subject patient's account token."""
        doc: dict[str, Any] = _json_dec.decode(raw)
        _, acct = decode_resource(raw)
        assert isinstance(acct, Account)
        balances: dict[str, Decimal] = {}
        ref = next((s.reference for s in acct.subject
                    if s.reference and s.reference.startswith("Patient/")), None)
        patient = self.patient_of(ref, {}) if ref else None
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
        ext += [{"url": BALANCE_URL, "valueMoney": {"value": v, "currency": c}}
                for c, v in sorted(balances.items())] or [
            {"url": BALANCE_URL, "valueMoney": {"value": Decimal("0.00"),
                                                "currency": self._currency()}}]
        doc["extension"] = ext
        return doc

    def _currency(self) -> str:
        try:
            return str(self.hub.settings.channel(CHANNEL).currency)
        except Exception:  # noqa: BLE001 - a channel not configured: the default currency
            return "USD"

    def bundle(self, body: bytes, peer: str) -> Response:
        try:
            bundle = decode_bundle(body)
        except FhirError as err:
            return outcome(400, [err])
        if bundle.type == "batch":
            return self.batch(bundle, peer)
        if bundle.errors:
            return outcome(400, bundle.errors)
        plan = plan_transaction(bundle, new_id=_entry_id)
        if plan.errors:
            return outcome(400, plan.errors)
        refs: dict[str, str | None] = dict(plan.references)
        items: list[tuple[int, _Item]] = []
        responses: dict[int, dict[str, Any]] = {}
        errors: list[FhirError] = []
        local: dict[str, PatientRef] = {}
        for step in plan.steps:
            e = step.entry
            if step.method in ("GET", "HEAD"):
                responses[e.index] = self._get_entry(step.target)
                continue
            if step.method not in ("POST", "PUT") or step.target is None:
                errors.append(FhirError("not-supported", f"{step.method} is not supported in "
                                        "a transaction", [f"Bundle.entry[{e.index}].request"]))
                continue
            if step.noop:
                responses[e.index] = {"response": {"status": "200 OK",
                                                   "location": step.target}}
                continue
            rtype, _, rid = step.target.partition("/")
            assert e.raw is not None
            raw = _with_id(resolve_raw(e.raw, refs), rid)
            try:
                resource = decode_resource(raw)[1] if rtype in FINANCE_TYPES else None
            except FhirError as err:
                errors.append(err.within(e.expression))
                continue
            if resource is not None:
                errors += [x.within(e.expression)
                           for x in _blocking(rtype, check_resource(resource))]
                if isinstance(resource, Patient) and (ref := patient_ref(resource)):
                    local[step.target] = ref
            items.append((e.index, _Item(rtype, rid, raw, resource)))
        if errors:
            return outcome(422, errors)
        done = self.store([i for _, i in items], peer, local)
        for (index, item), acc in zip(items, done, strict=True):
            if acc.conflict:  # a newer version of a known resource: an update
                item.update = True
                self.store([item], peer, local)
                status = "200 OK"
            else:
                status = "200 OK" if acc.duplicate else "201 Created"
            responses[index] = {"response": {"status": status,
                                             "location": f"{item.rtype}/{item.rid}"}}
        return fhir_response({"resourceType": "Bundle", "type": "transaction-response",
                              "entry": [responses.get(e.index, {"response": {
                                  "status": "200 OK"}}) for e in bundle.entry]})

    def _get_entry(self, target: str | None) -> dict[str, Any]:
        rtype, _, rid = (target or "").partition("/")
        m = self.stored(rtype, rid) if rid else None
        if m is None:
            return {"response": {"status": "404 Not Found", "outcome": operation_outcome(
                [FhirError("not-found", f"{target} is not known")])}}
        return {"resource": _json_dec.decode(m.raw), "response": {"status": "200 OK"}}

    def batch(self, bundle: Bundle, peer: str) -> Response:
        out: list[dict[str, Any]] = []
        for e in bundle.entry:
            out.append(self._batch_entry(e, peer))
        return fhir_response({"resourceType": "Bundle", "type": "batch-response",
                              "entry": out})

    def _batch_entry(self, e: BundleEntry, peer: str) -> dict[str, Any]:
        req = e.request
        if e.error is not None:
            return _entry_error(400, e.error)
        if req is None:
            return _entry_error(400, FhirError("required", "a batch entry needs a request",
                                               [f"Bundle.entry[{e.index}].request"]))
        url = req.url.lstrip("/")
        if req.method == "GET":
            return self._get_entry(url)
        if req.method not in ("POST", "PUT") or e.raw is None or e.resource_type is None:
            return _entry_error(405, FhirError("not-supported", f"{req.method} {url} is not "
                                               "supported", [f"Bundle.entry[{e.index}]"]))
        rid = url.partition("/")[2] if req.method == "PUT" else None
        resp = self.write(e.resource_type, rid or None, e.raw, peer)
        body = _json_dec.decode(bytes(resp.body))
        status = f"{resp.status_code} {_REASONS.get(resp.status_code, '')}".strip()
        if resp.status_code >= 400:
            return {"response": {"status": status, "outcome": body}}
        return {"response": {"status": status, "location": resp.headers.get("location", "")}}

    # --- metadata -----------------------------------------------------------------------

    def capability(self) -> dict[str, Any]:
        interactions = [{"code": c} for c in ("read", "create", "update")]
        return {
            "resourceType": "CapabilityStatement", "status": "active",
            "date": "2026-01-01", "kind": "instance", "fhirVersion": "4.0.1",
            "format": ["json"],
            "software": {"name": "Isthmus"},
            "implementation": {"description": "Isthmus healthcare finance hub"},
            "rest": [{
                "mode": "server",
                "resource": [{"type": t, "interaction": interactions,
                              "versioning": "versioned-update", "readHistory": False,
                              "updateCreate": True}
                             for t in sorted(FINANCE_TYPES)],
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
            }],
        }


_REASONS: Final = {200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found",
                   405: "Method Not Allowed", 409: "Conflict", 422: "Unprocessable Entity",
                   500: "Internal Server Error"}


def _entry_error(status: int, err: FhirError) -> dict[str, Any]:
    return {"response": {"status": f"{status} {_REASONS[status]}",
                         "outcome": operation_outcome([err])}}


def _entry_id(e: BundleEntry) -> str:
    if e.raw is not None and (rid := _own_id(e.raw)):
        return rid
    return str(uuid.UUID(_digest(e.raw or (e.full_url or "").encode())[:32]))


def _peer(req: Request) -> str:
    return f"{req.client.host}:{req.client.port}" if req.client else ""


def _guarded(fn: Callable[[Request], Awaitable[Response]]
             ) -> Callable[[Request], Awaitable[Response]]:
    """Anything unexpected is a 500 OperationOutcome, never a traceback."""
    async def run(req: Request) -> Response:
        try:
            return await fn(req)
        except Exception as exc:  # the client gets an outcome, the log the rest
            log.exception("FHIR %s %s failed", req.method, req.url.path)
            return outcome(500, [FhirError("exception", f"the request could not be processed "
                                           f"({type(exc).__name__}); it was not stored")])
    return run


def routes(hub: Any) -> list[Route]:
    api = FhirApi(hub)

    async def metadata(_: Request) -> Response:
        return fhir_response(api.capability())

    async def create(req: Request) -> Response:
        return api.write(req.path_params["type"], None, await req.body(), _peer(req))

    async def update(req: Request) -> Response:
        return api.write(req.path_params["type"], req.path_params["id"], await req.body(),
                         _peer(req))

    async def read(req: Request) -> Response:
        return api.read(req.path_params["type"], req.path_params["id"])

    async def transaction(req: Request) -> Response:
        return api.bundle(await req.body(), _peer(req))

    return [
        Route("/fhir/metadata", _guarded(metadata), methods=["GET"]),
        Route("/fhir", _guarded(transaction), methods=["POST"]),
        Route("/fhir/{type}", _guarded(create), methods=["POST"]),
        Route("/fhir/{type}/{id}", _guarded(read), methods=["GET"]),
        Route("/fhir/{type}/{id}", _guarded(update), methods=["PUT"]),
    ]


async def http_error(req: Request, exc: Exception) -> Response:
    """404/405 under /fhir as OperationOutcome; elsewhere a JSON error (api/openapi.py)."""
    assert isinstance(exc, HTTPException)
    if not req.url.path.startswith("/fhir"):
        error = "not found" if exc.status_code == 404 else "method not allowed"
        return JSONResponse({"error": error, "reason": f"{req.method} {req.url.path[:200]}: "
                                                       f"{exc.detail}"},
                            exc.status_code, headers=exc.headers)
    code = "not-supported" if exc.status_code == 405 else "not-found"
    return outcome(exc.status_code, [FhirError(code, f"{req.method} {req.url.path}: "
                                               f"{exc.detail}")])


__all__ = ["MEDIA", "FhirApi", "http_error", "routes"]
