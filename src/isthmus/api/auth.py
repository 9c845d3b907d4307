"""Bearer-token authentication and role checks for every HTTP route (ASGI middleware).

Every request but `GET /health` needs `Authorization: Bearer <token>` (RFC 6750). The token
is looked up by its SHA-256 digest (governance.identity); a missing, unknown, expired or
revoked token answers 401, a token whose roles the permission table (governance.rbac) does
not allow for the route answers 403. Both carry an RFC 9457 problem+json body (an
OperationOutcome under /fhir, codes `login` and `forbidden`: api/problems.py) naming the
reason, never the token, and are written to the audit trail. Requests for paths that
match no route get the same 401 when unauthenticated, so the route list cannot be probed.

Failed authentications are throttled (governance/throttle.py): after 10 401s in a minute
counted against one key, that key's further 401s become 429 with Retry-After until the
window clears; each throttled request is an audit row too. The key is what the caller
proved: a token id once its secret matched (a revoked or expired token), else the client
address (api/clients.py: the peer, or a configured proxy's X-Forwarded-For). A valid token
always passes, so nobody is locked out by someone else's failures.

With an [oidc] table, a bearer token that is a JWT (three dot-separated parts, not an
Isthmus token) is checked by governance/oidc.py instead: RS256 against the configured
JWKS, issuer, audience, expiry; the caller is `oidc:<sub>` with the roles of its claim.

Before `isthmus init` there are no identities at all. Until then the API answers read
requests (GET, HEAD) from loopback clients only, the same trust as the read commands of
the local CLI, and 401 "not initialized" to everyone else.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from isthmus.api import problems
from isthmus.api.ownership import SystemOfRecord
from isthmus.errors import PROBLEM_BASE, RefusedError, StorageUnavailable
from isthmus.governance import audit, identity, oidc, ownership, rbac, throttle
from isthmus.governance.ports import GovernanceStore
from isthmus.governance.throttle import FailureThrottle
from isthmus.store.ports import Store

_SAFE = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Verdict:
    """What the bearer-token check decided for one request: status 0 lets it through as
    `actor` with `roles`; 401, 403 or 429 refuses it with `reason`."""

    status: int  # 0: let it through
    reason: str = ""
    actor: str = "anonymous"
    roles: tuple[str, ...] = ()
    token_given: bool = False
    proven: str | None = None  # the token id whose secret matched, on a 401


def route_action(routes: Sequence[BaseRoute], scope: Scope) -> str | None:
    """The permission-table action of the route that fully matches, or None."""
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL and isinstance(route, Route):
            return rbac.http_action(scope["method"], route.path)
    return None


def _loopback(scope: Scope) -> bool:
    client = scope.get("client")
    if not client:
        return False
    try:
        return ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        return False


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


class BearerAuth:
    """ASGI middleware: authenticate the bearer token (or an [oidc] JWT) of every request and
    check its roles against the route's action (governance.rbac); refusals are answered as
    RFC 9457 problems, audited, and repeated 401s throttled (429, Retry-After)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[BaseRoute],
        governance: GovernanceStore,
        clock: Callable[[], float] = time.time,
        throttle: FailureThrottle | None = None,
        oidc_settings: oidc.OidcSettings | None = None,
    ) -> None:
        self.app = app
        self.oidc = oidc_settings
        self.routes = routes
        self.gov = governance
        self.clock = clock
        self.throttle = throttle or FailureThrottle()
        self._initialized = False  # sticky: a hub never becomes uninitialized again

    def decide(self, scope: Scope) -> Verdict:
        """Blocking (store reads): run it in a thread."""
        action = route_action(self.routes, scope)
        if action in rbac.PUBLIC:
            return Verdict(0, actor="public")
        if not self._initialized:
            self._initialized = self.gov.initialized()
        clear = identity.bearer(Headers(scope=scope).get("authorization"))
        if not self._initialized:
            if scope["method"] in _SAFE and _loopback(scope):
                return Verdict(0, actor="local")
            return Verdict(401, "hub not initialized: run `isthmus init` and use its token")
        if clear is None:
            return Verdict(401, "missing bearer token (Authorization: Bearer <token>)")
        if self.oidc is not None and oidc.looks_like_jwt(clear):
            return self._jwt(clear, action)
        token = self.gov.token_by_digest(identity.digest(clear))
        holder = self.gov.principal(token.principal) if token is not None else None
        refused = identity.refusal(token, holder, self.clock())
        if refused is not None or token is None or holder is None:
            return Verdict(
                401,
                refused or "invalid token",
                token_given=True,
                actor=holder.name if holder else "anonymous",
                proven=token.id if token is not None else None,
            )
        roles = identity.effective_roles(token, holder)
        if action is None:  # no such route or method: the router answers 404/405
            return Verdict(0, actor=holder.name, roles=roles)
        decision = rbac.decide(action, roles)
        if not decision.allowed:
            return Verdict(403, decision.reason, actor=holder.name, roles=roles, token_given=True)
        return Verdict(0, actor=holder.name, roles=roles)

    def _jwt(self, clear: str, action: str | None) -> Verdict:
        """An [oidc] RS256 JWT: the caller is `oidc:<sub>` with the claim's roles."""
        assert self.oidc is not None
        try:
            claims = oidc.verify(clear, self.oidc, self.clock())
        except oidc.JwtRejected as exc:
            return Verdict(401, f"invalid token: {exc}", token_given=True)
        actor = f"oidc:{claims.subject}"
        decision = rbac.decide(action, claims.roles) if action is not None else None
        if decision is not None and not decision.allowed:
            return Verdict(403, decision.reason, actor=actor, roles=claims.roles, token_given=True)
        return Verdict(0, actor=actor, roles=claims.roles)

    def _audit(self, scope: Scope, v: Verdict, action: str = "http.denied") -> None:
        audit.record(
            self.gov,
            v.actor,
            action,
            f"{scope['method']} {str(scope.get('path', ''))[:200]}",
            "denied",
            status=v.status,
            reason=v.reason,
            client=_client(scope),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        try:
            v = await asyncio.to_thread(self.decide, scope)
            wait = 0.0
            if v.status == 401:
                wait = self.throttle.refuse(
                    throttle.failure_key(_client(scope), v.proven), self.clock()
                )
            if wait > 0:
                v = Verdict(429, "too many failed authentications; try again later", actor=v.actor)
                await asyncio.to_thread(self._audit, scope, v, "http.throttled")
                await problems.answer(
                    path,
                    429,
                    v.reason,
                    instance=False,
                    headers={"Retry-After": str(math.ceil(wait))},
                )(scope, receive, send)
                return
            if v.status:
                await asyncio.to_thread(self._audit, scope, v)
        except StorageUnavailable as exc:
            await problems.answer(
                path,
                503,
                "the governance store cannot be read",
                type_=exc.problem_type,
                title=exc.title,
            )(scope, receive, send)
            return
        if v.status == 0:
            scope.setdefault("state", {})["principal"] = v.actor
            scope["state"]["roles"] = v.roles
            await self.app(scope, receive, send)
            return
        headers = {}
        if v.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="isthmus"' + (
                ', error="invalid_token"' if v.token_given else ""
            )
        await problems.answer(
            path,
            v.status,
            v.reason,
            headers=headers,
            instance=v.status != 401,
            type_=(f"{PROBLEM_BASE}unauthorized" if v.status == 401 else RefusedError.problem_type),
        )(scope, receive, send)


def protect(
    app: Starlette,
    governance: GovernanceStore,
    *,
    owners: ownership.Owners | None = None,
    store: Store | None = None,
    oidc_settings: oidc.OidcSettings | None = None,
    max_body_bytes: int = 0,
) -> Starlette:
    """Install BearerAuth on `app`, over all of its routes (present and added later), and
    inside it, with [ownership] owners, the system-of-record check of FHIR writes (which
    reads a body within `max_body_bytes`, [limits], as the routes do)."""
    if owners and store is not None:
        app.add_middleware(
            SystemOfRecord,
            owners=owners,
            store=store,
            governance=governance,
            max_body_bytes=max_body_bytes,
        )
    app.add_middleware(
        BearerAuth, routes=app.router.routes, governance=governance, oidc_settings=oidc_settings
    )
    return app
