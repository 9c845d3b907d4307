"""The `webhook` destination: each delivery POSTed as is (JSON by default), signed and keyed.

Why: the systems that want status events and run a web service (a patient portal, a CRM, a
collections agency's API, a low-code automation) take an HTTPS POST; they need to know the
hub sent it and to see a retry as the same event (issue 18).

- Signature: `X-Isthmus-Signature: sha256=<hex>`, the HMAC-SHA256 (RFC 2104, FIPS 180-4)
  of the exact body bytes with the key in `secret_file` (the scheme GitHub and Stripe use;
  the receiver recomputes it over the raw body and compares in constant time).
- `Idempotency-Key: <key>` (the IETF httpapi draft "The Idempotency-Key HTTP Header
  Field"): the same for every retry and resend of a delivery, so the receiver can drop a
  repeat (delivery is at least once). `X-Isthmus-Event` names the event type.
- Answers (RFC 9110 section 15): 2xx delivered; 408, 429 and 5xx, and any connection error
  or timeout, unavailable (retried with backoff, never dead); any other status rejected
  (a person must act: the code and reason phrase go into the work item, never the
  response body, which may echo the content).
- TLS verified against `tls_ca` (or the system store), with a client certificate when
  `tls_cert`/`tls_key` are set; a bearer token from `token_file` if there is one.

One delivery per request (`batch` is 1).
"""

from __future__ import annotations

import hashlib
import hmac
import ssl
from collections.abc import Sequence
from pathlib import Path

import httpx

from isthmus.config.destinations import DestinationSettings
from isthmus.config.values import ConfigError
from isthmus.ports.destination import (
    Answer,
    DestinationRejected,
    DestinationUnavailable,
    Outgoing,
)

SIGNATURE_HEADER = "X-Isthmus-Signature"
RETRIED = frozenset({408, 425, 429})


def signature(secret: bytes, body: bytes) -> str:
    """The signature header's value: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookDestination:
    """The `webhook` destination: one signed POST per delivery, its answer sorted into
    delivered, unavailable (retried) or rejected."""

    batch = 1

    def __init__(
        self,
        name: str,
        url: str,
        *,
        secret: bytes = b"",
        token: str = "",
        timeout_s: float = 10.0,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.name, self.url, self._secret, self._token = name, url, secret, token
        self._client = httpx.Client(timeout=timeout_s, verify=verify, follow_redirects=False)

    def send(self, items: Sequence[Outgoing]) -> Answer:
        answer = Answer("none")
        for item in items:  # batch is 1; a longer run is sent one by one, in order
            answer = self._post(item)
        return answer

    def _post(self, item: Outgoing) -> Answer:
        headers = {
            "Content-Type": item.content_type,
            "Idempotency-Key": item.idempotency_key,
            "X-Isthmus-Event": item.event_type,
            "X-Isthmus-Delivery": str(item.delivery_id),
        }
        if self._secret:
            headers[SIGNATURE_HEADER] = signature(self._secret, item.body)
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            r = self._client.post(self.url, content=item.body, headers=headers)
        except httpx.HTTPError as exc:  # connect, read, write, pool timeouts, refused
            raise DestinationUnavailable(f"{type(exc).__name__}: {exc}") from exc
        code = r.status_code
        reason = r.reason_phrase or ""
        if 200 <= code < 300:
            return Answer(str(code), reason)
        if code in RETRIED or code >= 500:
            raise DestinationUnavailable(f"HTTP {code} {reason}")
        raise DestinationRejected(Answer(str(code), reason))

    def close(self) -> None:
        self._client.close()


def _read(path: Path | None, what: str, name: str) -> bytes:
    if path is None:
        return b""
    try:
        return path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(
            f"destinations.{name}.{what}: cannot read {path}: {exc.strerror or exc}"
        ) from exc


def open_destination(s: DestinationSettings, nats_servers: str = "") -> WebhookDestination:
    """The adapter for `[destinations.<name>] kind = "webhook"` (`url`, `secret_file`,
    `token_file`, TLS keys, `timeout_s`)."""
    del nats_servers
    verify: ssl.SSLContext | bool = True
    if s.tls_ca is not None or s.tls_cert is not None:
        verify = ssl.create_default_context(cafile=str(s.tls_ca) if s.tls_ca else None)
        if s.tls_cert is not None:
            verify.load_cert_chain(str(s.tls_cert), str(s.tls_key) if s.tls_key else None)
    return WebhookDestination(
        s.name,
        s.url,
        secret=_read(s.secret_file, "secret_file", s.name),
        token=_read(s.token_file, "token_file", s.name).decode(),
        timeout_s=s.timeout_s,
        verify=verify,
    )
