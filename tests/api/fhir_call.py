"""One request to the hub's HTTP app in process (httpx over ASGI, from a loopback client),
as the FHIR API tests make them: a JSON body or raw bytes, a media type, a bearer token."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from isthmus.api.http import build_app

FHIR_MEDIA = "application/fhir+json"


def call(
    hub: Any,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None,
    raw: bytes | None = None,
    media: str = FHIR_MEDIA,
) -> httpx.Response:
    content = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(hub, {}), client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
            headers = {"Content-Type": media}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            return await c.request(method, path, content=content, headers=headers)

    return asyncio.run(go())
