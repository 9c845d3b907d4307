"""Build a local Tryton database for the hub (demo and tests), and copy or drop one.

`build_database` activates the modules with `trytond-admin` (about 40 s on SQLite), then
starts a server and configures the books over JSON-RPC, as any client would:
USD, one company, account types and the chart with the hub's codes (1200 Patient A/R,
4100-4600 revenue, 1000 cash clearing, 2100 refunds payable, the 835 remittance accounts,
1020 card clearing, 1050 bank, 6100 card fees, the labor accounts 2300 and 5100-5130,
the supply accounts 1300, 2000, 2050, 6200 and 6210),
fiscal years with monthly periods (2026 through this year), a `HUB` journal, one analytic
account per cost center (CC-4100...), and a few parties (payers, suppliers).

Facts from a trial with trytond 8.2: `trytond-admin` waits at a prompt on a new database
unless given `--email`. The server it configures through is `erp_tryton_server`'s.

SQLite (the default) or PostgreSQL (`TrytonSite.uri = "postgresql://user@host:port/"`;
trytond's backend uses psycopg 3 and psycopg_pool). Building takes ~46 s on SQLite and
~94 s on PostgreSQL, so tests build one template and copy it (`copy_database`: a file copy
that drops stale -wal/-shm files, or `CREATE DATABASE ... TEMPLATE`). On SQLite Tryton
accepts an unbalanced move; PostgreSQL's deferred balance check refuses it.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from isthmus.connectors.erp_rpc import TrytonRpc
from isthmus.connectors.erp_tryton import period_bounds
from isthmus.connectors.erp_tryton_server import TrytonSite, free_port, running

MODULES = ("account", "analytic_account")
CHART = {
    "1000": ("Cash clearing", "asset"),
    "1010": ("Cash clearing (remittances)", "asset"),
    "1020": ("Card clearing", "asset"),
    "1050": ("Bank", "asset"),
    "1200": ("Patient A/R", "asset"),
    "1210": ("Patient responsibility A/R", "asset"),
    "2100": ("Refunds payable", "liability"),
    "6100": ("Card processing fees", "expense"),
    "4100": ("Revenue - Imaging", "revenue"),
    "4200": ("Revenue - Laboratory", "revenue"),
    "4300": ("Revenue - Emergency", "revenue"),
    "4400": ("Revenue - Pharmacy", "revenue"),
    "4500": ("Revenue - Surgery", "revenue"),
    "4600": ("Revenue - Cardiology", "revenue"),
    "4900": ("Contractual adjustments", "revenue"),
    "4910": ("Other adjustments", "revenue"),
    "4920": ("Provider adjustments", "revenue"),
    "2300": ("Accrued payroll", "liability"),
    "5100": ("Salaries and wages - regular", "expense"),
    "5110": ("Salaries and wages - overtime", "expense"),
    "5120": ("Salaries and wages - shift differential", "expense"),
    "5130": ("Salaries and wages - on-call", "expense"),
    "1300": ("Supply inventory", "asset"),
    "2000": ("Accounts payable - supplies", "liability"),
    "2050": ("Goods received not invoiced", "liability"),
    "6200": ("Supply expense", "expense"),
    "6210": ("Purchase price variance", "expense"),
}
PARTIES = {
    "PAYER-MCR": "Medicare",
    "PAYER-BCBS": "Blue Cross Blue Shield",
    "SUP-MEDLINE": "Medline Industries",
}
Progress = Callable[[str], None]


def _pg(site: TrytonSite, sql: str) -> list[tuple[Any, ...]]:
    """Run one statement on the PostgreSQL server's maintenance database (autocommit)."""
    import psycopg  # noqa: PLC0415 - PostgreSQL sites only

    dsn = site.uri.rstrip("/") + "/postgres"
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        cur = conn.execute(sql.encode())
        return cur.fetchall() if cur.description else []


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"database name {name!r}: letters, digits and _ only")
    return f'"{name}"'


def database_exists(site: TrytonSite, name: str) -> bool:
    """True when the Tryton database `name` exists (a SQLite file, or a PostgreSQL database)."""
    if site.sqlite:
        return (site.data_dir / f"{name}.sqlite").exists()
    return bool(_pg(site, f"SELECT 1 FROM pg_database WHERE datname = '{name}'"))


def drop_database(site: TrytonSite, name: str) -> None:
    """Remove the Tryton database `name`: its SQLite files, or the PostgreSQL database (its
    connections forced closed)."""
    if site.sqlite:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{site.data_dir / name}.sqlite{suffix}").unlink(missing_ok=True)
    else:
        _pg(site, f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")


def copy_database(
    site: TrytonSite, template: str, name: str, *, source: Path | None = None
) -> None:
    """Copy a built database: on PostgreSQL `CREATE DATABASE name TEMPLATE template` (no
    one may be connected to the template); on SQLite the file (from `source`, default the
    site's folder), stale -wal/-shm files of the target removed first."""
    if not site.sqlite:
        _pg(site, f"CREATE DATABASE {_ident(name)} TEMPLATE {_ident(template)}")
        return
    target = site.data_dir / f"{name}.sqlite"
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    origin = (source or site.data_dir) / f"{template}.sqlite"
    checkpoint(origin)
    shutil.copyfile(origin, target)


def checkpoint(db: Path) -> None:
    """Fold the WAL into the database file, so that the file alone is the whole database."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def build_database(
    site: TrytonSite,
    name: str,
    *,
    company: str = "Isthmus General Hospital",
    cost_centers: dict[str, str] | None = None,
    progress: Progress = lambda _m: None,
    modules: tuple[str, ...] = MODULES,
    extra: Callable[[TrytonRpc, Progress], None] | None = None,
) -> float:
    """Create and configure database `name`; returns the seconds it took.

    `modules` are activated (with their dependencies) instead of just MODULES, and `extra`
    configures more over the same session after the books (`erp_tryton_procure`)."""
    t0 = time.monotonic()
    site.data_dir.mkdir(parents=True, exist_ok=True)
    db = site.data_dir / f"{name}.sqlite"
    if database_exists(site, name):
        raise FileExistsError(
            f"Tryton database {name} exists already" + (f" ({db})" if site.sqlite else "")
        )
    if site.sqlite:
        db.touch()
    else:
        _pg(site, f"CREATE DATABASE {_ident(name)} ENCODING 'UTF8' TEMPLATE template0")
    where = db if site.sqlite else f"PostgreSQL database {name}"
    progress(
        f"activating {', '.join(modules)} in {where} (trytond-admin, "
        f"~{40 if site.sqlite else 90} s)"
    )
    try:
        subprocess.run(  # noqa: S603 - our own trytond-admin binary
            [
                str(site.bin_dir / "trytond-admin"),
                "-c",
                str(site.config(free_port())),
                "-d",
                name,
                "--all",
                "-u",
                *modules,
                "--activate-dependencies",
                "--email",
                "admin@localhost",
            ],
            env=site.env(),
            check=True,
            capture_output=True,
            timeout=600,
        )
    except subprocess.CalledProcessError as exc:
        drop_database(site, name)
        tail = exc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise RuntimeError(f"trytond-admin failed: {tail[0]}") from exc
    progress(f"modules active after {time.monotonic() - t0:.0f} s; configuring the books")
    with running(site, [name]) as server:
        rpc = server.rpc(name)
        try:
            configure(rpc, company=company, cost_centers=cost_centers or {}, progress=progress)
            if extra is not None:
                extra(rpc, progress)
        finally:
            rpc.close()
    if site.sqlite:
        checkpoint(db)
    progress(f"Tryton database {name!r} ready in {time.monotonic() - t0:.0f} s")
    return time.monotonic() - t0


def configure(
    rpc: TrytonRpc, *, company: str, cost_centers: dict[str, str], progress: Progress
) -> None:
    """Configure the books of a new Tryton database over JSON-RPC: USD, the company, the chart
    with the hub's account codes, fiscal years, the journal, one analytic account per cost
    center and the parties."""
    rpc.login()
    m = rpc.model
    [usd] = m(
        "currency.currency",
        "create",
        [
            {
                "name": "U.S. Dollar",
                "code": "USD",
                "symbol": "$",
                "rounding": Decimal("0.01"),
                "digits": 2,
            }
        ],
    )
    [party] = m("party.party", "create", [{"name": company}])
    [cid] = m("company.company", "create", [{"party": party, "currency": usd}])
    m("res.user", "write", [rpc.user_id], {"companies": [("add", [cid])], "company": cid})
    rpc.login()  # the session context now carries the company
    progress(f"company {company!r} (id {cid}) in USD")
    kinds: dict[str, dict[str, Any]] = {
        "asset": {"name": "Assets", "statement": "balance", "assets": True},
        "liability": {"name": "Liabilities", "statement": "balance"},
        "revenue": {"name": "Revenue", "statement": "income", "revenue": True},
        "expense": {"name": "Expenses", "statement": "income", "expense": True},
    }
    type_ids = m("account.account.type", "create", [{**v, "company": cid} for v in kinds.values()])
    type_of = dict(zip(kinds, type_ids, strict=True))
    m(
        "account.account",
        "create",
        [
            {"name": name, "code": code, "company": cid, "type": type_of[kind]}
            for code, (name, kind) in CHART.items()
        ],
    )
    progress(f"chart of accounts: {len(CHART)} accounts")
    [seq_type] = m("ir.sequence.type", "search", [("name", "=", "Account Move")], 0, 1, None)
    last_year = max(2026, date.today().year)
    for year in range(2026, last_year + 1):
        [seq] = m(
            "ir.sequence.strict",
            "create",
            [{"name": f"Moves {year}", "sequence_type": seq_type, "company": cid}],
        )
        [fy] = m(
            "account.fiscalyear",
            "create",
            [
                {
                    "name": str(year),
                    "start_date": date(year, 1, 1),
                    "end_date": date(year, 12, 31),
                    "company": cid,
                    "move_sequence": seq,
                }
            ],
        )
        m(
            "account.period",
            "create",
            [
                {
                    "name": f"{year}-{month:02d}",
                    "fiscalyear": fy,
                    "type": "standard",
                    "start_date": period_bounds(f"{year}-{month:02d}")[0],
                    "end_date": period_bounds(f"{year}-{month:02d}")[1],
                }
                for month in range(1, 13)
            ],
        )
    progress(f"fiscal years 2026-{last_year} with monthly periods")
    m(
        "account.journal",
        "create",
        [{"name": "Isthmus hub postings", "code": "HUB", "type": "general"}],
    )
    [root] = m(
        "analytic_account.account",
        "create",
        [{"name": "Cost centers", "code": "CC", "type": "root", "company": cid}],
    )
    centers = cost_centers or {}
    if centers:
        m(
            "analytic_account.account",
            "create",
            [
                {
                    "name": label,
                    "code": code,
                    "type": "normal",
                    "company": cid,
                    "root": root,
                    "parent": root,
                }
                for code, label in sorted(centers.items())
            ],
        )
    m("party.party", "create", [{"name": n, "code": c} for c, n in PARTIES.items()])
    progress(f"journal HUB, {len(centers)} cost centers, {len(PARTIES)} parties")
