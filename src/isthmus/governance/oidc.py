"""OIDC/JWT bearer tokens for the HTTP API: RS256 ID or access tokens from the site's
identity provider, instead of (or beside) Isthmus tokens.

Optional: only with an [oidc] table.

    [oidc]
    issuer = "https://idp.example.org/realms/hospital"
    audience = "isthmus"
    jwks_url = "https://idp.example.org/realms/hospital/protocol/openid-connect/certs"
    jwks_file = "/etc/isthmus/idp-jwks.json"   # and/or: the operator's copy of the keys
    roles_claim = "roles"                      # a list (or space-separated string)
    leeway_s = 60
    jwks_max_age_s = 3600                      # refetch the JWKS at least this often
    jwks_min_refresh_s = 60                    # and at most this often (unknown kid)

The JOSE work (base64url, JSON header and claims, the PKCS#1 v1.5 SHA-256 signature, the
registered claims) is PyJWT's; this module chooses the rules (RFC 7519 section 7.2,
RFC 7515, RFC 8725 best practices): `alg` exactly RS256, checked before any key is looked
at (never `none`, never an HMAC alg, whatever the header says); the key is the JWKS key
named by `kid` (or the only key); `iss` equals the issuer; `aud` is or contains the
audience; `exp` is required and in the future, `nbf`/`iat` not in the future (both with
`leeway_s`, against the system clock); `sub` names the caller; the roles are the claim's
values that are Isthmus roles (governance.rbac), at least one. The caller acts as principal
`oidc:<sub>`.

Keys (RFC 7517): from `jwks_file`, read once at config load, and/or from `jwks_url`, fetched
by governance/jwks.py when first needed and kept: refreshed after `jwks_max_age_s`, and when
a token names a kid the hub does not know (key rotation), at most once per
`jwks_min_refresh_s`. A provider that cannot be reached leaves the keys already fetched in
use; a token signed by a key the hub never got is 401.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.exceptions import InvalidIssuedAtError, InvalidSubjectError

from isthmus.errors import ConfigurationError, RefusedError
from isthmus.governance.identity import PREFIX
from isthmus.governance.jwks import RemoteJwks
from isthmus.governance.rbac import ROLES

ALG = "RS256"


class OidcConfigError(ConfigurationError, ValueError):
    """The [oidc] table or its JWKS is invalid; the operator must fix it."""


class JwtRejected(RefusedError, ValueError):
    """The bearer JWT cannot be used; the message says why (never the token)."""

    http_status = 401


@dataclass(frozen=True)
class OidcSettings:
    """The [oidc] table, checked: issuer, audience, the signing keys (JWKS, RFC 7517), the
    roles claim and the clock leeway."""

    issuer: str
    audience: str
    keys: Mapping[str, rsa.RSAPublicKey]  # from jwks_file: kid -> key ("" without a kid)
    roles_claim: str = "roles"
    leeway_s: float = 60.0
    remote: RemoteJwks | None = None  # from jwks_url, fetched and refreshed


@dataclass(frozen=True)
class Claims:
    """What a verified token says: its subject (`sub`), the Isthmus roles from the roles
    claim, and its expiry (`exp`)."""

    subject: str
    roles: tuple[str, ...]
    expires_at: float


def load_jwks(text: str | bytes) -> dict[str, rsa.RSAPublicKey]:
    """The RSA signing keys of a JWKS document, by kid; OidcConfigError when it is not one."""
    try:
        doc = json.loads(text)
        keys = {}
        for jwk in doc["keys"]:
            if (
                jwk.get("kty") != "RSA"
                or jwk.get("use", "sig") != "sig"
                or jwk.get("alg", ALG) != ALG
            ):
                continue
            key = jwt.PyJWK({**jwk, "alg": ALG}).key
            if isinstance(key, rsa.RSAPublicKey):
                keys[str(jwk.get("kid", ""))] = key
    except (ValueError, KeyError, TypeError, AttributeError, jwt.PyJWTError) as exc:
        raise OidcConfigError(f"the JWKS is not a valid key set: {exc}") from exc
    if not keys:
        raise OidcConfigError("the JWKS holds no RSA signing key")
    return keys


def _url(raw: str) -> str:
    """https, or http to a loopback host only (a provider on the same machine, tests)."""
    parts = urlsplit(raw)
    local = parts.hostname in ("127.0.0.1", "::1", "localhost")
    if (parts.scheme != "https" and not (parts.scheme == "http" and local)) or not parts.hostname:
        raise OidcConfigError(f"oidc.jwks_url must be an https URL, got {raw[:200]!r}")
    return raw


def parse(raw: Mapping[str, Any]) -> OidcSettings | None:
    """The [oidc] table; None when there is none. Reads jwks_file, never the network."""
    if not raw:
        return None
    known = {
        "issuer",
        "audience",
        "jwks_file",
        "jwks_url",
        "roles_claim",
        "leeway_s",
        "jwks_max_age_s",
        "jwks_min_refresh_s",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise OidcConfigError(f"[oidc] has no setting {', '.join(unknown)}")
    missing = [k for k in ("issuer", "audience") if not raw.get(k)]
    if missing:
        raise OidcConfigError(f"oidc.{missing[0]} is required")
    if not raw.get("jwks_file") and not raw.get("jwks_url"):
        raise OidcConfigError("oidc.jwks_url or oidc.jwks_file is required")
    keys: dict[str, rsa.RSAPublicKey] = {}
    if raw.get("jwks_file"):
        path = Path(str(raw["jwks_file"]))
        try:
            keys = load_jwks(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise OidcConfigError(f"oidc.jwks_file {path}: {exc.strerror}") from exc
    remote = None
    if raw.get("jwks_url"):
        max_age, min_refresh = (
            float(raw.get("jwks_max_age_s", 3600.0)),
            float(raw.get("jwks_min_refresh_s", 60.0)),
        )
        if max_age <= 0 or min_refresh < 0:
            raise OidcConfigError("oidc.jwks_max_age_s must be > 0, jwks_min_refresh_s >= 0")
        remote = RemoteJwks(
            _url(str(raw["jwks_url"])), load_jwks, max_age_s=max_age, min_refresh_s=min_refresh
        )
    return OidcSettings(
        str(raw["issuer"]),
        str(raw["audience"]),
        keys,
        str(raw.get("roles_claim", "roles")),
        float(raw.get("leeway_s", 60.0)),
        remote,
    )


def looks_like_jwt(token: str) -> bool:
    """True for a bearer token shaped like a JWS compact serialization (three dot-separated
    parts, RFC 7515 section 7.1) rather than an Isthmus token."""
    return not token.startswith(PREFIX) and token.count(".") == 2


def _roles(value: Any) -> tuple[str, ...]:
    names = value.split() if isinstance(value, str) else value
    if not isinstance(names, list):
        return ()
    return tuple(r for r in ROLES if r in {str(n) for n in names})


def _key(settings: OidcSettings, kid: str, now: float) -> rsa.RSAPublicKey | None:
    key = settings.keys.get(kid)
    if key is None and settings.remote is not None:
        key = settings.remote.key(kid, now)
    if key is None and not kid:  # no kid: the only key there is
        every = {**settings.keys, **(settings.remote.keys(now) if settings.remote else {})}
        key = next(iter(every.values())) if len(every) == 1 else None
    return key


_REFUSALS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.InvalidSignatureError, "JWT signature does not verify"),
    (jwt.ExpiredSignatureError, "JWT expired"),
    (jwt.ImmatureSignatureError, "JWT not valid yet (nbf/iat)"),
    (jwt.InvalidIssuerError, "JWT issuer is not the configured one"),
    (jwt.InvalidAudienceError, "JWT audience does not include this hub"),
    (InvalidSubjectError, "JWT has no subject (sub)"),
    (InvalidIssuedAtError, "JWT issue time (iat) is not a time"),
)
_MISSING = {
    "exp": "JWT has no expiry (exp)",
    "iss": "JWT issuer is not the configured one",
    "aud": "JWT audience does not include this hub",
    "sub": "JWT has no subject (sub)",
}


def verify(token: str, settings: OidcSettings, now: float) -> Claims:
    """The caller's claims, or JwtRejected naming the check that failed. `now` paces the
    JWKS refresh; the token's times are PyJWT's check against the system clock."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise JwtRejected("malformed JWT") from exc
    if header.get("alg") != ALG:
        raise JwtRejected(f"JWT alg {str(header.get('alg'))[:16]!r} is not accepted ({ALG})")
    key = _key(settings, str(header.get("kid", "")), now)
    if key is None:
        raise JwtRejected("JWT signed by an unknown key (kid)")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALG],
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=settings.leeway_s,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except jwt.MissingRequiredClaimError as exc:
        raise JwtRejected(_MISSING.get(exc.claim, "JWT lacks a claim")) from exc
    except jwt.PyJWTError as exc:
        why = next(
            (text for kind, text in _REFUSALS if isinstance(exc, kind)),
            "malformed JWT" if isinstance(exc, jwt.DecodeError) else "JWT refused",
        )
        raise JwtRejected(why) from exc
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 128:
        raise JwtRejected("JWT has no subject (sub)")
    roles = _roles(claims.get(settings.roles_claim))
    if not roles:
        raise JwtRejected(f"JWT claim {settings.roles_claim!r} holds no Isthmus role")
    return Claims(sub, roles, float(claims["exp"]))


__all__ = [
    "Claims",
    "JwtRejected",
    "OidcConfigError",
    "OidcSettings",
    "load_jwks",
    "looks_like_jwt",
    "parse",
    "verify",
]
