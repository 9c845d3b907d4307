"""The client address of an HTTP request: the peer, or what a configured proxy says it is.

`X-Forwarded-For` is written by whoever sends the request, so it is believed only when the
peer is one of `[api] trusted_proxies` (addresses or CIDR networks, parsed by config.py;
none by default). RFC 7239 `Forwarded` is not read. The list is then read from the right, the
way the hops appended it, skipping the trusted proxies: the first address that is not one of
them is the client (a client's own made-up entries stay on the left and are never reached).
An entry that is not an IP address stops the walk at the last trusted hop. A trusted
proxy's `X-Forwarded-Proto` (http or https) sets the request's scheme, so the absolute
URLs the API answers with (FHIR `fullUrl` and `Location`, `next` links) say https.

The middleware puts the result in the ASGI scope's `client` before anything else reads it,
so the failed-authentication throttle (governance/throttle.py), the audit trail and the
console see the same address. uvicorn's own proxy-header handling is turned off
(api/http.py): by default it trusts `X-Forwarded-For` from 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _trusted(addr: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_address(peer: str, forwarded_for: Sequence[str], proxies: Sequence[Network]) -> str:
    """The client of a request from `peer` carrying these X-Forwarded-For header values."""
    addr = peer
    hops = [h.strip() for value in forwarded_for for h in value.split(",")]
    for hop in reversed(hops):
        if not _trusted(addr, proxies):
            break
        try:
            addr = str(ipaddress.ip_address(hop.strip("[]")))
        except ValueError:
            break
    return addr


class TrustedProxies:
    """ASGI middleware: rewrite scope["client"] from X-Forwarded-For sent by a trusted proxy."""

    def __init__(self, app: ASGIApp, *, proxies: Sequence[Network]) -> None:
        self.app = app
        self.proxies = tuple(proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if (
            self.proxies
            and scope["type"] in ("http", "websocket")
            and client
            and _trusted(client[0], self.proxies)
        ):
            headers = Headers(scope=scope)
            hops = headers.getlist("x-forwarded-for")
            if hops:
                scope = {
                    **scope,
                    "client": (client_address(client[0], hops, self.proxies), client[1]),
                }
            # the scheme the client used, for the absolute URLs the API answers with
            # (FHIR fullUrl/Location, next links) behind a TLS-terminating proxy
            proto = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
            if proto in ("http", "https"):
                scope = {**scope, "scheme": proto}
        await self.app(scope, receive, send)


__all__ = ["Network", "TrustedProxies", "client_address"]
