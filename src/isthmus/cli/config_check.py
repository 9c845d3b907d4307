"""`isthmus config check [--json] [FILE]`: everything wrong with a configuration file, at once.

The hub refuses a bad file when it starts, one reason at a time (isthmus.config). Before a
change goes live an operator wants the whole list, and to know that the accounts the
mappings name exist in the ERP. This check reads the file (FILE, else --config or
ISTHMUS_CONFIG; the environment's overrides are not applied: the file is what is checked)
and reports, each with its dotted path:
- TOML that does not parse (line and column);
- unknown tables and keys, with the close key meant (config_keys.py);
- values of the wrong type, against the settings dataclasses the hub loads them into
  (an int where a string is written, a port as "2575", a string not in a closed set);
- mappings that are not well formed: a charge code without its revenue account, a
  department or facility mapped to nothing, a transaction type that is no posting kind
  (these two walks: config_findings.py);
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
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from isthmus.app import open_erp
from isthmus.cli.commands import NotFound, Result, UsageError
from isthmus.cli.config_findings import (
    ERROR,
    Finding,
    mapping_findings,
    quote,
    type_findings,
)
from isthmus.config import ConfigError, Settings, known_keys, load_settings
from isthmus.config_keys import refusals
from isthmus.ports.erp import ErpRejected, ErpUnavailable
from isthmus.recon.drift import find_drift

ERP_TIMEOUT_S: Final = 10.0  # a check waits this long at most for the ERP's master data


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
    found += type_findings(raw)
    found += mapping_findings(raw)
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
        return f"mappings.department_cost_center.{quote(dept)}"
    if first.startswith("charge code "):
        return f"mappings.charge_codes.{quote(first.removeprefix('charge code '))}.revenue_account"
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
