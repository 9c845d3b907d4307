"""Console sign-in sessions: a signed cookie that stands for an API token and a server-side
session record, their CSRF tokens, and the same-origin check of sign-in and sign-out.

A person signs in with an API token (governance.identity). The console does not keep the
token: the session cookie carries the token's SHA-256 digest (what the governance store
keys tokens by, useless as a bearer token), the digest of the session's own record in the
governance store (identity.session_record), an expiry and a random CSRF token, signed with
HMAC-SHA256 under a key derived from the site secret. Every request looks both digests up
again, so a revoked or expired token, a principal who lost a role, or a signed-out session
(its record revoked: OWASP Session Management cheat sheet, "session expiration" on logout)
ends the session at once, whatever copy of the cookie is replayed. The cookie is HttpOnly,
SameSite=Strict and Secure when the hub serves HTTPS (RFC 6265bis 4.1.2.7). Every POST form
carries the session's CSRF token (synchronizer token pattern, OWASP CSRF cheat sheet); it
is compared in constant time.

The sign-in form has no session yet, so it carries a signed double-submit token instead
(OWASP CSRF cheat sheet, "signed double-submit cookie"): a random value with its HMAC, set
in a SameSite=Strict cookie by the form and posted back in the form. Sign-in and sign-out
also refuse a request whose `Origin` (or, without one, `Referer`) names another site
(RFC 6454 section 7; OWASP "verifying origin with standard headers").

Pure: no I/O here; console/app.py reads the cookies and the governance store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

COOKIE = "isthmus_console"
LOGIN_COOKIE = "isthmus_console_login"  # the sign-in form's CSRF token
TTL_S = 8 * 3600.0  # a working shift; never longer than the token itself
LOGIN_TTL_S = 3600.0  # how long a sign-in form stays good


@dataclass(frozen=True)
class Session:
    """A console session as its signed cookie carries it: the token digest, the expiry, the
    CSRF token and the digest of its server-side record."""

    digest: str  # SHA-256 of the API token it was opened with
    expires_at: float
    csrf: str
    record: str = ""  # digest of the session's record in the governance store


def session_key(site_secret: str) -> bytes:
    """The cookie-signing key: derived, so it differs from the account-token key."""
    return hmac.new(site_secret.encode(), b"isthmus console session v1", hashlib.sha256).digest()


def open_session(digest: str, now: float, token_expires_at: float | None) -> Session:
    """A new session for a token digest, with a fresh CSRF token, expiring after `TTL_S` or
    with the token, whichever is first."""
    expires = now + TTL_S if token_expires_at is None else min(now + TTL_S, token_expires_at)
    return Session(digest, expires, secrets.token_urlsafe(24))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _mac(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def seal(session: Session, key: bytes) -> str:
    """The cookie value of a session: its fields as base64url JSON, then ".", then their
    HMAC-SHA256 under `key`."""
    body = _b64(
        json.dumps(
            {"d": session.digest, "e": session.expires_at, "c": session.csrf, "r": session.record},
            separators=(",", ":"),
        ).encode()
    )
    return f"{body}.{_mac(key, body)}"


def unseal(cookie: str | None, key: bytes, now: float) -> Session | None:
    """The session in a cookie, or None when it is missing, forged, malformed or expired."""
    if not cookie or cookie.count(".") != 1:
        return None
    body, mac = cookie.split(".")
    if not hmac.compare_digest(mac, _mac(key, body)):
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        s = Session(str(raw["d"]), float(raw["e"]), str(raw["c"]), str(raw["r"]))
    except (ValueError, KeyError, TypeError):
        return None
    return s if now < s.expires_at else None


def csrf_ok(session: Session, submitted: str | None) -> bool:
    """True when the form's CSRF token is the session's (constant-time comparison)."""
    return bool(submitted) and hmac.compare_digest(session.csrf, submitted or "")


def login_token(key: bytes, now: float) -> str:
    """A fresh CSRF token for the sign-in form: nonce, expiry and their MAC."""
    body = f"{secrets.token_urlsafe(18)}~{int(now + LOGIN_TTL_S)}"
    return f"{body}.{_mac(key + b'login', body)}"


def login_token_ok(key: bytes, cookie: str | None, submitted: str | None, now: float) -> bool:
    """The posted sign-in token is the one in the cookie, signed by us and not expired."""
    if not cookie or not submitted or not hmac.compare_digest(cookie, submitted):
        return False
    body, _, mac = cookie.rpartition(".")
    if not body or not hmac.compare_digest(mac, _mac(key + b"login", body)):
        return False
    try:
        return now < int(body.rsplit("~", 1)[1])
    except (IndexError, ValueError):
        return False


def foreign_origin(origin: str | None, referer: str | None, host: str | None) -> str | None:
    """Why a state-changing request comes from another site, or None: `Origin` (else the
    `Referer`'s origin) must name this host, as the request's `Host` header does. Neither
    header (a non-browser client) passes: the CSRF token still has to match."""
    if origin is None and not referer:
        return None
    seen = origin if origin is not None else referer or ""
    if seen == "null":
        return "the request comes from an opaque origin"
    try:
        parts, mine = urlsplit(seen), urlsplit(f"//{host or ''}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "the request's Origin is not a web origin"
        default = {"http": 80, "https": 443}[parts.scheme]
        same = mine.hostname == parts.hostname and (mine.port or default) == (parts.port or default)
    except ValueError:
        return "the request's Origin is not a web origin"
    return None if same else "the request comes from another site (Origin)"
