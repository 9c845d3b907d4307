"""[sla], [logging], [tracing] and [alerts]: what the hub watches of itself, and how it says so.

Each value is checked against its dataclass default's type; ISTHMUS_LOG_FORMAT,
ISTHMUS_LOG_LEVEL and ISTHMUS_TRACING_EXPORTER override the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from isthmus.config.values import ConfigError, subtable


@dataclass(frozen=True)
class SlaSettings:
    """[sla]: how long a charge may take from receipt to the ERP, and a work item may stay
    open (per queue overrides in `queue_age_hours`), before it counts as a breach."""

    charge_post_minutes: float = 60.0
    workitem_age_hours: float = 24.0
    queue_age_hours: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LogSettings:
    """[logging] format = "text" | "json" (one JSON object a line), level; or
    ISTHMUS_LOG_FORMAT / ISTHMUS_LOG_LEVEL."""

    format: Literal["text", "json"] = "text"
    level: str = ""  # empty: the command decides (WARNING, INFO for serve)


@dataclass(frozen=True)
class TracingSettings:
    """[tracing] exporter = "none" | "console" | "otlp" (the `otlp` extra installs it);
    endpoint for otlp; or ISTHMUS_TRACING_EXPORTER."""

    exporter: Literal["none", "console", "otlp"] = "none"
    endpoint: str = ""
    service_name: str = "isthmus"


@dataclass(frozen=True)
class AlertSettings:
    """[alerts]: rules evaluated every `interval_s`, transitions POSTed to `webhook_url`
    (empty: alerts are off). A rule fires once when its condition starts and resolves once
    when it clears."""

    webhook_url: str = ""
    interval_s: float = 30.0
    queue_age_minutes: float = 240.0  # oldest open work item of a queue
    error_rate: float = 0.05  # rejected messages + dead letters over messages, per window
    error_window_minutes: float = 15.0
    error_min_count: int = 1  # fewer errors than this in the window never fire
    sla_breach: bool = True
    circuit_open: bool = True
    timeout_s: float = 5.0
    retry_max_s: float = 300.0


def observe_from_tables(
    raw: dict[str, Any], env: dict[str, str]
) -> tuple[SlaSettings, LogSettings, TracingSettings, AlertSettings]:
    """[sla], [logging], [tracing] and [alerts], checked, under the environment's overrides."""
    sla_raw = dict(subtable(raw, "sla"))
    per_queue = sla_raw.pop("queue_age_hours", {})
    if not isinstance(per_queue, dict):
        raise ConfigError("[sla] queue_age_hours must be a table of queue = hours")
    try:
        sla = replace(
            SlaSettings(),
            **sla_raw,
            queue_age_hours={str(k): float(v) for k, v in per_queue.items()},
        )
        logs = replace(LogSettings(), **subtable(raw, "logging"))
        tracing = replace(TracingSettings(), **subtable(raw, "tracing"))
        alerts = replace(AlertSettings(), **subtable(raw, "alerts"))
    except TypeError as exc:
        raise ConfigError(
            f"invalid setting in [sla], [logging], [tracing] or [alerts]: {exc}"
        ) from exc
    for table, got in (("sla", sla), ("logging", logs), ("tracing", tracing), ("alerts", alerts)):
        for f in fields(got):
            want, value = getattr(type(got)(), f.name), getattr(got, f.name)
            kinds: tuple[type, ...] = (
                (int, float)
                if isinstance(want, (int, float)) and not isinstance(want, bool)
                else (type(want),)
            )
            if not isinstance(value, kinds) or isinstance(value, bool) != isinstance(want, bool):
                raise ConfigError(f"{table}.{f.name} must be {type(want).__name__}, got {value!r}")
    if env.get("ISTHMUS_LOG_FORMAT"):
        logs = replace(logs, format=env["ISTHMUS_LOG_FORMAT"])  # type: ignore[arg-type]
    if env.get("ISTHMUS_LOG_LEVEL"):
        logs = replace(logs, level=env["ISTHMUS_LOG_LEVEL"].upper())
    if env.get("ISTHMUS_TRACING_EXPORTER"):
        tracing = replace(tracing, exporter=env["ISTHMUS_TRACING_EXPORTER"])  # type: ignore[arg-type]
    if logs.level.upper() not in ("", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(
            f"logging.level must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {logs.level!r}"
        )
    if logs.format not in ("text", "json"):
        raise ConfigError(f"logging.format must be text or json, got {logs.format!r}")
    if tracing.exporter not in ("none", "console", "otlp"):
        raise ConfigError(
            f"tracing.exporter must be none, console or otlp, got {tracing.exporter!r}"
        )
    if alerts.interval_s <= 0 or alerts.error_window_minutes <= 0:
        raise ConfigError("alerts.interval_s and alerts.error_window_minutes must be > 0")
    return sla, logs, tracing, alerts
