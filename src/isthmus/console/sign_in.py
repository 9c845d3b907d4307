"""The console's sign-in and sign-out: the form, opening a session, ending it.

A person signs in with an API token (governance.identity); the session is a signed cookie
and a record in the governance store (console/session.py says how both are made and
checked). The form carries a signed double-submit CSRF token; sign-in and sign-out refuse
another site's `Origin`/`Referer`. Failed sign-ins are throttled per client and per token,
as the API's bearer tokens are (governance/throttle.py). Every attempt, refused or not, is
written to the audit trail. The redirect after sign-in stays inside the console (no open
redirect).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from isthmus.console import session
from isthmus.governance import audit, identity, throttle

if TYPE_CHECKING:
    from isthmus.console.app import Console


def routes(console: Console) -> list[Route]:
    """The console's public routes: GET and POST /login, POST /logout."""

    async def login_page(request: Request) -> Response:
        return form(
            console,
            request,
            why=request.query_params.get("why", ""),
            nxt=request.query_params.get("next", console.prefix + "/"),
        )

    async def login(request: Request) -> Response:
        posted = await console.read_form(request) or {}
        return await asyncio.to_thread(_login, console, request, posted)

    async def logout(request: Request) -> Response:
        posted = await console.read_form(request) or {}
        return await asyncio.to_thread(_logout, console, request, (posted.get("csrf") or [""])[0])

    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]


def form(
    console: Console,
    request: Request,
    code: int = 200,
    *,
    why: str = "",
    nxt: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    """The sign-in form with its CSRF token, set in its cookie too (session.py); a
    token the browser already holds is kept, so two open forms both work. `nxt` is where
    to go once signed in: the console's first page unless it is a page of the console."""
    now = console.clock()
    held = request.cookies.get(session.LOGIN_COOKIE)
    token = (
        held
        if session.login_token_ok(console.key, held, held, now)
        else session.login_token(console.key, now)
    )
    resp = console.render(
        None,
        "login.html",
        code,
        why=why,
        csrf=token,
        next=nxt if _local_path(console, nxt) else console.prefix + "/",
    )
    resp.headers.update(headers or {})
    resp.set_cookie(
        session.LOGIN_COOKIE,
        token or "",
        max_age=int(session.LOGIN_TTL_S),
        path=console.prefix,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return resp


def _login(console: Console, request: Request, posted: dict[str, list[str]]) -> Response:
    gov, now = console.hub.governance, console.clock()
    clear = (posted.get("token") or [""])[0].strip()
    nxt = (posted.get("next") or [console.prefix + "/"])[0]
    client = request.client.host if request.client else ""
    foreign = session.foreign_origin(
        request.headers.get("origin"),
        request.headers.get("referer"),
        request.headers.get("host"),
    )
    if foreign or not session.login_token_ok(
        console.key,
        request.cookies.get(session.LOGIN_COOKIE),
        (posted.get("csrf") or [""])[0],
        now,
    ):
        why = foreign or "the sign-in form expired: sign in again"
        audit.record(
            gov, "anonymous", "console.login", "console", "denied", reason=why, client=client
        )
        return form(console, request, 403, why=why, nxt=nxt)
    if not gov.initialized():
        return form(
            console,
            request,
            401,
            nxt=nxt,
            why="hub not initialized: run `isthmus init` and sign in with its token",
        )
    if not clear:
        return form(console, request, 400, nxt=nxt, why="enter an API token")
    token = gov.token_by_digest(identity.digest(clear))
    holder = gov.principal(token.principal) if token is not None else None
    refused = identity.refusal(token, holder, now)
    if refused is not None or token is None or holder is None:
        # counted against what the caller proved, as for the API (governance/throttle.py)
        wait = console.throttle.refuse(
            throttle.failure_key(client, token.id if token is not None else None), now
        )
        why = (
            "too many failed sign-ins; try again later" if wait > 0 else refused or "invalid token"
        )
        audit.record(
            gov,
            holder.name if holder else "anonymous",
            "console.throttled" if wait > 0 else "console.login",
            "console",
            "denied",
            reason=why,
            client=client,
        )
        return form(
            console,
            request,
            429 if wait > 0 else 401,
            nxt=nxt,
            why=why,
            headers={"Retry-After": str(math.ceil(wait))} if wait > 0 else None,
        )
    s = session.open_session(token.digest, now, token.expires_at)
    record = identity.session_record(holder, token, now, s.expires_at)
    gov.add_token(record)
    s = replace(s, record=record.digest)
    audit.record(
        gov,
        holder.name,
        "console.login",
        "console",
        "ok",
        token_id=token.id,
        session=record.id,
        client=client,
    )
    resp = RedirectResponse(nxt if _local_path(console, nxt) else console.prefix + "/", 303)
    resp.set_cookie(
        session.COOKIE,
        session.seal(s, console.key),
        max_age=int(s.expires_at - now),
        path=console.prefix,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    resp.delete_cookie(session.LOGIN_COOKIE, path=console.prefix, httponly=True, samesite="strict")
    return resp


def _logout(console: Console, request: Request, csrf: str) -> Response:
    """End the session on the server (its record revoked), then drop the cookie."""
    foreign = session.foreign_origin(
        request.headers.get("origin"),
        request.headers.get("referer"),
        request.headers.get("host"),
    )
    found = console.who(request)
    if not isinstance(found, str):
        sess, actor, _ = found
        if foreign or not session.csrf_ok(sess, csrf):
            return console.render(
                None,
                "error.html",
                403,
                title="Not signed out",
                message=foreign
                or "the form's CSRF token does not match "
                "your session: reload the page and try again",
                field="csrf",
                back=console.prefix + "/",
            )
        gov = console.hub.governance
        record = gov.token_by_digest(sess.record)
        if record is not None:
            gov.revoke_token(record.id, console.clock())
        audit.record(
            gov,
            actor,
            "console.logout",
            "console",
            "ok",
            session=record.id if record else "",
            client=request.client.host if request.client else "",
        )
    resp = RedirectResponse(f"{console.prefix}/login?why=signed+out", 303)
    resp.delete_cookie(session.COOKIE, path=console.prefix, httponly=True, samesite="strict")
    return resp


def _local_path(console: Console, path: str) -> bool:
    """A redirect target inside the console (no open redirect to another site)."""
    prefix = console.prefix
    return path.startswith(prefix + "/") and not path.startswith("//") and "\\" not in path
