"""The one error of a bad configuration, and the checks every table's parser shares.

Each table's module (channels.py, erp.py, ...) refuses a bad value with a ConfigError that
names its dotted key; the shared shapes live here so that a sub-table that is not a table,
a map whose value is not a string, or an amount that is not a decimal reads the same in
every table.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from isthmus.errors import ConfigurationError


class ConfigError(ConfigurationError, ValueError):
    """The configuration is invalid; the operator must fix the file or variable named."""


def subtable(raw: dict[str, Any], name: str) -> dict[str, Any]:
    """`raw[name]`, which must be a table when present (empty when absent)."""
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table")
    return value


def str_map(raw: dict[str, Any], name: str) -> dict[str, str]:
    """A table of site-named strings (department -> cost center); `name` is its path."""
    out: dict[str, str] = {}
    for k, v in raw.items():
        if not isinstance(v, str):
            raise ConfigError(f"{name}.{k} must be a string, got {type(v).__name__}")
        out[str(k)] = v
    return out


def non_negative_decimal(value: object, name: str) -> Decimal:
    """An amount written as a decimal string (or a whole number), 0 or more."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigError(f'{name} must be a decimal string such as "45.00"')
    try:
        out = Decimal(str(value))
    except InvalidOperation as exc:
        raise ConfigError(f"{name} {value!r} is not a decimal") from exc
    if not out.is_finite() or out < 0:
        raise ConfigError(f"{name} {value!r} must be 0 or more")
    return out
