"""What `isthmus config check` finds wrong with a file's values, before the loader runs.

The loader (isthmus.config) stops at a file's first problem; the check (config_check.py)
wants them all. Two walks of the raw TOML tables, each problem a Finding at its dotted path:
- types: each value against the settings dataclass it is read into (an int where a string is
  written, a port as "2575", a string not in a closed set);
- mappings: a charge code without its revenue account, a department or facility mapped to
  nothing, a transaction type that is no posting kind, no chart at all (a note).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, Literal

from isthmus.config import CHARTS, TRANSACTION_KINDS, ChannelSettings, Settings, known_keys
from isthmus.config_keys import LEAF

ERROR: Final = "error"
NOTE: Final = "note"


@dataclass(frozen=True)
class Finding:
    """One problem (or note) of a configuration file, at its dotted key path."""

    path: str  # dotted, as in config_keys ("" for the whole file)
    problem: str
    suggestion: str = ""  # the dotted path meant, for an unknown key
    severity: str = ERROR  # error (fails the check) | note


# --- types ---------------------------------------------------------------------------------


def _layout() -> dict[str, Any]:
    """Each table of the file and what its values are read into: a settings dataclass, or
    {key: type} for the tables the loader assembles itself. [ownership], [allowlist],
    [oidc] and [supply] are parsed (and refused) by their own modules."""
    hints = typing.get_type_hints(Settings)
    tables: dict[str, Any] = {
        f.name: hints[f.name]
        for f in dataclasses.fields(Settings)
        if dataclasses.is_dataclass(hints[f.name])
    }
    hub = known_keys()["hub"]
    assert isinstance(hub, dict)
    tables["hub"] = {k: hints[k] for k, node in hub.items() if node is LEAF and k in hints}
    tables["postgresql"] = {"dsn": str, "schema": str}
    tables["nats"] = {"servers": str, "stream": str}
    tables["tls"] = {"client_ca": Path}
    tables["api"] = {"trusted_proxies": list[str]}
    tables["channels"] = dict[str, ChannelSettings]
    return tables


def type_findings(raw: dict[str, Any]) -> list[Finding]:
    """Each value of the file that does not fit the type it is read into."""
    out: list[Finding] = []
    for name, want in _layout().items():
        if name not in raw:
            continue
        if isinstance(want, dict):
            if not isinstance(raw[name], dict):
                out.append(Finding(name, "must be a table"))
                continue
            for key, hint in want.items():
                if key in raw[name]:
                    out += _fits(raw[name][key], hint, f"{name}.{key}")
        else:
            out += _fits(raw[name], want, name)
    return out


def _fits(value: Any, hint: Any, path: str, *, skip: tuple[str, ...] = ()) -> list[Finding]:
    """What is wrong with `value` as a `hint` (empty when it fits)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return []
    if origin is Literal:
        return (
            []
            if value in args
            else [_wrong(path, "one of " + ", ".join(repr(a) for a in args), value)]
        )
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        results = [_fits(value, a, path) for a in options]
        return [] if any(not r for r in results) else results[0]
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            return [_wrong(path, "a table", value)]
        hints = typing.get_type_hints(hint)
        out: list[Finding] = []
        for f in dataclasses.fields(hint):
            if f.name in skip:
                continue
            if f.name in value:  # what is required is the loader's to say (_mappings)
                out += _fits(value[f.name], hints[f.name], f"{path}.{f.name}")
        return out
    if origin is dict:
        if not isinstance(value, dict):
            return [_wrong(path, "a table", value)]
        item = args[1] if len(args) == 2 else Any
        extra = ("name",) if item is ChannelSettings else ()
        return [
            x
            for k, v in value.items()
            for x in _fits(v, item, f"{path}.{quote(str(k))}", skip=extra)
        ]
    if origin in (list, tuple, frozenset, set):
        if not isinstance(value, list):
            return [_wrong(path, "a list", value)]
        item = args[0] if args else Any
        return [x for i, v in enumerate(value) for x in _fits(v, item, f"{path}[{i}]")]
    return _scalar(value, hint, path)


def _scalar(value: Any, hint: Any, path: str) -> list[Finding]:
    if hint is bool:
        ok = isinstance(value, bool)
        want = "true or false"
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        want = "a whole number"
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        want = "a number"
    elif hint in (str, Path):
        ok = isinstance(value, str)
        want = "a string" if hint is str else "a path (a string)"
    elif hint is Decimal:
        ok = isinstance(value, str | int) and not isinstance(value, bool) and _decimal(value)
        want = 'a decimal string such as "45.00"'
    elif hint is date:
        ok = isinstance(value, date) and not isinstance(value, datetime)
        want = "a date (YYYY-MM-DD, unquoted)"
    else:
        return []  # a type the loader parses itself (addresses, networks)
    return [] if ok else [_wrong(path, want, value)]


def _decimal(value: str | int) -> bool:
    try:
        return Decimal(str(value)).is_finite()
    except InvalidOperation:
        return False


def _wrong(path: str, want: str, value: Any) -> Finding:
    shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    kind = {
        dict: "table",
        list: "list",
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
    }.get(type(value), type(value).__name__)
    return Finding(path, f"must be {want}, got {kind} {shown[:60]}")


def quote(key: str) -> str:
    """A key as a dotted path shows it: quoted unless a bare TOML key."""
    return key if key.replace("_", "").replace("-", "").isalnum() else f'"{key}"'


# --- mappings ------------------------------------------------------------------------------


def mapping_findings(raw: dict[str, Any]) -> list[Finding]:  # noqa: C901 - one check per mapping table
    """What is not well formed in [mappings] (the loader would refuse or ignore it)."""
    maps = raw.get("mappings", {})
    if not isinstance(maps, dict):
        return []  # the type check names a table that is not one
    out: list[Finding] = []
    include = maps.get("include", "")
    if include and include not in CHARTS:
        out.append(
            Finding(
                "mappings.include",
                f"must be one of {', '.join(CHARTS)} (or left out), got {include!r}",
            )
        )
    for table in ("department_cost_center", "facility_company"):
        rows = maps.get(table)
        if isinstance(rows, dict):
            for code, target in rows.items():
                where = f"mappings.{table}.{quote(str(code))}"
                if not str(code).strip():
                    out.append(Finding(where, "an empty code maps nothing"))
                if isinstance(target, str) and not target.strip():
                    out.append(Finding(where, "maps to nothing: name the ERP code"))
    codes = maps.get("charge_codes")
    if isinstance(codes, dict):
        for code, spec in codes.items():
            where = f"mappings.charge_codes.{quote(str(code))}"
            if not isinstance(spec, dict):
                continue  # the type check names it
            if "revenue_account" not in spec:
                out.append(Finding(f"{where}.revenue_account", "is required"))
            elif isinstance(spec["revenue_account"], str) and not spec["revenue_account"].strip():
                out.append(
                    Finding(f"{where}.revenue_account", "is empty: name the revenue account")
                )
    kinds = maps.get("transaction_types")
    if isinstance(kinds, dict):
        for code, kind in kinds.items():
            if kind not in TRANSACTION_KINDS:
                out.append(
                    Finding(
                        f"mappings.transaction_types.{quote(str(code))}",
                        f"must be one of {', '.join(TRANSACTION_KINDS)}, got {kind!r}",
                    )
                )
    if not include and not codes:
        out.append(
            Finding(
                "mappings.charge_codes",
                "no charge code is mapped: every charge "
                "waits behind a mapping work item until it is",
                severity=NOTE,
            )
        )
    return out
