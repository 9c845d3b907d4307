"""HTTP API v1 for refunds: request, list, read, approve, reject (flows/refunds.py).

A thin shell: each route reads its JSON, calls the refund service as the principal whose
bearer token api/auth.py checked (roles from the permission table, governance/rbac.py), and
renders the result. A refusal answers with the status its error names: 400 (the field at
fault), 404, 409 (duplicate request, idempotency key reused, not enough credit, already
decided), 403 (role, or segregation of duties: the requester approving), each as RFC 9457
problem+json (api/problems.py) naming the `field`; its v1 member `error` is "not found" for
a 404, else the refusal's kind (`segregation_of_duties`, `insufficient_credit`, ...). Bodies
are read by api/json_body.py:
over `[limits] max_body_bytes` 413, nested deeper than `max_json_depth` 400, a key twice in
one object 400 naming it, in the same shape with `limit` and `max`; JSON numbers are read
as Decimal, never float, and amounts only as ASCII decimals (flows/refunds.parse_amount).

POST /api/v1/refunds            {"account", "amount", "currency", "reason",
                                 "idempotency_key"} (or an Idempotency-Key header);
                                201 when created, 200 with the first answer on a retry
GET  /api/v1/refunds[?status=&limit=&cursor=]  the register, oldest first, a page at a
                                time: {"refunds", "next", "next_url"} (api/pages.py)
GET  /api/v1/refunds/{id}       one refund
POST /api/v1/refunds/{id}/approve  {"note"} optional; the refund posts
POST /api/v1/refunds/{id}/reject   {"reason"} required
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from isthmus.api import pages, problems
from isthmus.api.json_body import BodyLimits, BodyRefused, loads, read_body
from isthmus.app import Hub
from isthmus.flows.refund_errors import InvalidRefund, RefundError
from isthmus.flows.refund_request import Actor, Outcome, view
from isthmus.observe import cursor

PAGES = "r1"  # the cursor tag of the register's pages (observe/cursor.py)


def _actor(req: Request) -> Actor:
    state = req.scope.get("state", {})
    return Actor(str(state.get("principal", "anonymous")), frozenset(state.get("roles", ())))


def _refused(req: Request, exc: RefundError) -> Response:
    return problems.from_error(req.url.path, exc)


def _answer(out: Outcome, created: int = 200) -> JSONResponse:
    return JSONResponse(
        {**view(out.refund), "replayed": out.replayed}, 200 if out.replayed else created
    )


async def _body(req: Request, limits: BodyLimits, *, required: bool = True) -> dict[str, Any]:
    raw = await read_body(req, limits)
    if not raw.strip() and not required:
        return {}
    data = loads(raw, limits)
    if not isinstance(data, dict):
        raise InvalidRefund("the body must be a JSON object", "body")
    return data


def routes(hub: Hub) -> list[Route]:  # noqa: C901 - the refund API's routes, one branch per endpoint
    """The refund routes: POST and GET /api/v1/refunds, GET /api/v1/refunds/{id}, and POST
    /api/v1/refunds/{id}/approve and /reject."""

    def desk() -> Any:
        return hub.refunds()

    limits: BodyLimits = hub.settings.limits

    async def create(req: Request) -> Response:
        try:
            b = await _body(req, limits)
            key = b.get("idempotency_key") or req.headers.get("idempotency-key")
            out = await asyncio.to_thread(
                lambda: desk().request(
                    account=b.get("account"),
                    amount=b.get("amount"),
                    currency=b.get("currency"),
                    reason=b.get("reason"),
                    requested_by=_actor(req),
                    idempotency_key=key,
                )
            )
        except RefundError as exc:
            return _refused(req, exc)
        except BodyRefused as exc:
            return exc.response(req.url.path)
        return _answer(out, 201)

    async def listing(req: Request) -> Response:
        try:
            limit, start = pages.limit(req), pages.after(req, PAGES)
            found = await asyncio.to_thread(
                desk().list,
                req.query_params.get("status"),
                limit + 1,
                None if start is None else str(start),
            )
        except RefundError as exc:
            return _refused(req, exc)
        except pages.BadPage as exc:
            return problems.from_error(req.url.path, exc)
        shown, more = cursor.cut(found, limit, PAGES, lambda r: r.id)
        return pages.answer(req, "refunds", [view(r) for r in shown], more)

    async def one(req: Request) -> Response:
        try:
            found = await asyncio.to_thread(desk().get, req.path_params["id"])
        except RefundError as exc:
            return _refused(req, exc)
        return JSONResponse(view(found))

    async def approve(req: Request) -> Response:
        try:
            b = await _body(req, limits, required=False)
            note = b.get("note", "")
            if not isinstance(note, str):
                raise InvalidRefund("note must be text", "note")
            out = await asyncio.to_thread(
                lambda: desk().approve(req.path_params["id"], approver=_actor(req), note=note)
            )
        except RefundError as exc:
            return _refused(req, exc)
        except BodyRefused as exc:
            return exc.response(req.url.path)
        return _answer(out)

    async def reject(req: Request) -> Response:
        try:
            b = await _body(req, limits)
            out = await asyncio.to_thread(
                lambda: desk().reject(
                    req.path_params["id"], approver=_actor(req), reason=b.get("reason")
                )
            )
        except RefundError as exc:
            return _refused(req, exc)
        except BodyRefused as exc:
            return exc.response(req.url.path)
        return _answer(out)

    return [
        Route("/api/v1/refunds", create, methods=["POST"]),
        Route("/api/v1/refunds", listing, methods=["GET"]),
        Route("/api/v1/refunds/{id}", one, methods=["GET"]),
        Route("/api/v1/refunds/{id}/approve", approve, methods=["POST"]),
        Route("/api/v1/refunds/{id}/reject", reject, methods=["POST"]),
    ]
