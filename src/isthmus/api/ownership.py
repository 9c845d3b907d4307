"""System-of-record check for FHIR writes (ASGI middleware, inside the bearer-token check).

A POST or PUT under /fhir writes the data domains of the resources it carries (a Bundle:
those of its entries). When [ownership] names owners for one of them and the calling
principal (the token's, set by api/auth.py) is not among them, the write is refused before
it reaches the FHIR handlers: 403 with an OperationOutcome (code `forbidden`) naming the
domain and its owners, and the body is kept as a rejected inbox row for inspection
(channel fhir, control id `owner/<type>/<digest16>`), like the other refusals. The
decision is governance/ownership.py's. The body is read within `[limits] max_body_bytes`
(413 above it, before it is read in full), as the FHIR routes read it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

import msgspec
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from isthmus.formats.fhir import FhirError, operation_outcome
from isthmus.governance import audit, ownership
from isthmus.governance.ports import GovernanceStore
from isthmus.store.ports import Inbound, Store

CHANNEL = "fhir"
_WRITES = frozenset({"POST", "PUT"})


def resource_types(body: bytes) -> list[str]:
    """The resource types a FHIR write carries; [] when the body is unreadable (the FHIR
    handlers then answer 400 with the reason)."""
    return list(ownership.fhir_write(body).types)


class SystemOfRecord:
    """ASGI middleware: refuse a FHIR POST or PUT whose resources belong to a data domain the
    calling principal does not own ([ownership]), with a 403 OperationOutcome, keeping the
    body as a rejected inbox row and the refusal in the audit trail."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        owners: ownership.Owners,
        store: Store,
        governance: GovernanceStore,
        max_body_bytes: int = 0,
    ) -> None:
        self.app, self.owners, self.store, self.gov = app, owners, store, governance
        self.max_body_bytes = max_body_bytes  # [limits]; 0: no limit

    async def _too_large(self, send: Send) -> None:
        """413 before the body is read in full, as the FHIR routes do (api/fhir_routes.py)."""
        await self._answer(
            send,
            413,
            FhirError(
                "too-long",
                f"the request body is larger than {self.max_body_bytes} bytes "
                "([limits] max_body_bytes)",
            ),
        )

    @staticmethod
    async def _answer(send: Send, status: int, error: FhirError) -> None:
        data = msgspec.json.encode(operation_outcome([error]))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/fhir+json"),
                    (b"content-length", str(len(data)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            not self.owners
            or scope["type"] != "http"
            or scope["method"] not in _WRITES
            or not str(scope.get("path", "")).startswith("/fhir")
        ):
            await self.app(scope, receive, send)
            return
        cap = self.max_body_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if cap and declared.isdigit() and int(declared) > cap:
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        more, size = True, 0
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if cap and size > cap:
                await self._too_large(send)
                return
            more = message.get("more_body", False)
        body = b"".join(chunks)
        principal = str(scope.get("state", {}).get("principal", ""))
        types = resource_types(body)
        refused = ownership.decide(self.owners, ownership.fhir_domains(types), (principal,))
        if refused is None:
            sent = False

            async def replay() -> Message:
                nonlocal sent
                if sent:
                    return await receive()
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
            return
        await asyncio.to_thread(self._keep, scope, body, types[0] if types else "", refused)
        await self._answer(send, 403, FhirError("forbidden", refused.text, [refused.domain]))

    def _keep(self, scope: Scope, body: bytes, rtype: str, refused: ownership.Refusal) -> None:
        digest = hashlib.sha256(body).hexdigest()
        client = scope.get("client")
        peer = f"{client[0]}:{client[1]}" if client else ""
        self.store.accept(
            [
                Inbound(
                    CHANNEL,
                    f"owner/{rtype or 'unknown'}/{digest[:16]}",
                    body,
                    time.time(),
                    peer,
                    rtype,
                    "rejected",
                    "AE",
                    refused.text,
                    b"",
                    digest,
                )
            ]
        )
        audit.record(
            self.gov,
            refused.sender or "anonymous",
            "fhir.refused",
            f"{scope['method']} {str(scope.get('path', ''))[:200]}",
            "denied",
            domain=refused.domain,
            owners=list(refused.owners),
        )


__all__ = ["SystemOfRecord", "resource_types"]
