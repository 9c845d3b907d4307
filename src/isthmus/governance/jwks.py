"""The identity provider's signing keys, fetched from its JWKS URL (RFC 7517 section 5; the
`jwks_uri` of OpenID Connect Discovery 1.0 section 3) and kept between requests.

Providers rotate keys: a new kid appears in the JWKS before tokens are signed with it, and
old keys stay for a while. So the keys are fetched when first needed, fetched again once
they are older than `max_age_s`, and fetched again when a token names a kid not among them,
but at most once per `min_refresh_s`: a stream of tokens with made-up kids cannot turn the
hub into a client that hammers the provider. A fetch that fails (provider down, timeout,
not a JWKS) keeps the keys already held, so tokens signed by them still pass; only a token
whose key the hub never got is refused. Callers run in worker threads (api/auth.py), so the
fetch is a plain blocking HTTP GET with a short timeout, one at a time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

log = logging.getLogger(__name__)

MAX_BYTES = 1 << 20  # a JWKS is a few KiB; more is not one

Parse = Callable[[bytes], Mapping[str, rsa.RSAPublicKey]]


def http_get(url: str, timeout_s: float) -> bytes:
    """GET the document, no redirects, at most MAX_BYTES."""
    with (
        httpx.Client(timeout=timeout_s, follow_redirects=False) as client,
        client.stream("GET", url, headers={"Accept": "application/json"}) as r,
    ):
        r.raise_for_status()
        body = b""
        for chunk in r.iter_bytes():
            body += chunk
            if len(body) > MAX_BYTES:
                raise ValueError(f"the JWKS is larger than {MAX_BYTES} bytes")
        return body


class RemoteJwks:
    """The keys of one JWKS URL; `parse` raises ValueError on a document that is not one."""

    def __init__(
        self,
        url: str,
        parse: Parse,
        *,
        max_age_s: float = 3600.0,
        min_refresh_s: float = 60.0,
        timeout_s: float = 5.0,
        get: Callable[[str, float], bytes] = http_get,
    ) -> None:
        self.url = url
        self.parse = parse
        self.max_age_s = max_age_s
        self.min_refresh_s = min_refresh_s
        self.timeout_s = timeout_s
        self.get = get
        self._keys: Mapping[str, rsa.RSAPublicKey] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._tried_at: float | None = None  # last attempt, successful or not
        self._lock = threading.Lock()

    def _may_try(self, now: float) -> bool:
        return (
            self._tried_at is None
            or now - self._tried_at >= self.min_refresh_s
            or now < self._tried_at
        )  # the clock went back: do not wait for it

    def _refresh(self, now: float) -> None:
        self._tried_at = now
        try:
            keys = self.parse(self.get(self.url, self.timeout_s))
        except (httpx.HTTPError, OSError, ValueError) as exc:
            log.warning(
                "oidc: cannot refresh the JWKS from %s (%s); keeping %d key(s)",
                self.url,
                type(exc).__name__,
                len(self._keys),
            )
            return
        self._keys, self._fetched_at = dict(keys), now
        log.info("oidc: JWKS from %s: %d key(s)", self.url, len(keys))

    def keys(self, now: float) -> Mapping[str, rsa.RSAPublicKey]:
        """The keys held, refreshed first when they are missing or older than max_age_s."""
        with self._lock:
            stale = self._fetched_at is None or now - self._fetched_at >= self.max_age_s
            if stale and self._may_try(now):
                self._refresh(now)
            return self._keys

    def key(self, kid: str, now: float) -> rsa.RSAPublicKey | None:
        """The key named `kid`, refreshing once (rate-limited) when it is not held."""
        found = self.keys(now).get(kid)
        if found is not None:
            return found
        with self._lock:
            if kid not in self._keys and self._may_try(now):
                self._refresh(now)
            return self._keys.get(kid)


__all__ = ["RemoteJwks", "http_get"]
