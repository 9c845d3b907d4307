"""[limits] and [api] trusted_proxies: how much the HTTP API takes, and from whom.

The largest request body and the deepest JSON nesting the API routes accept
(api/json_body.py), and the proxies whose X-Forwarded-For names the client (api/clients.py).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from isthmus.config.values import ConfigError


@dataclass(frozen=True)
class LimitSettings:
    """[limits]: the largest HTTP request body (413 above it) and the deepest JSON nesting
    (400 above it) the API routes take (api/json_body.py)."""

    max_body_bytes: int = 8 * 1024 * 1024
    max_json_depth: int = 32


def limits_from_table(raw: dict[str, Any]) -> LimitSettings:
    """The [limits] table, checked."""
    d = LimitSettings()
    out = LimitSettings(
        **{k: raw.get(k, getattr(d, k)) for k in ("max_body_bytes", "max_json_depth")}
    )
    for name, low, high in (("max_body_bytes", 1024, 1 << 30), ("max_json_depth", 2, 512)):
        value = getattr(out, name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"limits.{name} must be a whole number from {low} to {high}")
    return out


def trusted_proxies_from_table(
    api: dict[str, Any],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """[api] trusted_proxies: addresses or CIDR networks."""
    entries = api.get("trusted_proxies", [])
    if not isinstance(entries, list):
        raise ConfigError("api.trusted_proxies must be a list of addresses or networks")
    out = []
    for e in entries:
        try:
            out.append(ipaddress.ip_network(str(e).strip(), strict=False))
        except ValueError as exc:
            raise ConfigError(
                f"api.trusted_proxies: {str(e)[:60]!r} is not an IP address or network"
            ) from exc
    return tuple(out)
