"""Property tests for the parsers of untrusted input in governance: a bearer JWT and a
FHIR write body never make them raise anything but their own refusal."""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.governance import oidc, ownership

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
SETTINGS = oidc.OidcSettings("https://idp", "isthmus", {"k1": KEY})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_a_refused_jwt_or_nothing_else(token: str) -> None:
    try:
        oidc.verify(token, SETTINGS, 1_700_000_000.0)
    except oidc.JwtRejected:
        pass
    else:  # pragma: no cover - a random string is never a signed token
        raise AssertionError(f"accepted {token!r}")


@settings(max_examples=200, deadline=None)
@given(json_values, json_values, st.binary(max_size=64))
def test_any_header_and_claims_are_refused_without_a_crash(
    header: object, claims: object, sig: bytes
) -> None:
    token = ".".join(
        _b64(x) for x in (json.dumps(header).encode(), json.dumps(claims).encode(), sig)
    )
    try:
        oidc.verify(token, SETTINGS, 1_700_000_000.0)
    except oidc.JwtRejected as exc:
        assert token not in str(exc)
    else:  # pragma: no cover
        raise AssertionError("an unsigned token was accepted")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_body_gives_a_fhir_write_description(body: bytes) -> None:
    w = ownership.fhir_write(body)
    assert isinstance(w.types, tuple) and isinstance(w.source, str)
    owners = {"patient": frozenset({"EPIC"})}
    r = ownership.decide(owners, ownership.fhir_domains(w.types), (w.source,))
    assert r is None or r.domain == "patient"
