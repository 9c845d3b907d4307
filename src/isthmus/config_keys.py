"""The tables and keys a configuration file may hold, and the one walk that refuses the rest.

A TOML file is read into plain tables before it becomes typed settings. Without this walk a
mistyped name (`mllp_prot`, `[mapping.charge_codes]`, `http_prt`) is never read, so the hub
starts on the default in silence: the MLLP port the EHR does not send to, or the demo chart
of accounts. DESIGN.md asks for the opposite default: unknown configuration keys are
refused, each with its dotted path and, when one is close, the key that was meant.

The schema is derived from the settings dataclasses of `isthmus.config` (`keys_of`): a field
is a key, a dataclass-typed field is a sub-table, a `dict[str, <dataclass>]` field is a table
of entries the site names (charge codes, pay codes), each following that dataclass, and any
other dict is a table of site-named plain values (department -> cost center). The loader
(`isthmus.config.known_keys`) assembles the file's layout from them where it differs (the
`[hub]` table holds the top-level settings). Adding a field to a settings dataclass adds its
key here.

Pure: no I/O; the caller raises.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


class _Open:
    """A table whose keys the site chooses and whose values are plain (checked by its parser)."""

    def __repr__(self) -> str:
        return "OPEN"


OPEN = _Open()
LEAF = None  # a plain value: string, number, boolean, date, list or inline table as a value


@dataclass(frozen=True)
class Entries:
    """A table of entries the site names (`[channels.<name>]`), each one a table of `keys`."""

    keys: Schema


Node = typing.Union["Schema", Entries, _Open, None]
Schema = Mapping[str, Node]

_BARE = re.compile(r"[A-Za-z0-9_-]+")  # a TOML bare key; others are quoted in a path


def keys_of(cls: type, *, skip: Iterable[str] = ()) -> dict[str, Node]:
    """The keys of a settings dataclass, nested tables included (see the module docstring)."""
    hints = typing.get_type_hints(cls)
    left_out = set(skip)
    return {f.name: _node(hints[f.name]) for f in dataclasses.fields(cls) if f.name not in left_out}


def _node(tp: Any) -> Node:
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return keys_of(tp)
    if typing.get_origin(tp) is dict:
        value = typing.get_args(tp)[1]
        if isinstance(value, type) and dataclasses.is_dataclass(value):
            return Entries(keys_of(value))
        return OPEN
    return LEAF


@dataclass(frozen=True)
class Refusal:
    """One unknown table or key: its dotted path, and the key (or tables) meant when close."""

    path: str
    is_table: bool
    suggestion: str = ""  # the dotted path of the close key, "" when none is close
    homes: tuple[str, ...] = ()  # the tables that hold a key of that name

    def __str__(self) -> str:
        what = f"unknown table [{self.path}]" if self.is_table else f"unknown key {self.path}"
        if self.suggestion:
            meant = f"[{self.suggestion}]" if self.is_table else self.suggestion
            return f"{what}: did you mean {meant}?"
        return f"{what}: it belongs in {' or '.join(self.homes)}" if self.homes else what


def unknown(raw: Mapping[str, Any], schema: Schema, path: str = "") -> list[str]:
    """One refusal per key of `raw` the schema does not know, with its path and a guess."""
    return [str(r) for r in refusals(raw, schema, path)]


def refusals(raw: Mapping[str, Any], schema: Schema, path: str = "") -> list[Refusal]:
    """`unknown` as data (`isthmus config check --json` shows the path and guess apart)."""
    out: list[Refusal] = []
    for key, value in raw.items():
        where = f"{path}.{_quote(key)}" if path else _quote(key)
        if key not in schema:
            out.append(
                _refusal(where, key, schema, is_table=isinstance(value, Mapping), parent=path)
            )
            continue
        node = schema[key]
        if not isinstance(value, Mapping):
            continue  # a wrong type is the table's parser's to name
        if isinstance(node, Entries):
            for name, entry in value.items():
                if isinstance(entry, Mapping):
                    out += refusals(entry, node.keys, f"{where}.{_quote(name)}")
        elif isinstance(node, Mapping):
            out += refusals(value, node, where)
    return out


def _quote(key: str) -> str:
    return key if _BARE.fullmatch(key) else json.dumps(key)


def _refusal(where: str, key: str, schema: Schema, *, is_table: bool, parent: str) -> Refusal:
    prefix = f"{parent}." if parent else ""
    close = difflib.get_close_matches(key, [str(k) for k in schema], n=1, cutoff=0.6)
    if close:
        return Refusal(where, is_table, prefix + close[0])
    homes = tuple(
        f"[{prefix}{name}]"
        for name, node in schema.items()
        if isinstance(node, Mapping) and key in node
    )
    return Refusal(where, is_table, homes=homes)
