"""[reliability], [postgresql] and [nats]: how the hub retries, scales and guards its doors.

Retries and backoff, workers and bus partitions, message size and MLLP connection limits,
SQLite durability; and where the scale-out adapters connect. Environment variables
(ISTHMUS_WORKERS, ISTHMUS_PARTITIONS, ISTHMUS_SQLITE_SYNCHRONOUS, ISTHMUS_PG_*,
ISTHMUS_NATS_*) override the file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from isthmus.config.values import ConfigError


@dataclass(frozen=True)
class ReliabilitySettings:
    """[reliability]: retries and their backoff, workers and bus partitions, message size
    and MLLP connection limits, SQLite durability, the HL7 control-id reuse window, and the
    drop folder's quiet period."""

    max_attempts: int = 8
    backoff_base_s: float = 0.5
    backoff_max_s: float = 300.0
    workers: int = 2  # 0: this process only listens; above 0: it runs one worker loop
    partitions: int = 4  # bus partitions, site-wide: every process must agree
    max_message_bytes: int = 1_048_576
    # MLLP: an idle connection closes after idle_timeout_s; over either connection limit
    # the oldest idle connection (the address's own, or any) makes room for a new one
    idle_timeout_s: float = 60.0
    mllp_max_connections: int = 256
    mllp_max_connections_per_peer: int = 64
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # an HL7 identity (sender + MSH-10) reused with other content: AR 205 inside this many
    # hours after the first, a new message (counter restart, noted) after it
    control_id_reuse_window_hours: float = 24.0
    # the drop folder takes a file written in place once unchanged this long (and not open
    # for writing); a file renamed into inbound/ from an in-flight name is taken at once
    drop_quiet_period_s: float = 5.0


@dataclass(frozen=True)
class ScaleOutSettings:
    """Scale-out adapters. Empty schema/stream: derived from the data directory, so one
    PostgreSQL database and one NATS server can hold several independent hubs (and tests)."""

    pg_dsn: str = "postgresql://postgres@127.0.0.1:5432/isthmus"
    pg_schema: str = ""
    nats_servers: str = "nats://127.0.0.1:4222"
    nats_stream: str = ""


def scaleout_from_tables(
    pg: dict[str, Any], nats: dict[str, Any], env: dict[str, str]
) -> ScaleOutSettings:
    """[postgresql] and [nats], under ISTHMUS_PG_DSN, ISTHMUS_PG_SCHEMA, ISTHMUS_NATS_URL and
    ISTHMUS_NATS_STREAM."""
    return ScaleOutSettings(
        pg_dsn=str(env.get("ISTHMUS_PG_DSN") or pg.get("dsn", ScaleOutSettings.pg_dsn)),
        pg_schema=str(env.get("ISTHMUS_PG_SCHEMA") or pg.get("schema", "")),
        nats_servers=str(
            env.get("ISTHMUS_NATS_URL") or nats.get("servers", ScaleOutSettings.nats_servers)
        ),
        nats_stream=str(env.get("ISTHMUS_NATS_STREAM") or nats.get("stream", "")),
    )


def reliability_from_table(rel: dict[str, Any], env: dict[str, str]) -> ReliabilitySettings:
    """[reliability], checked, under ISTHMUS_PARTITIONS, ISTHMUS_WORKERS and
    ISTHMUS_SQLITE_SYNCHRONOUS. An unknown key is a TypeError (the loader names it)."""
    reliability = replace(ReliabilitySettings(), **rel)
    if reliability.control_id_reuse_window_hours < 0:
        raise ConfigError("reliability.control_id_reuse_window_hours must be 0 or more")
    if (
        min(reliability.mllp_max_connections, reliability.mllp_max_connections_per_peer) < 1
        or not reliability.idle_timeout_s > 0
    ):
        raise ConfigError(
            "reliability.mllp_max_connections, mllp_max_connections_per_peer "
            "and idle_timeout_s must be above 0"
        )
    quiet = reliability.drop_quiet_period_s
    if isinstance(quiet, bool) or not isinstance(quiet, int | float) or not 0 <= quiet < 1e6:
        raise ConfigError("reliability.drop_quiet_period_s must be seconds, 0 or more")
    if env.get("ISTHMUS_PARTITIONS"):
        reliability = replace(reliability, partitions=int(env["ISTHMUS_PARTITIONS"]))
    if env.get("ISTHMUS_WORKERS"):
        reliability = replace(reliability, workers=int(env["ISTHMUS_WORKERS"]))
    sync = env.get("ISTHMUS_SQLITE_SYNCHRONOUS", "").upper()
    if sync in ("FULL", "NORMAL"):
        reliability = replace(reliability, sqlite_synchronous=sync)  # type: ignore[arg-type]
    elif sync:
        raise ConfigError("ISTHMUS_SQLITE_SYNCHRONOUS must be FULL or NORMAL")
    return reliability
