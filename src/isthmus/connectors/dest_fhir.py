"""The `fhir` destination: FHIR R4 resources created or updated on a FHIR server.

Why: EHRs and payer platforms take the hub's finance results as FHIR resources
(PaymentReconciliation for posted payments, Account for balances, ClaimResponse for
adjudication and denials; issue 18). The route renders the resource JSON; this adapter
picks the RESTful interaction that makes a retry harmless.

Interactions (FHIR R4, http.html):
- the resource has an `id`: `PUT [base]/[type]/[id]` ("update", 3.1.0.4; update-as-create
  when the server allows client-assigned ids, 3.1.0.4.2): a retry writes the same version.
- no `id` but an `identifier`: `POST [base]/[type]` with `If-None-Exist:
  identifier=[system|]value` ("conditional create", 3.1.0.8.1): the server creates it
  once and answers 200 with the existing one after.
- neither: a plain `POST` (a retry may create a second resource; give routes an id or an
  identifier).

Answers (http.html 3.1.0.1.7 and 3.1.0.4.1): 2xx -> `Answer(status, Location / ETag)`;
4xx (400 bad resource, 401/403, 404, 409/412 conflicts, 422 unprocessable) ->
`DestinationRejected` with the OperationOutcome's `issue.severity`/`issue.code` (the codes
of valueset issue-type) and `details.coding` codes, never `diagnostics` or `details.text`,
which may echo the resource; 408, 429, 5xx and transport errors -> `DestinationUnavailable`.
A bearer token (RFC 6750) comes from `token_file`; TLS verifies the server against
`tls_ca` (or the system store), with `tls_cert`/`tls_key` for mutual TLS.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from isthmus.config.destinations import DestinationSettings
from isthmus.ports.destination import (
    Answer,
    DestinationRejected,
    DestinationUnavailable,
    Outgoing,
)

__all__ = ["FhirDestination", "interaction", "open_destination", "outcome_codes"]

_FHIR_JSON = "application/fhir+json"
_RETRY_4XX = {408, 429}


def interaction(resource: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    """(method, relative URL, extra headers) for a resource, per the rules above."""
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not rtype.isalpha():
        raise DestinationRejected(Answer("invalid", "body has no FHIR resourceType"))
    rid = resource.get("id")
    if isinstance(rid, str) and rid:
        return "PUT", f"{rtype}/{quote(rid, safe='')}", {}
    identifiers = resource.get("identifier")
    first = identifiers[0] if isinstance(identifiers, list) and identifiers else identifiers
    if isinstance(first, dict) and first.get("value"):
        system = str(first.get("system") or "")
        token = f"{system}|{first['value']}" if system else str(first["value"])
        return "POST", rtype, {"If-None-Exist": f"identifier={quote(token, safe='|:/')}"}
    return "POST", rtype, {}


def outcome_codes(response: httpx.Response) -> str:
    """The OperationOutcome's issue codes (severity/code and coded details), no free text."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return ""
    out = []
    for issue in body.get("issue") or []:
        if not isinstance(issue, dict):
            continue
        text = f"{issue.get('severity', '?')}/{issue.get('code', '?')}"
        codings = (issue.get("details") or {}).get("coding") or []
        codes = [str(c.get("code")) for c in codings if isinstance(c, dict) and c.get("code")]
        out.append(text + (f" [{','.join(codes)}]" if codes else ""))
    return "; ".join(out[:10])


def _ssl_context(s: DestinationSettings) -> ssl.SSLContext | bool:
    if s.tls_ca is None and s.tls_cert is None:
        return True
    ctx = ssl.create_default_context(cafile=str(s.tls_ca) if s.tls_ca else None)
    if s.tls_cert is not None:
        ctx.load_cert_chain(str(s.tls_cert), str(s.tls_key) if s.tls_key else None)
    return ctx


class FhirDestination:
    """One FHIR server's base URL; an httpx client (a connection pool) held across sends."""

    batch = 1

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        token_file: Path | None = None,
        verify: ssl.SSLContext | bool = True,
        timeout_s: float = 10.0,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f'[destinations.{name}] kind = "fhir" needs an http(s) url')
        self.name = name
        self._base = base_url.rstrip("/") + "/"
        self._token_file = token_file
        self._client = httpx.Client(verify=verify, timeout=timeout_s)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": _FHIR_JSON, "Accept": _FHIR_JSON}
        if self._token_file is not None:  # read per call: a rotated token is picked up
            try:
                token = self._token_file.read_text().strip()
            except OSError as exc:
                raise DestinationUnavailable(
                    f"FHIR token_file unreadable [{exc.errno}] {exc.strerror}"
                ) from exc
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def send(self, items: Sequence[Outgoing]) -> Answer:
        if len(items) != 1:
            raise ValueError(f"the fhir destination sends one resource at a time, got {len(items)}")
        item = items[0]
        try:
            resource = json.loads(item.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DestinationRejected(Answer("invalid", "body is not JSON")) from exc
        if not isinstance(resource, dict):
            raise DestinationRejected(Answer("invalid", "body is not a FHIR resource object"))
        method, path, extra = interaction(resource)
        headers = {**self._headers(), **extra, "X-Request-Id": item.idempotency_key}
        try:
            response = self._client.request(
                method, self._base + path, content=item.body, headers=headers
            )
        except httpx.TransportError as exc:
            raise DestinationUnavailable(
                f"FHIR {method} {path.split('/')[0]}: {type(exc).__name__}"
            ) from exc
        status = response.status_code
        if 200 <= status < 300:
            where = (
                response.headers.get("Location") or response.headers.get("Content-Location") or ""
            )
            etag = response.headers.get("ETag", "")
            return Answer(str(status), " ".join(x for x in (method, where, etag) if x))
        codes = outcome_codes(response)
        reason = f"FHIR {method} {path.split('/')[0]}: HTTP {status}" + (
            f" {codes}" if codes else ""
        )
        if status in _RETRY_4XX or status >= 500 or status < 200:
            raise DestinationUnavailable(reason)
        raise DestinationRejected(Answer(str(status), reason))

    def close(self) -> None:
        self._client.close()


def open_destination(s: DestinationSettings, nats_servers: str = "") -> FhirDestination:
    """The adapter for `[destinations.<name>] kind = "fhir"` (`url` is the FHIR base)."""
    del nats_servers
    return FhirDestination(
        s.name, s.url, token_file=s.token_file, verify=_ssl_context(s), timeout_s=s.timeout_s
    )
