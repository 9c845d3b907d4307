"""[destinations.<name>] (issue 18): the outbound systems, each checked with its dotted key.

A destination names its adapter (`kind`) and how to reach it; [[routes]] (routes.py) say
what goes to which. The name `erp` is kept for the [erp] table's own destination.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isthmus.config.values import ConfigError

DESTINATION_KINDS = ("mllp", "webhook", "nats", "fhir", "sftp", "file")


@dataclass(frozen=True)
class DestinationSettings:
    """[destinations.<name>] (issue 18): one outbound system and how to reach it.

    `kind` picks the adapter (ports/destination.py); the keys a kind does not
    use are ignored by it. `allow` is the destination's field allow-list (its PHI policy:
    only these fields of a status event leave; empty sends the event's non-PHI defaults).
    Delivery is at least once, in order per key, with persisted retries (`max_attempts`,
    backoff from `backoff_base_s` up to `backoff_max_s`; an outage is retried without end,
    never dead-lettered) and a circuit breaker (`breaker_cooldown_s`)."""

    name: str
    kind: str = "file"
    host: str = "127.0.0.1"
    port: int = 0
    url: str = ""  # webhook and FHIR base URL
    subject: str = ""  # nats: the external subject (its stream must exist or is created)
    servers: str = ""  # nats: empty means [nats] servers
    path: str = ""  # file: the folder; sftp: the remote folder
    user: str = ""  # sftp
    key_file: Path | None = None  # sftp: private key
    known_hosts: Path | None = None  # sftp: the server's host key must be in it
    secret_file: Path | None = None  # webhook: the HMAC-SHA256 key
    token_file: Path | None = None  # webhook/fhir: a bearer token
    tls_ca: Path | None = None  # mllp/webhook/fhir: the CA that signs the peer's certificate
    tls_cert: Path | None = None  # mllp/webhook/fhir: our client certificate (mutual TLS)
    tls_key: Path | None = None
    sending_application: str = "ISTHMUS"  # mllp: MSH-3/MSH-4 of what we send
    sending_facility: str = ""
    receiving_application: str = ""  # mllp: MSH-5/MSH-6
    receiving_facility: str = ""
    allow: tuple[str, ...] = ()
    batch: int = 1  # deliveries per send; file and sftp write them into one file
    timeout_s: float = 10.0
    max_attempts: int = 8
    backoff_base_s: float = 0.5
    backoff_max_s: float = 60.0
    breaker_cooldown_s: float = 30.0


def destinations_from_table(raw: dict[str, Any]) -> dict[str, DestinationSettings]:  # noqa: C901 - one branch per destination key, each refused with its path
    """The [destinations] table: each `[destinations.<name>]`, checked."""
    out: dict[str, DestinationSettings] = {}
    paths = (
        "key_file",
        "known_hosts",
        "secret_file",
        "token_file",
        "tls_ca",
        "tls_cert",
        "tls_key",
    )
    for name, spec in raw.items():
        where = f"destinations.{name}"
        if name == "erp":  # the [erp] destination's name in `isthmus destinations`
            raise ConfigError(f"[{where}]: the name erp is the [erp] table's; choose another")
        if not isinstance(spec, dict):
            raise ConfigError(f"[{where}] must be a table")
        kind = spec.get("kind", "file")
        if kind not in DESTINATION_KINDS:
            raise ConfigError(
                f"{where}.kind must be one of {', '.join(DESTINATION_KINDS)}, got {kind!r}"
            )
        values: dict[str, Any] = dict(spec)
        for key in paths:
            if key in values:
                values[key] = Path(str(values[key])) if values[key] else None
        if "allow" in values:
            allow = values["allow"]
            if not isinstance(allow, list) or not all(isinstance(a, str) for a in allow):
                raise ConfigError(f"{where}.allow must be a list of field names")
            values["allow"] = tuple(allow)
        for key in ("batch", "max_attempts"):
            if key in values and (not isinstance(values[key], int) or values[key] < 1):
                raise ConfigError(f"{where}.{key} must be a whole number, 1 or more")
        for key in ("timeout_s", "backoff_base_s", "backoff_max_s", "breaker_cooldown_s"):
            value = values.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{where}.{key} must be a number >= 0, got {value!r}")
        if kind in ("webhook", "fhir") and not values.get("url"):
            raise ConfigError(f"{where}.url is required when kind is {kind}")
        if kind == "mllp" and not values.get("port"):
            raise ConfigError(f"{where}.port is required when kind is mllp")
        if kind == "nats" and not values.get("subject"):
            raise ConfigError(f"{where}.subject is required when kind is nats")
        if kind in ("file", "sftp") and not values.get("path"):
            raise ConfigError(f"{where}.path is required when kind is {kind}")
        out[str(name)] = DestinationSettings(name=str(name), **values)
    return out
