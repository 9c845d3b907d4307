"""Identities and their API tokens: who is calling, and whether the token they hold is good.

Principals are users and service accounts, each with a set of roles (`rbac.ROLES`). A token
belongs to one principal and carries scopes, a subset of its principal's roles; the roles a
request acts with are the token's scopes that the principal still holds.

A token is 32 random bytes (RFC 6750 bearer token syntax), shown once to whoever creates it.
The hub keeps only its SHA-256 digest, so a copy of the store yields no usable token. Plain
SHA-256 is enough because the token is random and 256 bits long: salting and stretching
protect guessable passwords, and there are none (no default passwords either). The token's
id (printed beside it, and embedded in it) is public: lists, revocation and audit name it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from isthmus.errors import InvalidInput
from isthmus.governance.rbac import ROLES

PREFIX = "isth_"
SESSION = "console-session:"  # created_by of a console session record
DAY_S = 86_400.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")

Kind = Literal["user", "service"]


class IdentityError(InvalidInput, ValueError):
    """A principal or token request is invalid (bad name, unknown role, scope too wide)."""


@dataclass(frozen=True)
class Principal:
    """A user or service account and the roles it holds."""

    name: str
    kind: Kind
    roles: tuple[str, ...]
    created_at: float


@dataclass(frozen=True)
class Token:
    """A stored token: its digest, never its clear text."""

    id: str
    principal: str
    scopes: tuple[str, ...]
    digest: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    created_by: str = ""


@dataclass(frozen=True)
class Issued:
    """A new token: `clear` is shown once and then forgotten."""

    clear: str
    token: Token


def digest(clear: str) -> str:
    """The SHA-256 hex digest of a clear token: all the hub stores of it."""
    return hashlib.sha256(clear.encode()).hexdigest()


def check_roles(roles: tuple[str, ...]) -> tuple[str, ...]:
    """Validate a set of roles against `rbac.ROLES`; at least one, returned in canonical
    order without duplicates."""
    if not roles:
        raise IdentityError("at least one role is needed")
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise IdentityError(f"unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}")
    return tuple(r for r in ROLES if r in roles)  # canonical order, no duplicates


def principal(name: str, kind: Kind, roles: tuple[str, ...], now: float) -> Principal:
    """A new principal, its name and roles checked."""
    if not _NAME.match(name):
        raise IdentityError(f"principal name {name!r}: letters, digits and ._@- only, at most 64")
    return Principal(name, kind, check_roles(roles), now)


def grant(p: Principal, roles: tuple[str, ...]) -> Principal:
    """The principal with `roles` added to the ones it has."""
    return Principal(p.name, p.kind, check_roles(p.roles + roles), p.created_at)


def issue(
    p: Principal,
    scopes: tuple[str, ...],
    now: float,
    *,
    expires_days: float | None = None,
    created_by: str = "",
) -> Issued:
    """Issue a token for `p` with `scopes` (a subset of its roles), expiring after
    `expires_days` or never: the clear token, shown once, and the record that keeps its
    digest."""
    scopes = check_roles(scopes)
    wider = sorted(set(scopes) - set(p.roles))
    if wider:
        raise IdentityError(f"{p.name} does not hold role {wider[0]!r}")
    if expires_days is not None and expires_days <= 0:
        raise IdentityError("--expires-days must be positive")
    token_id = secrets.token_hex(6)
    clear = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    expires = None if expires_days is None else now + expires_days * DAY_S
    return Issued(
        clear, Token(token_id, p.name, scopes, digest(clear), now, expires, None, created_by)
    )


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (RFC 6750 section 2.1)."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or " " in value:
        return None
    return value


def session_record(holder: Principal, opened_with: Token, now: float, expires_at: float) -> Token:
    """The server-side record of a console session (console/session.py), kept with the
    tokens: revoking it (sign-out, or `isthmus tokens revoke`) ends the session. It has no
    scopes and no clear text exists, so it is never a usable bearer token, nor counted as
    an admin token."""
    return Token(
        secrets.token_hex(6),
        holder.name,
        (),
        digest(secrets.token_urlsafe(32)),
        now,
        expires_at,
        None,
        f"{SESSION}{opened_with.id}",
    )


def session_refusal(record: Token | None, now: float) -> str | None:
    """Why a console session record no longer stands for a session, or None."""
    if record is None or not record.created_by.startswith(SESSION):
        return "no such session"
    if record.revoked_at is not None:
        return "signed out"
    if record.expires_at is not None and now >= record.expires_at:
        return "session expired"
    return None


def refusal(token: Token | None, holder: Principal | None, now: float) -> str | None:
    """Why this token cannot be used now, or None when it can."""
    if token is None or holder is None:
        return "invalid token"
    if token.revoked_at is not None:
        return "token revoked"
    if token.expires_at is not None and now >= token.expires_at:
        return "token expired"
    if token.created_by.startswith(SESSION):
        return "console session record, not a bearer token"
    if not effective_roles(token, holder):
        return "token has no role its principal still holds"
    return None


def effective_roles(token: Token, holder: Principal) -> tuple[str, ...]:
    """The roles a request with this token acts with: its scopes that the holder still holds."""
    return tuple(r for r in token.scopes if r in holder.roles)
