"""Typed settings, loaded once at start from one TOML file plus environment overrides.

The hub runs with no file at all: the embedded defaults listen on 127.0.0.1 only and
carry an EMPTY chart of mapping tables, so every charge waits behind a mapping work item
until the site maps it (never posting to demonstration accounts). The demonstration chart
(demo/chart.py) is `isthmus demo`'s, or a file's that asks for it: `[mappings] include =
"demo"`, its tables then merged under the file's own rows. A file replaces any other table
it names; an unknown table or key is refused with its path and a guess (config_keys.py,
known_keys).
Environment overrides: ISTHMUS_DATA_DIR, ISTHMUS_MLLP_PORT, ISTHMUS_HTTP_PORT,
ISTHMUS_HOST, ISTHMUS_STORE, ISTHMUS_BUS, ISTHMUS_TOKEN_SECRET, ISTHMUS_WORKERS
(0: this process only listens; run the flows elsewhere), ISTHMUS_SQLITE_SYNCHRONOUS,
ISTHMUS_PG_DSN, ISTHMUS_PG_SCHEMA, ISTHMUS_NATS_URL, ISTHMUS_NATS_STREAM,
ISTHMUS_LOG_FORMAT, ISTHMUS_LOG_LEVEL, ISTHMUS_TRACING_EXPORTER.

This module is the loader (`load_settings`, `known_keys`) and the package's public face:
every settings type is importable from `isthmus.config`. Each table's dataclass and its
checks live in a module of its own, by noun (channels.py, destinations.py, routes.py,
erp.py, mappings.py, posting.py, claims.py, labor.py, observe.py, reliability.py,
limits.py, retention.py; Settings in settings.py, ConfigError in values.py).
Only this module reaches above the settings: [supply] keys (flows.supply_state), [[routes]]
templates compiled at load (flows.routes) and the demonstration chart (demo.chart). The
table modules reach no flow, so the connectors and the flows' instrumentation import their
settings from them, not from here (import-linter holds them to it: pyproject.toml).
"""

from __future__ import annotations

import importlib.util
import os
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from isthmus.config.channels import (
    CHANNEL_TRANSPORTS,
    SFTP_KEYS,
    ChannelSettings,
    Summarization,
    channel_from_table,
    channel_transport,
    check_channel_ports,
)
from isthmus.config.claims import ClaimSettings, claims_from_table
from isthmus.config.destinations import (
    DESTINATION_KINDS,
    DestinationSettings,
    destinations_from_table,
)
from isthmus.config.erp import ErpSettings, erp_from_table
from isthmus.config.labor import (
    PAY_CODES,
    SERVICE_LINES,
    LaborSettings,
    PayCode,
    labor_from_table,
)
from isthmus.config.limits import LimitSettings, limits_from_table, trusted_proxies_from_table
from isthmus.config.mappings import (
    CHARTS,
    TRANSACTION_KINDS,
    TRANSACTION_TYPES,
    Mappings,
    RevenueMapping,
    included_chart,
    mappings_over,
)
from isthmus.config.observe import (
    AlertSettings,
    LogSettings,
    SlaSettings,
    TracingSettings,
    observe_from_tables,
)
from isthmus.config.posting import (
    ClosedPeriodPolicy,
    PostingPolicy,
    RefundSettings,
    SettlementPolicy,
    refunds_from_table,
    settlement_from_table,
)
from isthmus.config.reliability import (
    ReliabilitySettings,
    ScaleOutSettings,
    reliability_from_table,
    scaleout_from_tables,
)
from isthmus.config.retention import RetentionRule, RetentionSettings, retention_from_table
from isthmus.config.routes import ROUTE_KEYS, RouteSettings, routes_from_table
from isthmus.config.settings import Settings
from isthmus.config.values import ConfigError, subtable
from isthmus.config_keys import LEAF, OPEN, Entries, Schema, keys_of, unknown
from isthmus.flows import supply_state
from isthmus.governance import allowlist, oidc, ownership
from isthmus.ledger.supply import SupplyAccounts

__all__ = [
    "CHANNEL_TRANSPORTS",
    "CHARTS",
    "DESTINATION_KINDS",
    "PAY_CODES",
    "ROUTE_KEYS",
    "SERVICE_LINES",
    "SFTP_KEYS",
    "TRANSACTION_KINDS",
    "TRANSACTION_TYPES",
    "AlertSettings",
    "ChannelSettings",
    "ClaimSettings",
    "ClosedPeriodPolicy",
    "ConfigError",
    "DestinationSettings",
    "ErpSettings",
    "LaborSettings",
    "LimitSettings",
    "LogSettings",
    "Mappings",
    "PayCode",
    "PostingPolicy",
    "RefundSettings",
    "ReliabilitySettings",
    "RetentionRule",
    "RetentionSettings",
    "RevenueMapping",
    "RouteSettings",
    "ScaleOutSettings",
    "Settings",
    "SettlementPolicy",
    "SlaSettings",
    "Summarization",
    "TracingSettings",
    "channel_transport",
    "known_keys",
    "load_settings",
    "mappings_from_table",
]


def mappings_from_table(maps: dict[str, Any]) -> Mappings:
    """The mapping tables of a `[mappings]` table: the included chart's rows (if any), then
    the table's own rows over them."""
    base: dict[str, Any] = {}
    if included_chart(maps):
        from isthmus.demo.chart import TABLE  # noqa: PLC0415 - demo/chart.py imports us

        base = TABLE
    return mappings_over(base, maps)


def known_keys() -> Schema:
    """Every table and key a config file may hold, from the settings dataclasses.

    Top-level scalar settings live in [hub]; the scale-out ones in [postgresql] (pg_*) and
    [nats] (nats_*); [ownership], [allowlist], [oidc] and [supply] are parsed by their own
    modules: [oidc] and [supply] are described here by the names those modules take."""
    moved = (
        "tls_client_ca",
        "oidc",
        "trusted_proxies",
        "scaleout",
        "channels",
        "destinations",
        "routes",
    )
    top = keys_of(Settings, skip=moved)
    scale = keys_of(ScaleOutSettings)
    return {
        **{k: node for k, node in top.items() if node is not LEAF},
        "hub": {k: LEAF for k, node in top.items() if node is LEAF},
        "tls": {"client_ca": LEAF},
        "api": {"trusted_proxies": LEAF},
        "postgresql": {k.removeprefix("pg_"): LEAF for k in scale if k.startswith("pg_")},
        "nats": {k.removeprefix("nats_"): LEAF for k in scale if k.startswith("nats_")},
        "channels": Entries(keys_of(ChannelSettings, skip=("name",))),
        "destinations": Entries(keys_of(DestinationSettings, skip=("name",))),
        "routes": LEAF,  # an array of tables: routes_from_table names its unknown keys
        # keys are data domains / ERP destinations: their parsers name the path and list
        # the valid ones, which says more than a guess
        "ownership": OPEN,
        "allowlist": OPEN,
        "oidc": dict.fromkeys(
            (
                "issuer",
                "audience",
                "jwks_file",
                "jwks_url",
                "roles_claim",
                "leeway_s",
                "jwks_max_age_s",
                "jwks_min_refresh_s",
            ),
            LEAF,
        ),
        "supply": {
            **dict.fromkeys(supply_state.KNOWN, OPEN),
            **dict.fromkeys(
                (
                    "company",
                    "currency",
                    "price_tolerance",
                    "ap_owner",
                    "price_tolerance_per_unit",
                    "quantity_tolerance",
                    "unmatched_limit_days",
                ),
                LEAF,
            ),
            "accounts": keys_of(SupplyAccounts),
            "par_levels": Entries(keys_of(supply_state.ParLevel)),
        },
    }


def load_settings(
    path: Path | None = None, *, data_dir: Path | None = None, env: dict[str, str] | None = None
) -> Settings:
    """Build Settings from defaults, then the TOML file, then the environment, then flags."""
    env = dict(os.environ) if env is None else env
    path = path or (Path(env["ISTHMUS_CONFIG"]) if env.get("ISTHMUS_CONFIG") else None)
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    refused = unknown(raw, known_keys())
    if refused:
        raise ConfigError(f"config file {path}: " + "; ".join(refused))
    hub = subtable(raw, "hub")
    dd = data_dir or Path(env.get("ISTHMUS_DATA_DIR") or hub.get("data_dir") or "./data")
    s = Settings(data_dir=dd)
    mappings = mappings_from_table(subtable(raw, "mappings"))
    channels = {
        str(name): channel_from_table(str(name), spec)
        for name, spec in subtable(raw, "channels").items()
    }
    post = subtable(raw, "posting")
    policy = post.get("closed_period_policy", "next_open")
    if policy not in ("reject", "next_open"):
        raise ConfigError("posting.closed_period_policy must be reject or next_open")
    pg, nats = subtable(raw, "postgresql"), subtable(raw, "nats")
    scaleout = scaleout_from_tables(pg, nats, env)
    rel = subtable(raw, "reliability")
    try:
        reliability = reliability_from_table(rel, env)
        s = replace(
            s,
            host=str(env.get("ISTHMUS_HOST") or hub.get("host", s.host)),
            mllp_port=int(env.get("ISTHMUS_MLLP_PORT") or hub.get("mllp_port", s.mllp_port)),
            http_port=int(env.get("ISTHMUS_HTTP_PORT") or hub.get("http_port", s.http_port)),
            store=env.get("ISTHMUS_STORE") or hub.get("store", s.store),  # type: ignore[arg-type]
            bus=env.get("ISTHMUS_BUS") or hub.get("bus", s.bus),  # type: ignore[arg-type]
            tenant=str(hub.get("tenant", s.tenant)),
            token_secret=str(
                env.get("ISTHMUS_TOKEN_SECRET") or hub.get("token_secret", s.token_secret)
            ),
            tls_cert=Path(hub["tls_cert"]) if hub.get("tls_cert") else None,
            tls_key=Path(hub["tls_key"]) if hub.get("tls_key") else None,
            tls_client_ca=(
                Path(subtable(raw, "tls")["client_ca"])
                if subtable(raw, "tls").get("client_ca")
                else None
            ),
            ownership=ownership.parse(subtable(raw, "ownership")),
            allowlist=allowlist.parse(subtable(raw, "allowlist")),
            oidc=oidc.parse(subtable(raw, "oidc")),
            trusted_proxies=trusted_proxies_from_table(subtable(raw, "api")),
            channels=channels,
            mappings=mappings,
            posting=PostingPolicy(
                ar_account=str(post.get("ar_account", "1200")),
                closed_periods=tuple(str(p) for p in post.get("closed_periods", ())),
                closed_period_policy=policy,
                refunds_payable_account=str(post.get("refunds_payable_account", "2100")),
            ),
            reliability=reliability,
            scaleout=scaleout,
            erp=erp_from_table(subtable(raw, "erp")),
            settlement=settlement_from_table(subtable(raw, "settlement")),
        )
        sla, logs, tracing, alerts = observe_from_tables(raw, env)
        s = replace(s, sla=sla, logging=logs, tracing=tracing, alerts=alerts)
        s = replace(s, refunds=refunds_from_table(subtable(raw, "refunds")))
        s = replace(s, claims=claims_from_table(subtable(raw, "claims")))
        s = replace(s, limits=limits_from_table(subtable(raw, "limits")))
        s = replace(s, retention=retention_from_table(subtable(raw, "retention")))
        s = replace(s, labor=labor_from_table(subtable(raw, "labor")))
        s = replace(s, supply=subtable(raw, "supply"))
        s = replace(s, destinations=destinations_from_table(subtable(raw, "destinations")))
        if s.claims.destination and s.claims.destination not in s.destinations:
            raise ConfigError(
                f"claims.destination {s.claims.destination!r} names no [destinations] entry"
            )
        s = replace(s, routes=routes_from_table(raw.get("routes", []), s.destinations))
        if s.routes:  # templates and functions compile now: a bad one is a ConfigError
            from isthmus.flows.routes import compile_routes  # noqa: PLC0415 - imports us

            compile_routes(s.routes, s.destinations)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid setting: {exc}") from exc
    if s.tls_client_ca is not None and not (s.tls_cert and s.tls_key):
        raise ConfigError("[tls] client_ca needs [hub] tls_cert and tls_key (mutual TLS)")
    check_channel_ports(s.channels, s.mllp_port, bool(s.tls_cert and s.tls_key))
    if s.store not in ("sqlite", "postgresql"):
        raise ConfigError(f"store must be sqlite or postgresql, got {s.store!r}")
    if s.bus not in ("sqlite", "nats"):
        raise ConfigError(f"bus must be sqlite or nats, got {s.bus!r}")
    _scaleout_drivers(s)
    return s


def _scaleout_drivers(s: Settings) -> None:
    """The PostgreSQL and NATS drivers are the `scaleout` extra: name it when one is missing."""
    for chosen, setting, module in (
        (s.store == "postgresql", 'store = "postgresql"', "psycopg"),
        (s.bus == "nats", 'bus = "nats"', "nats"),
    ):
        if chosen and importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"{setting} needs the {module} driver, which is not installed: "
                "pip install 'isthmus[scaleout]' (with the lock as constraints)"
            )
    sftp = [f"destinations.{d.name}" for d in s.destinations.values() if d.kind == "sftp"] + [
        f"channels.{c.name}" for c in s.channels.values() if c.transport == "sftp"
    ]
    if sftp and importlib.util.find_spec("paramiko") is None:
        raise ConfigError(
            f"{sftp[0]} uses SFTP, whose client (paramiko) is not installed: "
            "pip install 'isthmus[sftp]'"
        )
