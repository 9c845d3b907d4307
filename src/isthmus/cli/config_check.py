"""`isthmus config check [--json] [FILE]`: everything wrong with a configuration file, at once.

The hub refuses a bad file when it starts, one reason at a time (config.py). Before a
change goes live an operator wants the whole list, and to know that the accounts the
mappings name exist in the ERP. This check reads the file (FILE, else --config or
ISTHMUS_CONFIG; the environment's overrides are not applied: the file is what is checked)
and reports, each with its dotted path:
- TOML that does not parse (line and column);
- unknown tables and keys, with the close key meant (config_keys.py);
- values of the wrong type, against the settings dataclasses the hub loads them into
  (an int where a string is written, a port as "2575", a string not in a closed set);
- mappings that are not well formed: a charge code without its revenue account, a
  department or facility mapped to nothing, a transaction type that is no posting kind;
- whatever else the hub's own loader refuses (config.load_settings);
- with an ERP that has an API ([erp] kind tryton or rest) and answers: every mapped
  revenue account, the A/R account and every mapped cost center exist in its master data
  (recon/drift.py, what `isthmus erp drift` finds). An ERP that does not answer is reported
  as "not checked: ERP unreachable" with the reason, and does not fail the check.

Exit codes as the CLI's others (cli/main.py): 0 when the file is good (notes do not
count), 4 when the check finds a problem, 3 when the file does not exist, 2 for usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, Literal

from isthmus.app import open_erp
from isthmus.cli.commands import NotFound, Result, UsageError
from isthmus.config import (
    CHARTS,
    TRANSACTION_KINDS,
    ChannelSettings,
    ConfigError,
    Settings,
    known_keys,
    load_settings,
)
from isthmus.config_keys import LEAF, refusals
from isthmus.ports.erp import ErpRejected, ErpUnavailable
from isthmus.recon.drift import find_drift

ERROR: Final = "error"
NOTE: Final = "note"
ERP_TIMEOUT_S: Final = 10.0  # a check waits this long at most for the ERP's master data


@dataclass(frozen=True)
class Finding:
    """One problem (or note) of a configuration file, at its dotted key path."""

    path: str  # dotted, as in config_keys ("" for the whole file)
    problem: str
    suggestion: str = ""  # the dotted path meant, for an unknown key
    severity: str = ERROR  # error (fails the check) | note


def add_parsers(add: Any, common: Any) -> None:
    """`config check` as a sub-command of its own, so that `--json` may come before FILE."""
    c = add(
        "config",
        "check a configuration file: types, unknown keys, mappings, and the "
        "mapped accounts against the ERP",
    )
    actions = c.add_subparsers(dest="action", required=True)
    chk = actions.add_parser("check", help="validate FILE; exit 4 when it has a problem")
    common(chk)
    chk.add_argument(
        "file",
        nargs="?",
        type=Path,
        metavar="FILE",
        help="the TOML file (default: --config or ISTHMUS_CONFIG)",
    )
    chk.add_argument("--token", help="taken as every command takes it; a check needs none")


def dispatch(args: argparse.Namespace) -> Result:
    """`isthmus config check`: check the file given (FILE, --config or ISTHMUS_CONFIG); exit
    4 when it has an error."""
    path = (
        args.file
        or args.config
        or (Path(os.environ["ISTHMUS_CONFIG"]) if os.environ.get("ISTHMUS_CONFIG") else None)
    )
    if path is None:
        raise UsageError("config check needs a FILE (or --config, or ISTHMUS_CONFIG)")
    report = check(path)
    failed = any(f["severity"] == ERROR for f in report["findings"])
    return report, render, 4 if failed else 0


def check(path: Path) -> dict[str, Any]:
    """The report of one file: {"file", "ok", "findings": [...], "erp": {...}}."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise NotFound(f"config file {path} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        return _report(path, [Finding("", f"cannot be read: {exc}")], _skipped("unread"))
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return _report(path, [Finding("", f"not valid TOML: {exc}")], _skipped("unread"))
    found = [
        Finding(
            r.path,
            str(r).replace(f" [{r.path}]" if r.is_table else f" {r.path}", "", 1),
            r.suggestion,
        )
        for r in refusals(raw, known_keys())
    ]
    found += _types(raw)
    found += _mappings(raw)
    settings: Settings | None = None
    try:
        settings = load_settings(path, data_dir=Path("."), env={})
    except ConfigError as exc:
        if not any(f.severity == ERROR for f in found):  # else it is one of those again
            found.append(Finding("", str(exc).removeprefix(f"config file {path}: ")))
    if settings is None or any(f.severity == ERROR for f in found):
        return _report(path, found, _skipped("the file has errors"))
    erp, drift = _erp(settings)
    return _report(path, found + drift, erp)


def _report(path: Path, found: list[Finding], erp: dict[str, Any]) -> dict[str, Any]:
    rows = [dataclasses.asdict(f) for f in found]
    return {
        "file": str(path),
        "ok": not any(f.severity == ERROR for f in found),
        "findings": rows,
        "erp": erp,
    }


def _skipped(why: str) -> dict[str, Any]:
    return {"checked": False, "status": f"not checked: {why}"}


# --- types ---------------------------------------------------------------------------------


def _layout() -> dict[str, Any]:
    """Each table of the file and what its values are read into: a settings dataclass, or
    {key: type} for the tables config.py assembles itself. [ownership], [allowlist],
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


def _types(raw: dict[str, Any]) -> list[Finding]:
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
            for x in _fits(v, item, f"{path}.{_quote(str(k))}", skip=extra)
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


def _quote(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else f'"{key}"'


# --- mappings ------------------------------------------------------------------------------


def _mappings(raw: dict[str, Any]) -> list[Finding]:  # noqa: C901 - one check per mapping table
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
                where = f"mappings.{table}.{_quote(str(code))}"
                if not str(code).strip():
                    out.append(Finding(where, "an empty code maps nothing"))
                if isinstance(target, str) and not target.strip():
                    out.append(Finding(where, "maps to nothing: name the ERP code"))
    codes = maps.get("charge_codes")
    if isinstance(codes, dict):
        for code, spec in codes.items():
            where = f"mappings.charge_codes.{_quote(str(code))}"
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
                        f"mappings.transaction_types.{_quote(str(code))}",
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


# --- the ERP -------------------------------------------------------------------------------


def _erp(settings: Settings) -> tuple[dict[str, Any], list[Finding]]:
    """The ERP part of the report and the drift found; not checked when it has no API or
    does not answer."""
    if settings.erp.kind not in ("tryton", "rest"):
        return _skipped(f"[erp] kind is {settings.erp.kind!r}: no ERP API to ask"), []
    quick = replace(
        settings,
        erp=replace(
            settings.erp, timeout_s=min(settings.erp.timeout_s or ERP_TIMEOUT_S, ERP_TIMEOUT_S)
        ),
    )
    try:
        erp = open_erp(quick)
    except ConfigError as exc:
        return _skipped("the ERP cannot be opened"), [Finding("erp", str(exc))]
    try:
        md = erp.master_data()
    except ErpUnavailable as exc:
        return {
            "checked": False,
            "status": "not checked: ERP unreachable",
            "reason": str(exc)[:300],
        }, []
    except ErpRejected as exc:
        return {
            "checked": False,
            "status": "not checked: the ERP refused the master data request",
            "reason": str(exc)[:300],
        }, []
    finally:
        erp.close()
    drift = find_drift(settings, md)
    found = [
        Finding(
            _drift_path(d.mapped_from, d.kind),
            f"{'account' if d.kind == 'account' else 'cost center'} {d.code} is not "
            f"in the ERP (mapped from {d.mapped_from})",
        )
        for d in drift
    ]
    return {
        "checked": True,
        "status": "checked",
        "accounts": len(md.accounts),
        "cost_centers": len(md.cost_centers),
        "missing": len(drift),
    }, found


def _drift_path(source: str, kind: str) -> str:
    """The config path of the first mapping a drift comes from (recon/drift.py names them
    "department RAD", "charge code 71045", "posting.ar_account")."""
    first = source.split(", ", maxsplit=1)[0]
    if kind == "cost_center":
        dept = first.removeprefix("department ")
        return f"mappings.department_cost_center.{_quote(dept)}"
    if first.startswith("charge code "):
        return f"mappings.charge_codes.{_quote(first.removeprefix('charge code '))}.revenue_account"
    return first


# --- text ----------------------------------------------------------------------------------


def render(d: dict[str, Any]) -> str:
    """The check's report as text: each problem and note by key path, then the ERP accounts'
    status."""
    errors = [f for f in d["findings"] if f["severity"] == ERROR]
    notes = [f for f in d["findings"] if f["severity"] != ERROR]
    head = (
        f"{d['file']}: ok"
        if not errors
        else f"{d['file']}: {len(errors)} problem{'s' if len(errors) != 1 else ''}"
    )
    lines = [head]
    for f in errors + notes:
        tag = "" if f["severity"] == ERROR else "note: "
        where = f"{f['path']}: " if f["path"] else ""
        lines.append(f"  {tag}{where}{f['problem']}")
    erp = d["erp"]
    detail = (
        f" ({erp['accounts']} accounts, {erp['cost_centers']} cost centers, "
        f"{erp['missing']} mapped code(s) missing)"
        if erp.get("checked")
        else f" ({erp['reason']})"
        if erp.get("reason")
        else ""
    )
    lines.append(f"ERP accounts: {erp['status']}{detail}")
    return "\n".join(lines)


__all__ = ["Finding", "add_parsers", "check", "dispatch", "render"]
