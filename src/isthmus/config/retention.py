"""[retention]: how long stored message bodies (patient data) are kept, site-wide and per
channel (flows/retention.py purges them; `isthmus purge`, and daily in `serve`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from isthmus.config.values import ConfigError, subtable


@dataclass(frozen=True)
class RetentionRule:
    """[retention.channels.<name>]: one channel's limits; a key left out takes [retention]'s."""

    raw_days: int | None = None
    ignored_days: int | None = None


@dataclass(frozen=True)
class RetentionSettings:
    """[retention]: how long stored message bodies (patient data) are kept, in days.

    After `raw_days` a message's body is blanked (`isthmus purge`, and daily in `serve`);
    an ignored message's after `ignored_days` (0: as `raw_days`). 0 keeps bodies forever
    (the default). The message row, its lineage, the journal and the audit trail stay.
    The `fhir` channel (resources the FHIR API serves) follows only its own rule."""

    raw_days: int = 0
    ignored_days: int = 0
    channels: dict[str, RetentionRule] = field(default_factory=dict)


def _days(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 36_500:
        raise ConfigError(
            f"{name} must be a whole number of days from 0 to 36500 "
            f"(0 keeps forever), got {value!r}"
        )
    return value


def retention_from_table(raw: dict[str, Any]) -> RetentionSettings:
    """The [retention] table and its [retention.channels.<name>] rules, checked."""
    channels: dict[str, RetentionRule] = {}
    for name, spec in subtable(raw, "channels").items():
        if not isinstance(spec, dict):
            raise ConfigError(f"[retention.channels.{name}] must be a table")
        channels[str(name)] = RetentionRule(
            **{
                k: _days(spec[k], f"retention.channels.{name}.{k}")
                for k in ("raw_days", "ignored_days")
                if k in spec
            }
        )
    return RetentionSettings(
        raw_days=_days(raw.get("raw_days", 0), "retention.raw_days"),
        ignored_days=_days(raw.get("ignored_days", 0), "retention.ignored_days"),
        channels=channels,
    )
