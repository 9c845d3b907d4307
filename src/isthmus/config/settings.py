"""Settings: every setting of a site in one typed value, each table's dataclass a field.

Its fields are also the file's layout (`known_keys` in this package's `__init__`, and
config_keys.py): a dataclass-typed field is a table, a plain field a [hub] key.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from isthmus.config.channels import ChannelSettings, channel_transport
from isthmus.config.claims import ClaimSettings
from isthmus.config.destinations import DestinationSettings
from isthmus.config.erp import ErpSettings
from isthmus.config.labor import LaborSettings
from isthmus.config.limits import LimitSettings
from isthmus.config.mappings import Mappings
from isthmus.config.observe import AlertSettings, LogSettings, SlaSettings, TracingSettings
from isthmus.config.posting import PostingPolicy, RefundSettings, SettlementPolicy
from isthmus.config.reliability import ReliabilitySettings, ScaleOutSettings
from isthmus.config.retention import RetentionSettings
from isthmus.config.routes import RouteSettings
from isthmus.governance.oidc import OidcSettings


@dataclass(frozen=True)
class Settings:
    """Every setting of a site, typed: one TOML file plus environment overrides, read once at
    start."""

    data_dir: Path
    host: str = "127.0.0.1"
    mllp_port: int = 2575
    http_port: int = 8470
    store: Literal["sqlite", "postgresql"] = "sqlite"
    bus: Literal["sqlite", "nats"] = "sqlite"
    tenant: str = "default"
    token_secret: str = ""  # empty: a random per-site key kept in the data directory
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # [tls] client_ca: MLLP clients need a certificate
    ownership: dict[str, frozenset[str]] = field(default_factory=dict)  # [ownership]
    allowlist: dict[str, frozenset[str]] = field(default_factory=dict)  # [allowlist]
    oidc: OidcSettings | None = None  # [oidc]: RS256 JWT bearer tokens too
    # [api] trusted_proxies: peers whose X-Forwarded-For names the client (api/clients.py)
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    channels: dict[str, ChannelSettings] = field(default_factory=dict)
    destinations: dict[str, DestinationSettings] = field(default_factory=dict)
    routes: tuple[RouteSettings, ...] = ()  # [[routes]]
    mappings: Mappings = field(default_factory=Mappings)  # empty: see mappings.py
    posting: PostingPolicy = field(default_factory=PostingPolicy)
    settlement: SettlementPolicy = field(default_factory=SettlementPolicy)
    reliability: ReliabilitySettings = field(default_factory=ReliabilitySettings)
    scaleout: ScaleOutSettings = field(default_factory=ScaleOutSettings)
    erp: ErpSettings = field(default_factory=ErpSettings)
    sla: SlaSettings = field(default_factory=SlaSettings)
    logging: LogSettings = field(default_factory=LogSettings)
    tracing: TracingSettings = field(default_factory=TracingSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    refunds: RefundSettings = field(default_factory=RefundSettings)
    claims: ClaimSettings = field(default_factory=ClaimSettings)  # [claims], issue 20
    limits: LimitSettings = field(default_factory=LimitSettings)  # [limits]
    retention: RetentionSettings = field(default_factory=RetentionSettings)  # [retention]
    labor: LaborSettings = field(default_factory=LaborSettings)
    # [supply] as written: parsed and checked by flows.supply_state.policy_from_table when
    # the hub is wired (app.py), so that config stays free of flow types
    supply: dict[str, Any] = field(default_factory=dict)

    def channel(self, name: str) -> ChannelSettings:
        return self.channels.get(name) or ChannelSettings(
            name=name, transport=channel_transport(name, {})
        )
