"""[channels.<name>]: the inbound feeds, each checked with its dotted key (issue 18).

A channel is how messages come in (MLLP listener, the FHIR API, a drop folder, an SFTP
pickup) and how the hub reads them (summarization, currency, the HL7 v2 trigger policy).
The checks that span channels (one port each, a client CA with a certificate) run once
[hub] is known: `check_channel_ports`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from isthmus.config.values import ConfigError
from isthmus.formats.hl7v2.triggers import policy_table

Summarization = Literal["detailed", "summary"]

CHANNEL_TRANSPORTS = ("mllp", "fhir", "folder", "sftp")
SFTP_KEYS = ("user", "key_file", "known_hosts", "path", "poll_s")  # sftp channels only


@dataclass(frozen=True)
class ChannelSettings:
    """[channels.<name>] (issue 18): one named inbound feed.

    `transport` says how messages come in: "mllp" (a listener on `host`:`port`; the
    channel named "mllp" listens on [hub] mllp_port), "fhir" (the FHIR API, the channel
    named "fhir") or "folder" (a watched drop folder at `folder`; empty: the hub's own
    `<data_dir>/drop`). Left out, it is inferred: "mllp" for a channel named "mllp" or one
    with a `port`, "fhir" for the one named "fhir", else "folder" (the file channels,
    x12, settlement, ...). `senders` are the sending identities an MLLP channel takes,
    `MSH-3^MSH-4` (first components; empty: any); `ack_application`/`ack_facility` are
    the ACK's own MSH-3/MSH-4. TLS keys left out take [hub] tls_cert/tls_key and [tls]
    client_ca."""

    name: str
    summarization: Summarization = "summary"
    currency: str = "USD"
    # HL7 v2: message type or TYPE^TRIGGER -> accept | ignore | refuse (formats.hl7v2.triggers)
    messages: dict[str, str] = field(default_factory=dict)
    # FHIR: where charges come from, "chargeitem" or "claim" (formats.fhir.claim_charges)
    charges_from: str = "chargeitem"
    transport: str = ""  # "" until parsed: channel_transport() infers it
    host: str = ""  # mllp: empty means [hub] host
    port: int | None = None  # mllp: None means [hub] mllp_port (the "mllp" channel only)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    senders: tuple[str, ...] = ()
    ack_application: str = "ISTHMUS"
    ack_facility: str = "ISTHMUS"
    folder: Path | None = None
    # sftp pickup (connectors/sftp_pickup.py): `host`:`port` (22), `user`, `key_file`,
    # `known_hosts` and the remote folder `path` (its inbound/, done/, failed/), polled
    # every `poll_s` seconds
    user: str = ""
    key_file: Path | None = None
    known_hosts: Path | None = None
    path: str = ""
    poll_s: float = 30.0


def channel_transport(name: str, spec: dict[str, Any]) -> str:
    """The transport a `[channels.<name>]` table names, or the one inferred (see
    ChannelSettings), so files written before channels had transports keep working."""
    if "transport" in spec:
        return str(spec["transport"])
    if name == "fhir":
        return "fhir"
    if name == "mllp" or "port" in spec:
        return "mllp"
    return "folder"


def channel_from_table(name: str, spec: dict[str, Any]) -> ChannelSettings:  # noqa: C901 - one branch per channel key, each refused with its path
    """One `[channels.<name>]` table, checked; every error names its dotted key."""
    where = f"channels.{name}"
    if not isinstance(spec, dict):
        raise ConfigError(f"[{where}] must be a table")
    summ = spec.get("summarization", "summary")
    if summ not in ("detailed", "summary"):
        raise ConfigError(f"{where}.summarization must be detailed or summary")
    try:
        table = policy_table(spec.get("messages", {}), f"{where}.messages")
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    charges_from = spec.get("charges_from", "chargeitem")
    if charges_from not in ("chargeitem", "claim"):
        raise ConfigError(f"{where}.charges_from must be chargeitem or claim")
    transport = channel_transport(name, spec)
    if transport not in CHANNEL_TRANSPORTS:
        raise ConfigError(
            f"{where}.transport must be one of {', '.join(CHANNEL_TRANSPORTS)}, got {transport!r}"
        )
    if transport == "fhir" and name != "fhir":
        raise ConfigError(
            f"{where}.transport: the FHIR API is the one channel named "
            '"fhir"; name this channel fhir or choose mllp or folder'
        )
    port = spec.get("port")
    if port is not None and (
        isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535
    ):
        raise ConfigError(f"{where}.port must be a TCP port from 0 to 65535, got {port!r}")
    if transport == "sftp" and port == 0:
        raise ConfigError(f"{where}.port must be the SFTP server's port (1 to 65535)")
    if transport == "mllp" and name != "mllp" and port is None:
        raise ConfigError(
            f'{where}.port is required: an MLLP channel other than "mllp" '
            "listens on a port of its own"
        )
    if transport == "sftp":
        _sftp_channel(where, spec)
    else:
        for key in SFTP_KEYS:
            if key in spec:
                raise ConfigError(
                    f"{where}.{key} is for sftp channels; this one's transport is {transport}"
                )
    if transport != "mllp":
        for key in (
            "port",
            "host",
            "senders",
            "ack_application",
            "ack_facility",
            "tls_cert",
            "tls_key",
            "tls_client_ca",
        ):
            if key in spec and not (transport == "sftp" and key in ("port", "host")):
                raise ConfigError(
                    f"{where}.{key} is for MLLP channels; this one's transport is {transport}"
                )
    if "folder" in spec and transport != "folder":
        raise ConfigError(
            f"{where}.folder is for folder channels; this one's transport is {transport}"
        )
    senders = spec.get("senders", [])
    if not isinstance(senders, list) or not all(
        isinstance(x, str) and x.count("^") == 1 and x.strip("^") for x in senders
    ):
        raise ConfigError(
            f'{where}.senders must be a list of "MSH-3^MSH-4" identities, e.g. ["EPIC^MAIN"]'
        )
    texts: dict[str, str] = {}
    for key in ("host", "ack_application", "ack_facility"):
        value = spec.get(key, getattr(ChannelSettings, key))
        if not isinstance(value, str) or any(c in value for c in "|^~\\&\r\n"):
            raise ConfigError(f"{where}.{key} must be text without HL7 delimiters")
        texts[key] = value
    paths = {
        k: Path(str(spec[k])) if spec.get(k) else None
        for k in ("tls_cert", "tls_key", "tls_client_ca", "folder", "key_file", "known_hosts")
    }
    if (paths["tls_cert"] is None) != (paths["tls_key"] is None):
        raise ConfigError(f"{where}.tls_cert and {where}.tls_key go together")
    return ChannelSettings(
        name=name,
        summarization=summ,
        currency=str(spec.get("currency", "USD")),
        messages=dict(table),
        charges_from=charges_from,
        transport=transport,
        port=port,
        senders=tuple(x.strip() for x in senders),
        host=texts["host"],
        ack_application=texts["ack_application"],
        ack_facility=texts["ack_facility"],
        tls_cert=paths["tls_cert"],
        tls_key=paths["tls_key"],
        tls_client_ca=paths["tls_client_ca"],
        folder=paths["folder"],
        user=str(spec.get("user", "")),
        key_file=paths["key_file"],
        known_hosts=paths["known_hosts"],
        path=str(spec.get("path", "")),
        poll_s=float(spec.get("poll_s", ChannelSettings.poll_s)),
    )


def _sftp_channel(where: str, spec: dict[str, Any]) -> None:
    """The keys an sftp pickup needs (host keys are always checked: known_hosts)."""
    for key in ("host", "user", "key_file", "known_hosts", "path"):
        if not isinstance(spec.get(key), str) or not spec[key].strip():
            raise ConfigError(f"{where}.{key} is required when transport is sftp (text)")
    poll = spec.get("poll_s", ChannelSettings.poll_s)
    if isinstance(poll, bool) or not isinstance(poll, int | float) or not 0 < poll < 86_400:
        raise ConfigError(f"{where}.poll_s must be seconds above 0, got {poll!r}")


def check_channel_ports(channels: dict[str, ChannelSettings], hub_port: int, hub_tls: bool) -> None:
    """Two MLLP channels may not share a port (0, a free one, excepted); a channel's own
    client CA needs a certificate, its own or the hub's."""
    seen: dict[int, str] = {hub_port: "mllp"} if "mllp" not in channels else {}
    for ch in channels.values():
        if ch.transport != "mllp":
            continue
        port = hub_port if ch.port is None else ch.port
        if port and port in seen and seen[port] != ch.name:
            raise ConfigError(
                f"channels.{ch.name}.port {port} is already the port of channel {seen[port]}"
            )
        seen[port] = ch.name
        if ch.tls_client_ca is not None and ch.tls_cert is None and not hub_tls:
            raise ConfigError(
                f"channels.{ch.name}.tls_client_ca needs a certificate: "
                f"channels.{ch.name}.tls_cert and tls_key, or [hub] tls_cert"
            )
