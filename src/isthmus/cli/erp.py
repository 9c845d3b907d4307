"""`isthmus erp ...` and `isthmus recon erp`: the ERP connector's commands.

- `erp setup-tryton --database NAME [--tryton-dir DIR]` builds a local Tryton database
  (company, chart with the hub's account codes, fiscal year, cost centers, journal) and
  writes `erp-tryton.toml`, the `[erp]` table to put in the hub's config.
- `erp master-data` lists the ERP's accounts, cost centers and parties, and the mapped
  cost centers and revenue accounts the ERP does not have (drift); exit 4 on drift.
- `erp drift` pulls the master data now, as `serve` does every [erp] master_data_every_s:
  each drift gets one open `erp-mapping` work item, cleared drift resolves its item; it
  prints the drift (exit 4 while there is any).
- `recon erp [--period YYYY-MM]` compares the hub ledger with the ERP's posted balances;
  exit 4 when a variance is not zero.
An ERP that cannot be reached (or refuses) is exit 1 with the reason on stderr, `isthmus:
ERP: ...` (cli/main.py), not a traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from isthmus.app import Hub, open_erp
from isthmus.cli.commands import Result, UsageError, _table
from isthmus.cli.deposits import recon_deposits
from isthmus.config import Settings
from isthmus.recon.drift import DRIFT_QUEUE, find_drift

COMMANDS = ("erp", "recon")


def add_parsers(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add the `erp` and `recon` commands to the parser."""
    e = add("erp", "the ERP connector: build a local Tryton, master data and drift")
    e.add_argument("action", choices=["setup-tryton", "master-data", "drift"])
    e.add_argument("--database", help="Tryton database to create (setup-tryton)")
    e.add_argument(
        "--tryton-dir",
        type=Path,
        help="where Tryton keeps its databases (default: DATA_DIR/tryton)",
    )
    e.add_argument(
        "--dsn",
        help="Tryton's database server: sqlite:// (the default) or postgresql://user@host:port/",
    )
    r = add("recon", "reconciliation reports")
    r.add_argument("action", choices=["erp", "deposits"])
    r.add_argument("--period", help="YYYY-MM (default: every period)")
    r.add_argument("--as-of", help="deposits: age unmatched items as of YYYY-MM-DD (today)")
    r.add_argument(
        "--limit-days",
        type=int,
        help="deposits: exit 4 when something unmatched "
        "is older (default: [settlement] match_limit_days)",
    )


def dispatch(settings: Settings, args: argparse.Namespace) -> Result:
    """`isthmus erp setup-tryton|master-data|drift` and `isthmus recon erp|deposits`."""
    if args.cmd == "recon" and args.action == "deposits":
        return recon_deposits(settings, args)
    if args.cmd == "erp" and args.action == "setup-tryton":
        return _setup(settings, args)
    if args.cmd == "erp" and args.action == "drift":
        return _drift(settings)
    erp = open_erp(settings)
    try:
        if args.cmd == "erp":
            return _master_data(settings, erp.master_data())
        hub = Hub.open(settings)
        try:
            from isthmus.recon.erp import reconcile  # noqa: PLC0415

            d = reconcile(hub.store, erp, args.period)
        finally:
            hub.close()
        return d, render_recon, 0 if d["zero_variance"] else 4
    finally:
        erp.close()


def _setup(settings: Settings, args: argparse.Namespace) -> Result:
    from isthmus.connectors.erp_tryton_server import (  # noqa: PLC0415 - heavy, setup only
        TrytonSite,
        default_bin_dir,
    )
    from isthmus.connectors.erp_tryton_setup import build_database  # noqa: PLC0415 - heavy, setup only

    if not args.database:
        raise UsageError("erp setup-tryton needs --database NAME")
    uri = args.dsn or "sqlite://"
    if not uri.startswith(("sqlite:", "postgresql:")):
        raise UsageError(
            "--dsn must be sqlite:// or postgresql://user@host:port/ (the "
            "server; the database is --database)"
        )
    site_dir = (args.tryton_dir or settings.data_dir / "tryton").resolve()
    site = TrytonSite(site_dir, default_bin_dir(), uri=uri)
    if not (site.bin_dir / "trytond-admin").exists():
        raise UsageError(
            f"trytond-admin not found in {site.bin_dir}: install trytond, "
            "trytond-account and trytond-analytic-account"
        )
    centers = {
        cc: f"Cost center {cc} ({dept})"
        for dept, cc in sorted(settings.mappings.department_cost_center.items(), reverse=True)
    }
    seconds = build_database(
        site, args.database, cost_centers=centers, progress=lambda m: print(f"  {m}", flush=True)
    )
    mapping = site_dir / "erp-tryton.toml"
    mapping.write_text(
        "# [erp] table for the hub's config: start Tryton with\n"
        f"#   TRYTONPASSFILE={site_dir}/admin.pass {site.bin_dir}/trytond "
        f"-c {site_dir}/trytond.conf -d {args.database}\n"
        f'[erp]\nkind = "tryton"\nurl = "http://127.0.0.1:8000"\n'
        f'database = "{args.database}"\nuser = "admin"\n'
        f'password_file = "{site_dir}/admin.pass"\njournal = "HUB"\n'
    )
    (site_dir / "trytond.conf").write_text(
        f"[database]\nuri = {uri}\npath = {site_dir}\n[web]\nlisten = 127.0.0.1:8000\n"
    )
    where = (
        (site_dir / f"{args.database}.sqlite")
        if site.sqlite
        else f"{uri.split('@')[-1]} (PostgreSQL)"
    )
    d = {
        "database": args.database,
        "path": str(where),
        "seconds": round(seconds, 1),
        "config": str(mapping),
    }
    return (
        d,
        lambda x: (
            f"Tryton database {x['database']} built in {x['seconds']} s at "
            f"{x['path']}\n[erp] settings written to {x['config']}"
        ),
        0,
    )


def _master_data(settings: Settings, md: Any) -> Result:
    drift = find_drift(settings, md)
    d = {
        "accounts": md.accounts,
        "cost_centers": md.cost_centers,
        "parties": md.parties,
        "drift": {
            "cost_centers_missing": sorted(x.code for x in drift if x.kind == "cost_center"),
            "accounts_missing": sorted(x.code for x in drift if x.kind == "account"),
        },
    }

    def text(x: dict[str, Any]) -> str:
        rows = [["account", k, v] for k, v in sorted(x["accounts"].items())]
        rows += [["cost center", k, v] for k, v in sorted(x["cost_centers"].items())]
        rows += [["party", k, v] for k, v in sorted(x["parties"].items())]
        drift = x["drift"]
        tail = (
            "no drift: every mapped account and cost center exists in the ERP"
            if not any(drift.values())
            else f"DRIFT: accounts missing {drift['accounts_missing']}, cost centers "
            f"missing {drift['cost_centers_missing']}"
        )
        return _table(rows, ["kind", "code", "name"]) + "\n" + tail

    return d, text, 0 if not drift else 4


def _drift(settings: Settings) -> Result:
    hub = Hub.open(settings)
    try:
        report = hub.pull_master_data()
    finally:
        hub.close()
    d = {
        "drift": [
            {"kind": x.kind, "code": x.code, "mapped_from": x.mapped_from} for x in report.drift
        ],
        "work_items_opened": list(report.opened),
        "work_items_closed": list(report.closed),
        "queue": DRIFT_QUEUE,
    }

    def text(x: dict[str, Any]) -> str:
        rows = [[r["kind"].replace("_", " "), r["code"], r["mapped_from"]] for r in x["drift"]]
        out = [_table(rows, ["missing in ERP", "code", "mapped from"])] if rows else []
        out.append(
            f"DRIFT: {len(rows)} mapping(s) point at what the ERP lacks; work items "
            f"in queue {x['queue']} ({len(x['work_items_opened'])} new)"
            if rows
            else "no drift: every mapped account and cost center exists in the ERP"
        )
        if x["work_items_closed"]:
            out.append(f"cleared: {', '.join(x['work_items_closed'])}")
        return "\n".join(out)

    return d, text, 4 if report.drift else 0


def render_recon(d: dict[str, Any]) -> str:
    """The ERP reconciliation as text: hub against ERP balance per account and cost center
    (variance, in transit), then each batch's state in the outbox and the ERP."""
    rows = [
        [r["account"], r["cost_center"] or "-", r["hub"], r["erp"], r["variance"], r["in_transit"]]
        for r in d["rows"]
    ]
    out = [
        f"period {d['period']}",
        _table(rows, ["account", "cost center", "hub", "erp", "variance", "in transit"]),
    ]
    b = [
        [
            c["batch_id"],
            c["policy"],
            c["lines"],
            c["debit"],
            c["credit"],
            c["outbox"],
            f"{c['moves_in_erp']}/{c['moves']}",
            c["state"],
        ]
        for c in d["batches"]
    ]
    out += [
        "",
        _table(b, ["batch", "policy", "lines", "debit", "credit", "outbox", "moves", "erp"]),
    ]
    out.append(
        "zero variance"
        if d["zero_variance"]
        else f"VARIANCE: {d['absolute_variance']} (absolute, all keys)"
    )
    return "\n".join(out)
