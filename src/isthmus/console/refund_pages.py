"""The console's refunds page: the register, a request form, approve and reject buttons.

Every action goes through the refund service (flows/refunds.py) as the signed-in principal,
so the console enforces what the API and the CLI enforce: who may ask (revenue cycle),
who may decide (finance approver), that the requester never approves their own refund
(segregation of duties), the credit check, and the audit trail (the service writes it).
A refusal is shown with its field and the service's status code (400, 403, 404, 409).
The request form carries a fresh idempotency key, so a double submit makes one refund.
"""

from __future__ import annotations

import secrets
import urllib.parse
from typing import TYPE_CHECKING

from starlette.responses import Response

from isthmus.flows.refund_errors import RefundError
from isthmus.flows.refund_request import APPROVERS, REQUESTERS, STATUSES, Actor, view

if TYPE_CHECKING:
    from isthmus.console.app import Console, Ctx


def _actor(ctx: Ctx) -> Actor:
    return Actor(ctx.actor, frozenset(ctx.roles))


def _refused(console: Console, ctx: Ctx, exc: RefundError) -> Response:
    return console.render(
        ctx,
        "error.html",
        exc.http_status,
        title="Refund not done",
        message=str(exc),
        field=exc.field,
        back=console.prefix + "/refunds",
    )


def page(console: Console, ctx: Ctx) -> Response:
    """The refunds page: the register (pending first, optionally of one `?status=`) and the
    request form with a fresh idempotency key."""
    status = ctx.request.query_params.get("status", "")
    service = console.hub.refunds()
    rows = [view(r) for r in service.list(status if status in STATUSES else None)]
    rows.sort(key=lambda r: (r["status"] != "pending", r["requested_at"]))
    return console.render(
        ctx,
        "refunds.html",
        title="Refunds",
        rows=rows,
        status=status,
        statuses=STATUSES,
        key=secrets.token_urlsafe(12),
        may_trace=ctx.may("GET", "/messages/{ref:path}"),
        may_request=bool(REQUESTERS & set(ctx.roles)) and ctx.may("POST", "/refunds"),
        may_decide=bool(APPROVERS & set(ctx.roles)) and ctx.may("POST", "/refunds/{id}/approve"),
    )


def request(console: Console, ctx: Ctx) -> Response:
    """Request a refund through the refund service as the signed-in principal; a refusal is
    shown with its field and status."""
    try:
        out = console.hub.refunds().request(
            account=ctx.value("account").strip(),
            amount=ctx.value("amount").strip(),
            currency=ctx.value("currency", "USD").strip().upper(),
            reason=ctx.value("reason"),
            requested_by=_actor(ctx),
            idempotency_key=ctx.value("idempotency_key"),
        )
    except RefundError as exc:
        return _refused(console, ctx, exc)
    r = out.refund
    said = "waits for a second person's approval" if r.status == "pending" else r.status
    return console.done("/refunds", f"refund {r.id} for {r.amount} {r.currency}: {said}")


def decide(console: Console, ctx: Ctx, *, approve: bool) -> Response:
    """Approve or reject a pending refund through the refund service as the signed-in
    principal (never the requester: segregation of duties)."""
    rid = urllib.parse.unquote(ctx.request.path_params["id"])
    service = console.hub.refunds()
    try:
        if approve:
            out = service.approve(rid, approver=_actor(ctx), note=ctx.value("note"))
        else:
            out = service.reject(rid, approver=_actor(ctx), reason=ctx.value("reason"))
    except RefundError as exc:
        return _refused(console, ctx, exc)
    return console.done("/refunds", f"refund {rid} {out.refund.status} by {ctx.actor}")
