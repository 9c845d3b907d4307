"""Console sign-in sessions: a signed cookie that stands for an API token, and its CSRF token.

A person signs in with an API token (governance.identity). The console does not keep the
token: the session cookie carries the token's SHA-256 digest (what the governance store
keys tokens by, useless as a bearer token), an expiry and a random CSRF token, signed with
HMAC-SHA256 under a key derived from the site secret. Every request looks the digest up
again, so a revoked or expired token, or a principal who lost a role, ends the session at
once. The cookie is HttpOnly, SameSite=Strict and Secure when the hub serves HTTPS
(RFC 6265bis 4.1.2.7). Every POST form carries the session's CSRF token (synchronizer token
pattern, OWASP CSRF cheat sheet); it is compared in constant time.

Pure: no I/O here; console/auth.py reads the cookie and the governance store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

COOKIE = "isthmus_console"
TTL_S = 8 * 3600.0  # a working shift; never longer than the token itself


@dataclass(frozen=True)
class Session:
    digest: str  # SHA-256 of the API token it was opened with
    expires_at: float
    csrf: str


def session_key(site_secret: str) -> bytes:
    """The cookie-signing key: derived, so it differs from the account-token key."""
    return hmac.new(site_secret.encode(), b"isthmus console session v1", hashlib.sha256).digest()


def open_session(digest: str, now: float, token_expires_at: float | None) -> Session:
    expires = now + TTL_S if token_expires_at is None else min(now + TTL_S, token_expires_at)
    return Session(digest, expires, secrets.token_urlsafe(24))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def seal(session: Session, key: bytes) -> str:
    body = _b64(json.dumps({"d": session.digest, "e": session.expires_at, "c": session.csrf},
                           separators=(",", ":")).encode())
    mac = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    return f"{body}.{mac}"


def unseal(cookie: str | None, key: bytes, now: float) -> Session | None:
    """The session in a cookie, or None when it is missing, forged, malformed or expired."""
    if not cookie or cookie.count(".") != 1:
        return None
    body, mac = cookie.split(".")
    good = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(mac, good):
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        s = Session(str(raw["d"]), float(raw["e"]), str(raw["c"]))
    except (ValueError, KeyError, TypeError):
        return None
    return s if now < s.expires_at else None


def csrf_ok(session: Session, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf, submitted or "")
