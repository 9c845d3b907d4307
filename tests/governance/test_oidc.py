"""[oidc]: RS256 JWT bearer tokens checked against a JWKS file, with the roles of a claim;
every other shape (alg none, HMAC, unknown key, wrong issuer or audience, expired,
tampered, no role) is 401 with the reason, never a crash."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from isthmus.api.http import build_app
from isthmus.app import Hub
from isthmus.config import ConfigError, load_settings
from isthmus.governance import identity, oidc, rbac

NOW = 1_700_000_000.0
ISS, AUD = "https://idp.example.org/realms/h", "isthmus"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, str]:
    n = key.public_key().public_numbers()
    return {
        "kty": "RSA",
        "kid": kid,
        "use": "sig",
        "alg": "RS256",
        "n": _b64(n.n.to_bytes((n.n.bit_length() + 7) // 8, "big")),
        "e": _b64(n.e.to_bytes(3, "big")),
    }


def jwt(
    claims: dict[str, Any], *, key: rsa.RSAPrivateKey = KEY, kid: str = "k1", alg: str = "RS256"
) -> str:
    head = _b64(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}).encode())
    body = _b64(json.dumps(claims).encode())
    signing = f"{head}.{body}".encode()
    if alg == "RS256":
        sig = key.sign(signing, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "HS256":  # the classic confusion: the public key as an HMAC secret
        pem = KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        mac = hmac.HMAC(pem, hashes.SHA256())
        mac.update(signing)
        sig = mac.finalize()
    else:
        sig = b""
    return f"{head}.{body}.{_b64(sig)}"


def claims(**over: Any) -> dict[str, Any]:
    # The real clock, which the app checks against. Parametrized tokens are made at
    # collection, possibly many minutes before the test runs: a day of validity.
    now = time.time()
    return {
        "iss": ISS,
        "aud": [AUD, "other"],
        "sub": "jdoe@hospital.org",
        "exp": now + 86_400,
        "iat": now - 10,
        "roles": ["finance-approver", "unrelated"],
        **over,
    }


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    tmp = tmp_path_factory.mktemp("oidc")
    (tmp / "jwks.json").write_text(json.dumps({"keys": [_jwk(KEY, "k1")]}))
    conf = tmp / "hub.toml"
    conf.write_text(
        f'[oidc]\nissuer = "{ISS}"\naudience = "{AUD}"\n'
        f'jwks_file = "{tmp / "jwks.json"}"\nleeway_s = 5\n'
    )
    h = Hub.open(load_settings(conf, data_dir=tmp / "data"))
    try:
        admin = identity.principal("root", "user", (rbac.ADMIN,), NOW)
        assert h.governance.initialize(admin, identity.issue(admin, (rbac.ADMIN,), NOW).token)
        yield h
    finally:
        h.close()


def _get(h: Hub, path: str, token: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(h), client=("192.0.2.9", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
            return await c.get(path, headers={"Authorization": f"Bearer {token}"})

    return asyncio.run(go())


def test_a_valid_jwt_acts_with_the_roles_of_its_claim(hub: Hub) -> None:
    token = jwt(claims())
    assert _get(hub, "/api/v1/ledger/trial-balance", token).status_code == 200
    r = _get(hub, "/api/v1/messages/mllp/NOPE", token)  # finance-approver may not
    assert r.status_code == 403 and "finance-approver" in r.json()["reason"]
    rows = hub.governance.audit_rows(after=0)
    assert rows[-1].event.actor == "oidc:jdoe@hospital.org"
    assert token not in json.dumps(rows[-1].event.detail)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (jwt(claims(), alg="none"), "alg 'none' is not accepted"),
        (jwt(claims(), alg="HS256"), "alg 'HS256' is not accepted"),
        (jwt(claims(), key=OTHER), "signature does not verify"),
        (jwt(claims(), kid="rotated"), "unknown key"),
        (jwt(claims(iss="https://evil.example")), "issuer"),
        (jwt(claims(aud="someone-else")), "audience"),
        (jwt(claims(exp=NOW)), "expired"),
        (jwt({k: v for k, v in claims().items() if k != "exp"}), "no expiry"),
        (jwt(claims(nbf=4_000_000_000)), "not valid yet"),
        (jwt(claims(sub="")), "no subject"),
        (jwt(claims(roles=["superuser"])), "holds no Isthmus role"),
        ("a.b.c", "malformed"),
    ],
)
def test_bad_jwts_are_401_with_the_reason(hub: Hub, token: str, reason: str) -> None:
    r = _get(hub, "/metrics", token)
    assert r.status_code == 401, r.text
    assert reason in r.json()["reason"] and token not in r.text


def test_a_tampered_payload_fails_the_signature() -> None:
    settings = oidc.OidcSettings(ISS, AUD, {"k1": KEY.public_key()})
    token = jwt(claims())
    head, _, sig = token.split(".")
    forged = _b64(json.dumps(claims(roles=["admin"])).encode())
    with pytest.raises(oidc.JwtRejected, match="signature"):
        oidc.verify(f"{head}.{forged}.{sig}", settings, time.time())
    assert oidc.verify(token, settings, time.time()).roles == ("finance-approver",)


def test_isthmus_tokens_still_work_beside_oidc(hub: Hub) -> None:
    p = identity.principal("svc-ro", "service", (rbac.READ_ONLY,), NOW)
    hub.governance.save_principal(p)
    issued = identity.issue(p, (rbac.READ_ONLY,), NOW)
    hub.governance.add_token(issued.token)
    assert _get(hub, "/metrics", issued.clear).status_code == 200


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[oidc]\nissuer = "x"\naudience = "y"\n', "oidc.jwks_file is required"),
        (
            '[oidc]\nissuer = "x"\naudience = "y"\njwks_file = "/nonexistent/jwks.json"\n',
            "jwks_file",
        ),
    ],
)
def test_bad_oidc_tables_are_refused_at_load(tmp_path: Path, table: str, message: str) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text(table)
    with pytest.raises(ConfigError, match=message):
        load_settings(conf, data_dir=tmp_path)


def test_a_jwks_without_rsa_keys_is_refused() -> None:
    with pytest.raises(oidc.OidcConfigError, match="no RSA signing key"):
        oidc.load_jwks(json.dumps({"keys": [{"kty": "EC", "crv": "P-256"}]}))
    with pytest.raises(oidc.OidcConfigError, match="not a valid key set"):
        oidc.load_jwks("{}")
