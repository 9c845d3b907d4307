"""OIDC/JWT bearer tokens for the HTTP API: RS256 ID or access tokens from the site's
identity provider, checked against a JWKS file, instead of (or beside) Isthmus tokens.

Optional: only with an [oidc] table.

    [oidc]
    issuer = "https://idp.example.org/realms/hospital"
    audience = "isthmus"
    jwks_file = "/etc/isthmus/idp-jwks.json"   # the IdP's keys (RFC 7517), fetched by ops
    roles_claim = "roles"                      # a list (or space-separated string)
    leeway_s = 60

Checks (RFC 7519 section 7.2, RFC 7515, RFC 8725 best practices): three base64url parts;
`alg` exactly RS256 (never `none`, never an HMAC alg, whatever the header says); the key
is the JWKS key named by `kid` (or the only key); the signature verifies (PKCS#1 v1.5,
SHA-256); `iss` equals the issuer; `aud` is or contains the audience; `exp` is required
and in the future, `nbf`/`iat` not in the future (both with `leeway_s`); `sub` names the
caller; the roles are the claim's values that are Isthmus roles (governance.rbac), at least
one. The caller acts as principal `oidc:<sub>`. Keys are read once, at config load; no
network call is ever made (the JWKS file is the operator's copy of the IdP's keys).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from isthmus.governance.identity import PREFIX
from isthmus.governance.rbac import ROLES


class OidcConfigError(ValueError):
    """The [oidc] table or its JWKS file is invalid; the operator must fix it."""


class JwtRejected(ValueError):
    """The bearer JWT cannot be used; the message says why (never the token)."""


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    audience: str
    keys: Mapping[str, rsa.RSAPublicKey]  # kid -> key ("" when the JWK has no kid)
    roles_claim: str = "roles"
    leeway_s: float = 60.0


@dataclass(frozen=True)
class Claims:
    subject: str
    roles: tuple[str, ...]
    expires_at: float


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _int(value: str) -> int:
    return int.from_bytes(_b64(value), "big")


def load_jwks(text: str) -> dict[str, rsa.RSAPublicKey]:
    try:
        doc = json.loads(text)
        keys = {}
        for jwk in doc["keys"]:
            if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
                continue
            keys[str(jwk.get("kid", ""))] = rsa.RSAPublicNumbers(
                _int(jwk["e"]), _int(jwk["n"])).public_key()
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise OidcConfigError(f"the JWKS is not a valid key set: {exc}") from exc
    if not keys:
        raise OidcConfigError("the JWKS holds no RSA signing key")
    return keys


def parse(raw: Mapping[str, Any]) -> OidcSettings | None:
    """The [oidc] table; None when there is none."""
    if not raw:
        return None
    missing = [k for k in ("issuer", "audience", "jwks_file") if not raw.get(k)]
    if missing:
        raise OidcConfigError(f"oidc.{missing[0]} is required")
    path = Path(str(raw["jwks_file"]))
    try:
        keys = load_jwks(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise OidcConfigError(f"oidc.jwks_file {path}: {exc.strerror}") from exc
    return OidcSettings(str(raw["issuer"]), str(raw["audience"]), keys,
                        str(raw.get("roles_claim", "roles")),
                        float(raw.get("leeway_s", 60.0)))


def looks_like_jwt(token: str) -> bool:
    return not token.startswith(PREFIX) and token.count(".") == 2


def _roles(value: Any) -> tuple[str, ...]:
    names = value.split() if isinstance(value, str) else value
    if not isinstance(names, list):
        return ()
    return tuple(r for r in ROLES if r in {str(n) for n in names})


def verify(token: str, settings: OidcSettings, now: float) -> Claims:
    """The caller's claims, or JwtRejected naming the check that failed."""
    try:
        head_b64, body_b64, sig_b64 = token.split(".")
        header = json.loads(_b64(head_b64))
        claims = json.loads(_b64(body_b64))
        signature = _b64(sig_b64)
    except (ValueError, binascii.Error) as exc:
        raise JwtRejected("malformed JWT") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JwtRejected("malformed JWT")
    if header.get("alg") != "RS256":
        raise JwtRejected(f"JWT alg {str(header.get('alg'))[:16]!r} is not accepted (RS256)")
    kid = str(header.get("kid", ""))
    key = settings.keys.get(kid) or (next(iter(settings.keys.values()))
                                     if len(settings.keys) == 1 and not kid else None)
    if key is None:
        raise JwtRejected("JWT signed by an unknown key (kid)")
    try:
        key.verify(signature, f"{head_b64}.{body_b64}".encode(), padding.PKCS1v15(),
                   hashes.SHA256())
    except (InvalidSignature, ValueError) as exc:
        raise JwtRejected("JWT signature does not verify") from exc
    if claims.get("iss") != settings.issuer:
        raise JwtRejected("JWT issuer is not the configured one")
    aud = claims.get("aud")
    if settings.audience not in (aud if isinstance(aud, list) else [aud]):
        raise JwtRejected("JWT audience does not include this hub")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise JwtRejected("JWT has no expiry (exp)")
    if now >= exp + settings.leeway_s:
        raise JwtRejected("JWT expired")
    for early in ("nbf", "iat"):
        t = claims.get(early)
        if isinstance(t, int | float) and not isinstance(t, bool) and \
                t > now + settings.leeway_s:
            raise JwtRejected(f"JWT not valid yet ({early})")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 128:
        raise JwtRejected("JWT has no subject (sub)")
    roles = _roles(claims.get(settings.roles_claim))
    if not roles:
        raise JwtRejected(f"JWT claim {settings.roles_claim!r} holds no Isthmus role")
    return Claims(sub, roles, float(exp))


__all__ = ["Claims", "JwtRejected", "OidcConfigError", "OidcSettings", "load_jwks",
           "looks_like_jwt", "parse", "verify"]
